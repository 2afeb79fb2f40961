//! The image configuration document (OCI image config, which Docker's shares): what an
//! image runs by default, its platform, history and the diff IDs of its layers, plus
//! the chain IDs that name unpacked layers. Unknown fields are kept so nothing read is
//! lost when a config is shown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// An image config, leniently read: every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    /// Fields berth does not model (container_config, ...).
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// What a container of the image runs by default (`config` of the image config).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    /// Healthcheck, OnBuild and the rest.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The layers of the image, as diff IDs (digests of the uncompressed tars).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One history entry (one Dockerfile step).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Parses a config blob; `what` names it in the error.
    pub fn parse(what: &str, data: &[u8]) -> Result<ImageConfig> {
        let c: ImageConfig = serde_json::from_slice(data).map_err(|e| {
            Error::FailedPrecondition(format!("image config {what} is not valid: {e}"))
        })?;
        for d in &c.rootfs.diff_ids {
            crate::content::Digest::parse(d).map_err(|e| {
                Error::FailedPrecondition(format!("image config {what}: rootfs diff ID: {e}"))
            })?;
        }
        Ok(c)
    }

    /// The creation time in Unix nanoseconds (0 when absent or unreadable).
    pub fn created_nanos(&self) -> i64 {
        self.created.as_deref().map_or(0, parse_time)
    }

    /// The chain IDs of the layers, bottom first: the snapshot names of the unpacked
    /// image.
    pub fn chain_ids(&self) -> Vec<String> {
        chain_ids(&self.rootfs.diff_ids)
    }

    /// `os/arch[/variant]`.
    pub fn platform(&self) -> String {
        let mut s = format!("{}/{}", self.os, self.architecture);
        if let Some(v) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            s.push('/');
            s.push_str(v);
        }
        s
    }
}

/// RFC 3339 text to Unix nanoseconds; 0 when unreadable.
pub fn parse_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0)
}

/// The chain IDs of `diff_ids`: the first is the first diff ID; each next one is
/// `sha256(previous + " " + diff_id)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let mut h = Sha256::new();
                h.update(prev.as_bytes());
                h.update(b" ");
                h.update(d.as_bytes());
                format!("sha256:{}", hex::encode(h.finalize()))
            }
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        let want = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()))
        );
        assert_eq!(c[1], want);
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn parses_docker_configs_and_keeps_unknown_fields() {
        let d = format!("sha256:{}", "1".repeat(64));
        let text = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05.5Z",
            "config":{{"Env":["A=1"],"Cmd":["sh"],"ExposedPorts":{{"80/tcp":{{}}}},
            "Healthcheck":{{"Test":["NONE"]}},"StopSignal":"SIGQUIT"}},
            "container_config":{{"Hostname":"x"}},
            "rootfs":{{"type":"layers","diff_ids":["{d}"]}},
            "history":[{{"created_by":"ADD x /","empty_layer":false}},{{"created_by":"CMD","empty_layer":true}}]}}"#
        );
        let c = ImageConfig::parse("x", text.as_bytes()).unwrap();
        let rc = c.config.as_ref().unwrap();
        assert_eq!(rc.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(rc.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(rc.other.contains_key("Healthcheck"));
        assert!(c.other.contains_key("container_config"));
        assert_eq!(c.created_nanos(), 1_704_164_645_500_000_000);
        assert_eq!(c.platform(), "linux/amd64");
        assert!(c.history[1].empty_layer);
        let again = serde_json::to_value(&c).unwrap();
        assert_eq!(again["config"]["Healthcheck"]["Test"][0], "NONE");
        let bad = r#"{"rootfs":{"diff_ids":["nope"]}}"#;
        assert!(ImageConfig::parse("x", bad.as_bytes()).is_err());
    }
}
