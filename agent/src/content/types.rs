//! The content store's domain types: descriptors, blob info, ingest status, and the
//! fields filters can select on.

use serde::{Deserialize, Serialize};

use super::Digest;
use crate::error::{Error, Result};
use crate::filters::{Adaptor, label_field};
use crate::labels::Labels;

/// An OCI content descriptor: what a blob is, by digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub annotations: Labels,
}

impl Descriptor {
    /// Checks what a stored descriptor (an image target) must have.
    pub fn validate(&self, what: &str) -> Result<()> {
        if self.size <= 0 {
            return Err(Error::InvalidArgument(format!(
                "{what}: target size must be greater than zero"
            )));
        }
        if self.media_type.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{what}: target media type must be set"
            )));
        }
        Ok(())
    }
}

/// A committed blob as one namespace sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub digest: Digest,
    pub size: i64,
    /// Nanoseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    pub labels: Labels,
}

impl Adaptor for Info {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first()?.as_str() {
            "digest" => Some(self.digest.to_string()),
            "size" => Some(self.size.to_string()),
            "labels" => label_field(&self.labels, path),
            _ => None,
        }
    }
}

/// The progress of an in-flight write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub reference: String,
    /// Bytes written so far.
    pub offset: i64,
    /// Expected size, 0 when unknown.
    pub total: i64,
    pub expected: Option<Digest>,
    /// Nanoseconds since the Unix epoch.
    pub started_at: i64,
    pub updated_at: i64,
}

impl Adaptor for Status {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first()?.as_str() {
            "ref" => Some(self.reference.clone()),
            "expected" => self.expected.as_ref().map(|d| d.to_string()),
            _ => None,
        }
    }
}
