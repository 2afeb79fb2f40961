//! Conversions between wire and domain types shared by the service adapters.

use std::collections::{BTreeMap, HashMap};

use prost_types::FieldMask;

/// Wire label map to domain labels.
pub fn labels_in(m: HashMap<String, String>) -> BTreeMap<String, String> {
    m.into_iter().collect()
}

/// Domain labels to the wire label map.
pub fn labels_out(m: BTreeMap<String, String>) -> HashMap<String, String> {
    m.into_iter().collect()
}

/// The paths of an optional field mask (none means "replace the whole object").
pub fn mask_paths(mask: Option<FieldMask>) -> Vec<String> {
    mask.map(|m| m.paths).unwrap_or_default()
}
