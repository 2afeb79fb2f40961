//! berth's own containers, docker's way: names unique per namespace, 64-hex IDs
//! resolved from unique prefixes, the image's config applied, volumes, networking,
//! restart policies, logs, attach and exec. Each one is a docker-level [`Record`] in the
//! metadata database *and* a containerd container record (so `ctr containers ls` sees
//! it) whose task runs through the tasks subsystem (one berth-shim each).
//!
//! Life cycle (docs/containers.md): [`create()`] resolves the image, merges its config,
//! resolves mounts (creating volumes), prepares the snapshot (key = ID) and writes both
//! records. [`start()`] mounts nothing itself: it reads the user from the root, fills
//! empty volumes from the image, sets up the network namespace (pinned before the task,
//! so the network is ready when the process runs), rewrites the spec, then creates and
//! starts the task with the json log. An exit watcher per running task records the exit,
//! releases the network, deletes the task, and applies `--rm` or the restart policy.
//! [`recover()`] does the same bookkeeping after berthd restarts.
//!
//! The domain is free functions over the [`Core`](crate::core::Core) (they need images,
//! snapshots, tasks and networks); the in-memory part ([`BerthContainers`]) holds one
//! [`Slot`] per container: a lock serializing its state changes, a watch of its exits
//! for `wait`, a pending restart, and the fan-out of its output to attached clients.

mod attach;
mod connect;
mod create;
mod exec;
mod exit;
mod hub;
mod image;
mod inspect;
mod list;
mod logs;
pub mod model;
pub mod mounts;
mod names;
mod network;
mod pause;
mod recover;
mod remove;
mod rename;
mod rootpath;
mod signal;
pub mod spec;
mod start;
mod status;
mod stop;
pub(crate) mod store;
mod user;
mod userns;
mod wait;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_shim::spec_defaults::IdRange;
use tokio::sync::watch;

pub use attach::{AttachEnd, AttachEvent, AttachInput, AttachRequest, Attached, attach};
pub use connect::{Changed, ConnectRequest, connect, disconnect};
pub use create::{CreateRequest, Created, create};
pub use exec::{ExecEvent, ExecRequest, ExecSession, exec};
pub use inspect::inspect;
pub use list::{ListOptions, Port, Summary, list};
pub use logs::{LogFrame, LogOptions, logs};
pub use model::{
    Connection, ContainerConfig, HostConfig, MountPoint, Record, RestartPolicy, State, Status,
};
pub use pause::{pause, unpause};
pub use recover::recover;
pub use remove::{prune, remove};
pub use rename::rename;
pub use signal::parse_signal;
pub use start::start;
pub use stop::{kill, restart, stop};
pub use store::{Store, no_such_container};
pub use wait::{WaitCondition, wait};

use crate::config::ContainersConfig;
use crate::error::Result;
use crate::metadata::Metadata;

/// What waiters see of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watched {
    /// A task exists (running, paused) or a restart is pending.
    pub running: bool,
    /// How many exits were recorded since berthd started.
    pub exits: u64,
    pub exit_code: i32,
    /// Set when the container could not be run.
    pub error: String,
    pub removed: bool,
}

/// The in-memory side of one container.
pub struct Slot {
    /// Serializes start, exit handling, stop bookkeeping and removal.
    pub lock: tokio::sync::Mutex<()>,
    pub watch: watch::Sender<Watched>,
    /// A restart waiting for its back-off delay.
    pending_restart: Mutex<Option<tokio::task::AbortHandle>>,
    /// The back-off of the next restart, in milliseconds (0: the first).
    backoff_ms: Mutex<u64>,
    /// The output of the running task, for attached clients.
    pub hub: hub::Hub,
}

impl Slot {
    fn cancel_restart(&self) -> bool {
        match self
            .pending_restart
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(h) => {
                h.abort();
                true
            }
            None => false,
        }
    }
}

/// berth's containers: the records and the per-container runtime.
pub struct BerthContainers {
    pub store: Store,
    pub config: ContainersConfig,
    /// `userns_remap` resolved once (it may read /etc/subuid and /etc/subgid).
    userns: Option<(IdRange, IdRange)>,
    /// `<state>/containers`: pinned network namespaces and scratch mount points.
    state_dir: PathBuf,
    slots: Mutex<HashMap<(String, String), Arc<Slot>>>,
}

impl BerthContainers {
    pub fn open(
        md: Arc<Metadata>,
        config: ContainersConfig,
        state: &std::path::Path,
    ) -> Result<Self> {
        Ok(BerthContainers {
            store: Store::open(md)?,
            userns: config.userns_ranges().ok().flatten(),
            config,
            state_dir: state.join("containers"),
            slots: Mutex::default(),
        })
    }

    /// The slot of a container, made from its record on first use.
    pub fn slot(&self, ns: &str, rec: &Record) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry((ns.to_string(), rec.id.clone()))
            .or_insert_with(|| {
                Arc::new(Slot {
                    lock: tokio::sync::Mutex::new(()),
                    watch: watch::Sender::new(Watched {
                        running: rec.state.status.is_active(),
                        exits: 0,
                        exit_code: rec.state.exit_code,
                        error: rec.state.error.clone(),
                        removed: false,
                    }),
                    pending_restart: Mutex::new(None),
                    backoff_ms: Mutex::new(0),
                    hub: hub::Hub::default(),
                })
            })
            .clone()
    }

    fn forget(&self, ns: &str, id: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(ns.to_string(), id.to_string()));
    }

    /// The directory of a container's runtime files under the state directory.
    pub fn state_dir(&self, ns: &str, id: &str) -> PathBuf {
        self.state_dir.join(ns).join(id)
    }

    /// Where a container's pinned network namespace lives.
    pub fn netns_path(&self, ns: &str, id: &str) -> PathBuf {
        self.state_dir(ns, id).join("netns")
    }

    /// The json log of a container: `<log_dir>/<ns>/<id>/<id>-json.log`.
    pub fn log_path(&self, ns: &str, id: &str) -> PathBuf {
        self.config
            .log_dir
            .join(ns)
            .join(id)
            .join(format!("{id}-json.log"))
    }

    /// The uid and gid ranges every container's user namespace maps (`userns_remap`,
    /// checked when the configuration was loaded).
    pub fn userns(&self) -> Option<(IdRange, IdRange)> {
        self.userns
    }

    /// The ranges of [`Berth::userns`] unless the container opted out (`--userns=host`).
    pub fn userns_for(&self, hc: &model::HostConfig) -> Option<(IdRange, IdRange)> {
        if hc.userns_mode == "host" {
            return None;
        }
        self.userns()
    }

    /// The log rotation of a container: its `--log-opt`s, else the daemon's.
    pub fn log_rotation(&self, rec: &Record) -> (u64, u32) {
        let opts = &rec.host_config.log_config.config;
        let size = opts
            .get("max-size")
            .and_then(|v| crate::config::parse_bytes(v).ok())
            .unwrap_or_else(|| self.config.log_max_bytes());
        let files = opts
            .get("max-file")
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.config.log_max_files);
        (size, files)
    }

    /// `/<parent>/<ns>/<id>`.
    pub fn cgroups_path(&self, ns: &str, id: &str) -> String {
        format!("/{}/{ns}/{id}", self.config.cgroup_parent.trim_matches('/'))
    }
}

/// docker's exit code for a container that could not be started: 127 when the
/// executable is not found, 126 when it cannot be executed, else 125.
pub fn start_failure_code(message: &str) -> i32 {
    let m = message.to_ascii_lowercase();
    if m.contains("not found in $path") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied")
        || m.contains("is a directory")
        || m.contains("exec format error")
        || m.contains("not a directory")
    {
        126
    } else {
        125
    }
}

fn now() -> i64 {
    berth_api::time::to_unix_nanos(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_exit_codes_for_start_failures() {
        assert_eq!(
            start_failure_code("task x: exec \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_failure_code("exec \"/nope\": no such file or directory"),
            127
        );
        assert_eq!(start_failure_code("exec \"/etc\": is a directory"), 126);
        assert_eq!(
            start_failure_code("exec \"/etc/passwd\": Permission denied"),
            126
        );
        assert_eq!(start_failure_code("mount failed"), 125);
    }
}
