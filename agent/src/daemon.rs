//! The daemon process: one berthd per root (enforced with a lock file), the API socket
//! (mode 0660, configurable group), serving until a shutdown signal, then removing the
//! socket.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::config::Config;
use crate::core::Core;
use crate::error::{Error, Result};

/// Holds `<root>/berthd.lock` exclusively for the life of the daemon.
pub struct RootLock {
    _lock: Flock<File>,
}

impl RootLock {
    /// Takes the lock or explains who holds it.
    pub fn acquire(root: &Path) -> Result<RootLock> {
        let path = root.join("berthd.lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(Error::FailedPrecondition(format!(
                    "root {} is in use by another berthd{}; stop it or choose another --root",
                    root.display(),
                    if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {pid})")
                    }
                )));
            }
            Err((_, e)) => return Err(Error::io(format!("lock {}", path.display()), e.into())),
        };
        lock.set_len(0).map_err(|e| Error::io("truncate lock", e))?;
        lock.rewind().map_err(|e| Error::io("rewind lock", e))?;
        writeln!(lock, "{}", std::process::id()).map_err(|e| Error::io("write lock", e))?;
        Ok(RootLock { _lock: lock })
    }
}

fn make_dir(path: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| Error::io(format!("create {}", path.display()), e))
}

/// Binds the API socket, refusing if a live daemon answers on it.
async fn bind(path: &Path, gid: u32) -> Result<UnixListener> {
    if let Some(parent) = path.parent() {
        make_dir(parent, 0o711)?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(Error::FailedPrecondition(format!(
                "address {} is in use by another daemon; choose another --address",
                path.display()
            )));
        }
        std::fs::remove_file(path)
            .map_err(|e| Error::io(format!("remove stale socket {}", path.display()), e))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| Error::io(format!("listen on {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| Error::io(format!("chmod {}", path.display()), e))?;
    if gid != 0 {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| Error::io(format!("chown {} to group {gid}", path.display()), e))?;
    }
    Ok(listener)
}

/// Removes the socket when dropped, whatever way serving ends.
struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs berthd until `shutdown` resolves.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
    make_dir(&config.root, 0o711)?;
    make_dir(&config.state, 0o711)?;
    let _lock = RootLock::acquire(&config.root)?;
    let address = config.address();
    let core = Core::open(config)?;
    core.tasks.recover().await;
    crate::berth_containers::recover(&core).await;
    // docker-style events for `berthctl system events`, from now on.
    let _journal = crate::journal::start(&core);
    let listener = bind(&address, core.config.grpc.gid).await?;
    let _socket = SocketGuard(address.clone());
    let gc = core.gc.start();
    {
        // Unpacked layers an earlier berthd of this boot left unsynced.
        let core = core.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::images::unpack::sync_pending(&core).await {
                tracing::warn!(error = %e, "sync layers left unsynced");
            }
        });
    }
    tracing::info!(
        address = %address.display(),
        root = %core.config.root.display(),
        state = %core.config.state.display(),
        version = crate::VERSION,
        "berthd serving"
    );
    let events = core.events.clone();
    let shutdown = async move {
        shutdown.await;
        // Long-lived streams would hold the graceful shutdown open.
        events.close();
    };
    crate::services::router(core.clone())
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await
        .map_err(|e| Error::Internal(format!("serve on {}: {e}", address.display())))?;
    gc.abort();
    if let Err(e) = core.networks.shutdown().await {
        tracing::warn!(error = %e, "network shutdown");
    }
    tracing::info!("berthd stopped");
    Ok(())
}
