//! `export`: a container's root file system (its snapshot: the image's layers and the
//! container's changes, without volumes or binds, as docker exports it) as one tar. It is
//! the diff of the snapshot against an empty tree, written by layer diff from a
//! read-only mount; a running container is frozen until the tar has been taken.

use std::sync::Arc;

use berth_snapshotter::apply::Compression;
use berth_snapshotter::diff::{DiffOptions, diff_mounts};
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::rootfs::{Freeze, hold};
use super::tarball::CHUNK;
use crate::core::Core;
use crate::error::{Error, Result};

/// Streams the tar of the container's root file system.
pub async fn export(
    core: &Arc<Core>,
    ns: &str,
    input: &str,
) -> Result<mpsc::Receiver<Result<Bytes>>> {
    // Fail early, before the stream, for a container that does not exist.
    let rec = core.berth.store.resolve(ns, input)?;
    let (tx, rx) = mpsc::channel::<Result<Bytes>>(4);
    let (core, ns, id) = (core.clone(), ns.to_string(), rec.id);
    tokio::spawn(async move {
        let sender = tx.clone();
        let result = hold(&core, &ns, &id, Freeze::Yes, async |h| {
            let sn = core.snapshots.get(&ns, &h.rec.snapshotter)?;
            let mounts = sn.mounts(&h.rec.id).await?;
            let options = DiffOptions {
                compression: Compression::None,
                temp_dir: Some(core.config.root.join("tmp")),
            };
            let (w, mut r) = tokio::io::duplex(CHUNK);
            let write = async move {
                let out = diff_mounts(&[], &mounts, w, &options).await;
                out.map(|_| ()).map_err(Error::from)
            };
            let forward = async move {
                loop {
                    let mut buf = BytesMut::with_capacity(CHUNK);
                    while buf.len() < CHUNK {
                        match r.read_buf(&mut buf).await {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e) => return Err(Error::io("read the export", e)),
                        }
                    }
                    let end = buf.len() < CHUNK;
                    if !buf.is_empty() && sender.send(Ok(buf.freeze())).await.is_err() {
                        return Err(Error::Unavailable("the client went away".into()));
                    }
                    if end {
                        return Ok(());
                    }
                }
            };
            let (written, forwarded) = tokio::join!(write, forward);
            written.and(forwarded)
        })
        .await;
        if let Err(e) = result {
            let _ = tx.send(Err(e)).await;
        }
    });
    Ok(rx)
}
