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

/// Unix nanoseconds to a wire timestamp.
pub fn timestamp(nanos: i64) -> prost_types::Timestamp {
    berth_api::time::from_unix_nanos(nanos)
}

/// A wire descriptor to the domain one.
pub fn descriptor_in(
    d: Option<berth_api::containerd::types::Descriptor>,
    what: &str,
) -> Result<crate::content::Descriptor, tonic::Status> {
    let d = d.ok_or_else(|| tonic::Status::invalid_argument(format!("{what} is required")))?;
    let digest = crate::content::Digest::parse(&d.digest)
        .map_err(|e| tonic::Status::invalid_argument(format!("{what}: {e}")))?;
    Ok(crate::content::Descriptor {
        media_type: d.media_type,
        digest,
        size: d.size,
        annotations: labels_in(d.annotations),
    })
}

/// A domain descriptor to the wire one.
pub fn descriptor_out(d: crate::content::Descriptor) -> berth_api::containerd::types::Descriptor {
    berth_api::containerd::types::Descriptor {
        media_type: d.media_type,
        digest: d.digest.to_string(),
        size: d.size,
        annotations: labels_out(d.annotations),
    }
}

/// Wire mounts to the snapshotter's.
pub fn mounts_in(m: Vec<berth_api::containerd::types::Mount>) -> Vec<berth_snapshotter::Mount> {
    m.into_iter()
        .map(|m| berth_snapshotter::Mount {
            kind: m.r#type,
            source: m.source,
            options: m.options,
        })
        .collect()
}

/// Snapshotter mounts to the wire's.
pub fn mounts_out(m: Vec<berth_snapshotter::Mount>) -> Vec<berth_api::containerd::types::Mount> {
    m.into_iter()
        .map(|m| berth_api::containerd::types::Mount {
            r#type: m.kind,
            source: m.source,
            target: String::new(),
            options: m.options,
        })
        .collect()
}
