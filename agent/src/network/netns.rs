//! Network namespaces by path: running a little code inside one (a thread that joins it
//! and ends, so no thread of berthd's runtime ever changes namespace), and pinned
//! namespaces (a new namespace bind-mounted on a file, like `ip netns add`) that a
//! container's OCI spec can name before the container exists.
//!
//! The only namespace and mount calls of the network subsystem are here.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::error::NetworkError;

/// The network namespace of this process, for `host` mode.
pub const SELF_NETNS: &str = "/proc/self/ns/net";

fn sys(context: String) -> impl FnOnce(nix::Error) -> NetworkError {
    move |e| NetworkError::Io {
        context,
        source: std::io::Error::from(e),
    }
}

/// Runs `f` on a fresh thread that has joined the network namespace at `path`, and
/// returns what it returns. Sockets made by `f` stay in that namespace wherever they
/// are used afterwards.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> Result<T, NetworkError> {
    let ns = File::open(path).map_err(|source| NetworkError::Io {
        context: format!("open network namespace {}", path.display()),
        source,
    })?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(sys(format!("join network namespace {}", path.display())))?;
            Ok(f())
        })
        .join()
        .map_err(|_| {
            NetworkError::Internal(format!(
                "thread in network namespace {} panicked",
                path.display()
            ))
        })?
    })
}

/// Creates a new network namespace and pins it on the file `path` (created, with its
/// parent directories). The namespace lives until [`remove`].
pub fn create(path: &Path) -> Result<PathBuf, NetworkError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| NetworkError::Io {
            context: format!("create {}", dir.display()),
            source,
        })?;
    }
    File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| NetworkError::Io {
            context: format!("create network namespace file {}", path.display()),
            source,
        })?;
    let pinned = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), NetworkError> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                .map_err(sys("unshare a network namespace".into()))?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(sys(format!("pin network namespace on {}", path.display())))
        })
        .join()
        .map_err(|_| {
            NetworkError::Internal("thread creating a network namespace panicked".into())
        })?
    });
    if let Err(e) = pinned {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(path.to_path_buf())
}

/// Unpins and removes a namespace made by [`create`]; a missing file is not an error.
/// The namespace itself ends when nothing else holds it.
pub fn remove(path: &Path) -> Result<(), NetworkError> {
    if !path.exists() {
        return Ok(());
    }
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) => {}
        Err(e) => {
            return Err(sys(format!("unpin network namespace {}", path.display()))(
                e,
            ));
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetworkError::Io {
            context: format!("remove {}", path.display()),
            source,
        }),
    }
}

/// Whether `path` names a network namespace (an nsfs file or a /proc link to one).
pub fn exists(path: &Path) -> bool {
    File::open(path)
        .ok()
        .and_then(|f| nix::sys::statfs::fstatfs(&f).ok())
        .is_some_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}
