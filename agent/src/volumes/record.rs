//! The volume record and the rules for volume names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::labels::Labels;

/// A volume as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    /// Where the data is: `<root>/volumes/<name>/_data`.
    pub mountpoint: PathBuf,
    /// Nanoseconds since the Unix epoch.
    pub created_at: i64,
    pub labels: Labels,
    pub options: BTreeMap<String, String>,
    /// Made for one container (an image `VOLUME` or `-v /path`), not by name.
    pub anonymous: bool,
    /// Containers using it, as `namespace/id`.
    #[serde(default)]
    pub users: BTreeSet<String>,
}

/// docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && name.len() <= 255
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}
