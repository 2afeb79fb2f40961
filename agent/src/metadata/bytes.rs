//! Serde helpers for binary values inside JSON records.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serializer};

/// Encodes bytes as base64 text.
pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&STANDARD.encode(v))
}

/// Decodes base64 text.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    STANDARD.decode(text).map_err(serde::de::Error::custom)
}

/// A `google.protobuf.Any` as stored in a record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnyRecord {
    pub type_url: String,
    #[serde(with = "crate::metadata::bytes")]
    pub value: Vec<u8>,
}

impl From<prost_types::Any> for AnyRecord {
    fn from(a: prost_types::Any) -> Self {
        AnyRecord {
            type_url: a.type_url,
            value: a.value,
        }
    }
}

impl From<AnyRecord> for prost_types::Any {
    fn from(a: AnyRecord) -> Self {
        prost_types::Any {
            type_url: a.type_url,
            value: a.value,
        }
    }
}
