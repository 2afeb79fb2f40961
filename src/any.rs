//! `google.protobuf.Any` with exact, bare type URLs.
//!
//! containerd's clients (Go `typeurl`) match type URLs by exact string: either a
//! registered URL such as `types.containerd.io/opencontainers/runtime-spec/1/Spec` or the
//! bare protobuf full name (`containerd.runc.v1.Options`), with no `type.googleapis.com/`
//! prefix and no leading `/`. prost's own `Any` helpers add a `/`, so these build and
//! match the values by hand.

use prost_types::Any;

/// OCI runtime spec, JSON encoded (`Container.spec`).
pub const SPEC: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// OCI process, JSON encoded (`ExecProcessRequest.spec`).
pub const PROCESS: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/// OCI Linux resources, JSON encoded (`UpdateTaskRequest.resources`).
pub const LINUX_RESOURCES: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";
/// runc v2 shim options (protobuf).
pub const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";
/// Exec process details in `ProcessInfo.info` (protobuf).
pub const RUNC_PROCESS_DETAILS: &str = "containerd.runc.v1.ProcessDetails";
/// cgroup v1 metrics (protobuf).
pub const CGROUPS_V1_METRICS: &str = "io.containerd.cgroups.v1.Metrics";
/// cgroup v2 metrics (protobuf).
pub const CGROUPS_V2_METRICS: &str = "io.containerd.cgroups.v2.Metrics";

/// Why an `Any` could not be turned into the wanted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyError {
    /// The type URL is not the one asked for.
    TypeMismatch { expected: String, found: String },
    /// The bytes do not decode as the message.
    Decode { type_url: String, reason: String },
}

impl std::fmt::Display for AnyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnyError::TypeMismatch { expected, found } => {
                write!(f, "unexpected type url {found:?}, expected {expected:?}")
            }
            AnyError::Decode { type_url, reason } => write!(f, "decode {type_url}: {reason}"),
        }
    }
}

impl std::error::Error for AnyError {}

/// The bare type URL of a protobuf message: its full name, `package.Name`.
pub fn type_url<M: prost::Name>() -> String {
    M::full_name()
}

/// Packs a protobuf message under its bare full name.
pub fn pack<M: prost::Name>(msg: &M) -> Any {
    Any {
        type_url: M::full_name(),
        value: msg.encode_to_vec(),
    }
}

/// Packs already-encoded bytes (JSON or protobuf) under a given type URL.
pub fn pack_raw(type_url: &str, value: Vec<u8>) -> Any {
    Any {
        type_url: type_url.to_string(),
        value,
    }
}

/// Unpacks a protobuf message, requiring the exact bare type URL.
pub fn unpack<M: prost::Name + Default>(any: &Any) -> Result<M, AnyError> {
    let expected = M::full_name();
    if any.type_url != expected {
        return Err(AnyError::TypeMismatch {
            expected,
            found: any.type_url.clone(),
        });
    }
    M::decode(any.value.as_slice()).map_err(|e| AnyError::Decode {
        type_url: any.type_url.clone(),
        reason: e.to_string(),
    })
}

/// Returns the raw bytes of an `Any` if its type URL is exactly `type_url`.
pub fn raw<'a>(any: &'a Any, type_url: &str) -> Result<&'a [u8], AnyError> {
    if any.type_url != type_url {
        return Err(AnyError::TypeMismatch {
            expected: type_url.to_string(),
            found: any.type_url.clone(),
        });
    }
    Ok(&any.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerd::runc::v1::Options;

    #[test]
    fn pack_uses_bare_full_name() {
        let any = pack(&Options {
            no_pivot_root: true,
            ..Default::default()
        });
        assert_eq!(any.type_url, RUNC_OPTIONS);
        let back: Options = unpack(&any).unwrap();
        assert!(back.no_pivot_root);
    }

    #[test]
    fn unpack_rejects_prefixed_url() {
        let mut any = pack(&Options::default());
        any.type_url = format!("/{}", RUNC_OPTIONS);
        assert!(matches!(
            unpack::<Options>(&any),
            Err(AnyError::TypeMismatch { .. })
        ));
        any.type_url = format!("type.googleapis.com/{}", RUNC_OPTIONS);
        assert!(unpack::<Options>(&any).is_err());
    }

    #[test]
    fn raw_matches_exactly() {
        let any = pack_raw(SPEC, b"{}".to_vec());
        assert_eq!(raw(&any, SPEC).unwrap(), b"{}");
        assert!(raw(&any, PROCESS).is_err());
    }
}
