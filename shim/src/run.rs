//! `berth-shim run` (and the daemon half of `start`): bind the socket, serve until the
//! task is deleted, remove the socket.

use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::{Context, bail};

use crate::ShimArgs;
use crate::server::{Identity, Shim};
use crate::sys::fd;

/// Binds `socket`, refusing when a live shim already serves it.
fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if socket.exists() {
        if UnixStream::connect(socket).is_ok() {
            bail!("socket {} is served by another shim", socket.display());
        }
        std::fs::remove_file(socket)
            .with_context(|| format!("remove stale socket {}", socket.display()))?;
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    UnixListener::bind(socket).with_context(|| format!("listen on {}", socket.display()))
}

/// Serves the task API on `socket`; `ready` (from `start`) gets "ok" once listening.
pub fn serve(args: &ShimArgs, socket: &Path, ready: Option<OwnedFd>) -> anyhow::Result<()> {
    let setup = || -> anyhow::Result<Shim> {
        let listener = bind(socket)?;
        let ident = Identity {
            id: args.id.clone(),
            namespace: args.namespace.clone(),
            bundle: args.bundle.clone(),
            socket: socket.to_path_buf(),
        };
        Shim::new(ident, listener).context("set up event loop")
    };
    let answer = |r: &OwnedFd, text: &[u8]| fd::write_all(std::os::fd::AsFd::as_fd(r), text);
    let mut shim = match setup() {
        Ok(s) => s,
        Err(e) => {
            if let Some(r) = &ready {
                let _ = answer(r, format!("error: {e:#}").as_bytes());
            }
            return Err(e);
        }
    };
    if let Some(r) = ready {
        answer(&r, b"ok").context("signal readiness")?;
    }
    tracing::info!(id = %args.id, socket = %socket.display(), "shim serving");
    let res = shim.run();
    let _ = std::fs::remove_file(socket);
    res.context("event loop")?;
    Ok(())
}
