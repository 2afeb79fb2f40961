//! The container record berth keeps beside containerd's: docker's container config and
//! host config (field names as in `docker inspect`, so the record serializes into the
//! inspect document as it is), the state, and what berth resolved at create.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// docker's `Config`: what to run. At create it holds the request merged with the
/// image's config (env, cmd, entrypoint, working dir, user, ports, volumes, labels).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// `PORT/PROTO` keys, docker's map to empty objects.
    pub exposed_ports: BTreeMap<String, Empty>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    /// The image as the user named it.
    pub image: String,
    pub volumes: BTreeMap<String, Empty>,
    pub working_dir: String,
    pub entrypoint: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i32>,
}

/// docker's `{}` in maps used as sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// docker's restart policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// "no", "on-failure", "always" or "unless-stopped".
    pub name: String,
    pub maximum_retry_count: i32,
}

/// What the restart policy says about an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    No,
    OnFailure(i32),
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses docker's `--restart` value: `no`, `on-failure[:N]`, `always`,
    /// `unless-stopped`.
    pub fn parse(s: &str, max_retry: i32) -> Result<RestartPolicy, String> {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (
                n,
                c.parse::<i32>()
                    .map_err(|_| format!("restart policy {s:?}: {c:?} is not a number"))?,
            ),
            None => (s, max_retry),
        };
        match name {
            "" | "no" => {
                if count != 0 {
                    return Err(format!(
                        "restart policy {s:?}: maximum retry count is only valid with on-failure"
                    ));
                }
                Ok(RestartPolicy {
                    name: "no".into(),
                    maximum_retry_count: 0,
                })
            }
            "on-failure" if count >= 0 => Ok(RestartPolicy {
                name: name.into(),
                maximum_retry_count: count,
            }),
            "on-failure" => Err(format!(
                "restart policy {s:?}: maximum retry count must not be negative"
            )),
            "always" | "unless-stopped" if count == 0 => Ok(RestartPolicy {
                name: name.into(),
                maximum_retry_count: 0,
            }),
            "always" | "unless-stopped" => Err(format!(
                "restart policy {s:?}: maximum retry count is only valid with on-failure"
            )),
            _ => Err(format!(
                "restart policy {s:?}: expected no, on-failure[:N], always or unless-stopped"
            )),
        }
    }

    pub fn policy(&self) -> Policy {
        match self.name.as_str() {
            "on-failure" => Policy::OnFailure(self.maximum_retry_count),
            "always" => Policy::Always,
            "unless-stopped" => Policy::UnlessStopped,
            _ => Policy::No,
        }
    }
}

/// docker's `HostConfig`, the part berth implements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Vec<String>,
    pub network_mode: String,
    /// docker's `PortBindings`, kept as the `-p` strings berth parsed.
    #[serde(rename = "PortBindings")]
    pub publish: Vec<String>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub dns: Vec<String>,
    pub dns_options: Vec<String>,
    pub dns_search: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub group_add: Vec<String>,
    pub links: Vec<String>,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub shm_size: i64,
    pub sysctls: BTreeMap<String, String>,
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    /// 0: unset; -1: unlimited.
    pub pids_limit: i64,
    pub log_config: LogConfig,
    /// `--init` (refused: berth has no init to add yet).
    pub init: bool,
    /// `--userns`: empty (berthd's default) or `host`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub userns_mode: String,
}

/// docker's `LogConfig`: berth's json lines (docker's `json-file`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "removing" => Status::Removing,
            "exited" => Status::Exited,
            "dead" => Status::Dead,
            _ => return None,
        })
    }

    /// Running, paused or restarting: a task exists (or is about to).
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// The state of a container (docker's `State`); times are Unix nanoseconds, 0 unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub status: Status,
    pub pid: u32,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: i64,
    pub finished_at: i64,
}

/// A resolved mount of a container: a bind, a volume or a tmpfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    /// "bind", "volume" or "tmpfs".
    pub kind: String,
    /// The volume's name.
    pub name: String,
    /// The host path (the volume's data directory for volumes).
    pub source: PathBuf,
    pub destination: String,
    pub rw: bool,
    /// docker's mode text ("ro", "z", ...), for inspect.
    pub mode: String,
    /// Options of a tmpfs.
    pub options: String,
    /// Anonymous volume made for this container.
    pub anonymous: bool,
}

/// berth's record of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    pub id: String,
    /// Without docker's leading '/'.
    pub name: String,
    /// Unix nanoseconds.
    pub created: i64,
    /// The executable and its arguments (entrypoint + cmd).
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The image ID (`sha256:<config digest>`).
    pub image_id: String,
    /// The image record's name (what `ctr` shows and image removal checks).
    pub image_name: String,
    pub state: State,
    pub restart_count: u32,
    /// Set by `stop` and `kill` from the user; cleared at start (unless-stopped, and no
    /// restart after a manual stop).
    pub manually_stopped: bool,
    /// The container has run at least once.
    pub has_been_started: bool,
    pub log_path: PathBuf,
    /// The snapshotter of the root filesystem (docker's `Driver`); the snapshot key is
    /// the ID.
    pub snapshotter: String,
    pub mounts: Vec<MountPoint>,
    /// Networks joined with `network connect` beyond the network mode's own; each start
    /// connects them again.
    pub connected: Vec<Connection>,
    /// The network mode's own network was left with `network disconnect`: each start
    /// attaches it (it carries the published ports and links) and then leaves it.
    pub mode_disconnected: bool,
}

/// A network a container was connected to with `network connect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Connection {
    /// The network's ID.
    pub network: String,
    /// A fixed address (`--ip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<std::net::Ipv4Addr>,
    pub aliases: Vec<String>,
}

impl Record {
    /// `namespace/id`: how volumes name their users.
    pub fn user_key(ns: &str, id: &str) -> String {
        format!("{ns}/{id}")
    }

    /// The ID as `ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_as_docker() {
        assert_eq!(RestartPolicy::parse("no", 0).unwrap().policy(), Policy::No);
        assert_eq!(RestartPolicy::parse("", 0).unwrap().policy(), Policy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure:3", 0).unwrap().policy(),
            Policy::OnFailure(3)
        );
        assert_eq!(
            RestartPolicy::parse("on-failure", 2).unwrap().policy(),
            Policy::OnFailure(2)
        );
        assert_eq!(
            RestartPolicy::parse("always", 0).unwrap().policy(),
            Policy::Always
        );
        assert_eq!(
            RestartPolicy::parse("unless-stopped", 0).unwrap().policy(),
            Policy::UnlessStopped
        );
        for bad in [
            "always:2",
            "sometimes",
            "on-failure:x",
            "on-failure:-1",
            "no:1",
        ] {
            assert!(RestartPolicy::parse(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_serializes_with_docker_names() {
        let c = ContainerConfig {
            env: vec!["A=1".into()],
            exposed_ports: [("80/tcp".to_string(), Empty {})].into(),
            ..Default::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["Env"][0], "A=1");
        assert_eq!(v["ExposedPorts"]["80/tcp"], serde_json::json!({}));
        assert!(v.get("StopTimeout").is_none());
        let h = HostConfig {
            readonly_rootfs: true,
            ..Default::default()
        };
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["ReadonlyRootfs"], true);
        assert_eq!(v["RestartPolicy"]["MaximumRetryCount"], 0);
        assert_eq!(v["LogConfig"]["Type"], "");
    }
}
