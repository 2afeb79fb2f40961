//! The reference implementation on the same harness: Debian's containerd 1.6 started like
//! berthd (`--root --state --address --log-level --config`) on a temp dir of its own, with
//! the CRI plugin off and nothing outside the temp dir. It checks that the fixtures are
//! what containerd accepts, and is the other side of berth's benchmarks.

use std::path::PathBuf;

use crate::daemon::{Daemon, DaemonOptions};
use crate::error::{Error, Result};

/// Where Debian's containerd package installs the daemon.
pub const CONTAINERD: &str = "/usr/bin/containerd";

/// containerd's config: no CRI, its `opt` plugin and ttrpc socket inside the temp dir.
pub const CONFIG: &str = r#"version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[ttrpc]
  address = "@DIR@/containerd.ttrpc.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "@DIR@/opt"
"#;

/// Options that make [`Daemon`] run containerd instead of berthd.
pub fn options() -> Result<DaemonOptions> {
    let binary = PathBuf::from(CONTAINERD);
    if !binary.is_file() {
        return Err(Error::Missing {
            what: "containerd".into(),
            path: binary,
            hint: "install it with `apt-get install -y containerd runc`".into(),
        });
    }
    Ok(DaemonOptions {
        binary: Some(binary),
        config: Some(CONFIG.to_string()),
        // runc's state root per namespace (the shim's default `--root`).
        empty_dirs_per_namespace: vec!["/run/containerd/runc/@NS@".into()],
        ..DaemonOptions::default()
    })
}

/// Starts a private containerd and waits until it answers Version.
pub async fn start() -> Result<Daemon> {
    Daemon::start_with(options()?).await
}
