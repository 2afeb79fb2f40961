//! `cp`: paths in a container described ([`stat_path`]), archived out of it
//! ([`copy_from`]) and tars extracted into it ([`copy_to`]), through its root as
//! [`rootfs`](super::rootfs) reaches it (a running container frozen meanwhile).
//! Extraction is layer apply's: every entry is resolved below the destination directory
//! with `openat2(RESOLVE_BENEATH)`, so `..`, absolute paths and symlinks (in the tar or
//! in the container) never lead a write outside it; one such entry fails the copy.
//! Entries named `.wh.*` are ordinary files here, not whiteouts.

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::Arc;

use berth_snapshotter::apply::{self, ApplyMode, ApplyOptions};
use bytes::Bytes;
use nix::fcntl::OFlag;
use tokio::io::AsyncRead;
use tokio::sync::{mpsc, oneshot};

use super::rootfs::{Freeze, Root, hold, open_in, open_path, read_link_fd, stat_fd};
use super::tarball::{ChannelWriter, TarOut};
use crate::core::Core;
use crate::error::{Error, Result};

/// What a path in a container is (docker's container path stat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// st_mode: type and permission bits.
    pub mode: u32,
    /// Unix nanoseconds.
    pub mtime: i64,
    pub link_target: String,
}

/// The name the top entry of a copy gets: the path's last component (`.` for the root).
pub fn top_name(path: &str) -> String {
    path.trim_end_matches('/')
        .rsplit('/')
        .find(|c| !c.is_empty())
        .filter(|c| *c != "." && *c != "..")
        .unwrap_or(".")
        .to_string()
}

fn stat_in(root: &Root, path: &str, follow: bool) -> Result<PathStat> {
    let fd = open_path(root.fd(), path, follow)?;
    let st = stat_fd(fd.as_fd(), path)?;
    let link_target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        read_link_fd(fd.as_fd())?.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    Ok(PathStat {
        name: top_name(path),
        size: st.st_size,
        mode: st.st_mode,
        mtime: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        link_target,
    })
}

/// Describes `path` in the container (a symlink at the end followed with `follow`).
pub async fn stat_path(
    core: &Arc<Core>,
    ns: &str,
    input: &str,
    path: &str,
    follow: bool,
) -> Result<PathStat> {
    check_path(path)?;
    hold(core, ns, input, Freeze::No, async |h| {
        let root = Root::open(core, ns, h, false).await?;
        let r = stat_in(&root, path, follow);
        root.close()?;
        r
    })
    .await
}

fn check_path(path: &str) -> Result<()> {
    if !path.starts_with('/') {
        return Err(Error::InvalidArgument(format!(
            "path {path:?} must be absolute in the container"
        )));
    }
    Ok(())
}

/// A tar of `path` streaming out of a container.
pub struct CopyOut {
    pub stat: PathStat,
    pub data: mpsc::Receiver<Result<Bytes>>,
}

/// Archives `path` of the container (its top entry named [`top_name`]); the container
/// stays frozen (when running) until the whole tar has been taken from `data`.
pub async fn copy_from(
    core: &Arc<Core>,
    ns: &str,
    input: &str,
    path: &str,
    follow: bool,
) -> Result<CopyOut> {
    check_path(path)?;
    let (stat_tx, stat_rx) = oneshot::channel::<Result<PathStat>>();
    let (tx, rx) = mpsc::channel::<Result<Bytes>>(4);
    let (core, ns, input, path) = (
        core.clone(),
        ns.to_string(),
        input.to_string(),
        path.to_string(),
    );
    tokio::spawn(async move {
        let mut stat_tx = Some(stat_tx);
        let result = hold(&core, &ns, &input, Freeze::Yes, async |h| {
            let root = Root::open(&core, &ns, h, false).await?;
            let stat = match stat_in(&root, &path, follow) {
                Ok(s) => s,
                Err(e) => {
                    root.close()?;
                    return Err(e);
                }
            };
            let name = stat.name.clone();
            if let Some(t) = stat_tx.take() {
                let _ = t.send(Ok(stat));
            }
            let writer_tx = tx.clone();
            let (root, written) = tokio::task::spawn_blocking(move || {
                let r = (|| {
                    let top = open_path(root.fd(), &path, follow)?;
                    let mut out = TarOut::new(ChannelWriter::new(writer_tx));
                    out.walk(top.as_fd(), &name)?;
                    out.finish().map(|_| ())
                })();
                (root, r)
            })
            .await
            .map_err(|e| Error::Internal(format!("archive task: {e}")))?;
            root.close()?;
            written
        })
        .await;
        if let Err(e) = result {
            match stat_tx.take() {
                Some(t) => {
                    let _ = t.send(Err(e));
                }
                None => {
                    let _ = tx.send(Err(e)).await;
                }
            }
        }
    });
    let stat = stat_rx
        .await
        .map_err(|_| Error::Internal("copy task ended early".into()))??;
    Ok(CopyOut { stat, data: rx })
}

/// Extracts the tar read from `reader` into the directory `dest` of the container.
pub async fn copy_to<R: AsyncRead + Unpin + Send>(
    core: &Arc<Core>,
    ns: &str,
    input: &str,
    dest: &str,
    reader: R,
) -> Result<()> {
    check_path(dest)?;
    hold(core, ns, input, Freeze::Yes, async |h| {
        let root = Root::open(core, ns, h, true).await?;
        let dir = match open_in(root.fd(), dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(d) => d,
            Err(Error::InvalidArgument(_)) => {
                root.close()?;
                return Err(Error::InvalidArgument(format!(
                    "extraction point {dest} must be a directory in the container"
                )));
            }
            Err(e) => {
                root.close()?;
                return Err(e);
            }
        };
        let target = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        let options = ApplyOptions {
            sync: false,
            temp_dir: Some(core.config.root.join("tmp")),
            // Copied files named `.wh.*` are files, as docker copies them.
            whiteouts: false,
            ..ApplyOptions::default()
        };
        let applied = apply::apply(&target, &ApplyMode::Directory, reader, &options).await;
        drop(dir);
        root.close()?;
        applied.map(|_| ()).map_err(|e| match Error::from(e) {
            Error::InvalidArgument(m) => {
                Error::InvalidArgument(format!("copy into {dest} refused: {m}"))
            }
            other => other,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_names() {
        assert_eq!(top_name("/etc/hosts"), "hosts");
        assert_eq!(top_name("/etc/"), "etc");
        assert_eq!(top_name("/"), ".");
        assert_eq!(top_name("/tmp/."), ".");
    }
}
