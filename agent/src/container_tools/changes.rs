//! `diff`: what a container added (A), changed (C) and deleted (D) in its root file
//! system. Layer diff computes the changes between a view of the container's parent
//! (the image) and its snapshot and writes them as a plain tar; the entries of that tar
//! are the changed paths (whiteouts the deleted ones), and a path the image has is a
//! change rather than an addition.

use std::sync::Arc;

use berth_snapshotter::apply::Compression;
use berth_snapshotter::diff::{DiffOptions, diff_mounts};
use berth_snapshotter::mount::{TempMount, read_only};
use tokio_stream::StreamExt;

use super::rootfs::{Freeze, Root, exists, hold};
use super::tarball::CHUNK;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::images::lease::OpLease;

/// A kind of change, numbered as docker's API numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

impl ChangeKind {
    /// docker's letter.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One changed path (absolute in the container).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Classifies the paths of a layer tar: whiteouts are deletions; others are changes
/// when `in_lower` says the image has them, additions otherwise.
pub fn classify(entries: &[String], in_lower: impl Fn(&str) -> bool) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    for e in entries {
        let p = e.trim_start_matches("./").trim_end_matches('/');
        if p.is_empty() || p == "." {
            continue;
        }
        let (dir, base) = match p.rsplit_once('/') {
            Some((d, b)) => (format!("/{d}"), b),
            None => (String::new(), p),
        };
        if base == OPAQUE {
            continue;
        }
        if let Some(name) = base.strip_prefix(WHITEOUT) {
            out.push(Change {
                path: format!("{dir}/{name}"),
                kind: ChangeKind::Deleted,
            });
            continue;
        }
        let path = format!("/{p}");
        let kind = if in_lower(&path) {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        out.push(Change { path, kind });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}

/// The changes of the container `input`.
pub async fn changes(core: &Arc<Core>, ns: &str, input: &str) -> Result<Vec<Change>> {
    let lease = OpLease::create(core, ns)?;
    hold(core, ns, input, Freeze::No, async |h| {
        let rec = &h.rec;
        let sn = core.snapshots.get(ns, &rec.snapshotter)?;
        let info = sn.stat(&rec.id).await?;
        let view = format!(
            "changes-{}-{}",
            &rec.id[..12.min(rec.id.len())],
            hex::encode(rand::random::<[u8; 6]>())
        );
        let lower = match &info.parent {
            Some(p) => {
                sn.view(&view, Some(p), Default::default(), Some(lease.id()))
                    .await?
            }
            None => Vec::new(),
        };
        let result = async {
            let upper = sn.mounts(&rec.id).await?;
            let names = layer_entries(core, &lower, &upper).await?;
            let lower_mount = if lower.is_empty() {
                None
            } else {
                let tmp = core.config.root.join("tmp");
                std::fs::create_dir_all(&tmp)
                    .map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
                Some(TempMount::new(&read_only(&lower), Some(&tmp))?)
            };
            let root = match &lower_mount {
                Some(m) => Some(Root::dir(m.path())?),
                None => None,
            };
            let out = classify(&names, |p| {
                root.as_ref()
                    .is_some_and(|r| exists(r.fd(), p).unwrap_or(false))
            });
            if let Some(r) = root {
                r.close()?;
            }
            if let Some(m) = lower_mount {
                m.close()?;
            }
            Ok(out)
        }
        .await;
        if info.parent.is_some()
            && let Err(e) = sn.remove(&view).await
        {
            tracing::warn!(view = %view, error = %e, "remove the diff view");
        }
        result
    })
    .await
}

/// The entry names of the layer from `lower` to `upper`.
async fn layer_entries(
    core: &Core,
    lower: &[berth_snapshotter::Mount],
    upper: &[berth_snapshotter::Mount],
) -> Result<Vec<String>> {
    let options = DiffOptions {
        compression: Compression::None,
        temp_dir: Some(core.config.root.join("tmp")),
    };
    let (w, r) = tokio::io::duplex(CHUNK);
    let write = async move {
        diff_mounts(lower, upper, w, &options)
            .await
            .map(|_| ())
            .map_err(Error::from)
    };
    let read = async move {
        let mut names = Vec::new();
        let mut archive = tokio_tar::Archive::new(r);
        let mut entries = archive
            .entries()
            .map_err(|e| Error::io("read the changes", e))?;
        while let Some(entry) = entries.next().await {
            let entry = entry.map_err(|e| Error::io("read the changes", e))?;
            let path = entry
                .path()
                .map_err(|e| Error::io("read the changes", e))?
                .to_string_lossy()
                .into_owned();
            names.push(path);
        }
        // Let the writer finish (the end-of-archive blocks).
        drop(entries);
        let mut rest = archive
            .into_inner()
            .map_err(|_| Error::Internal("the changes archive is still in use".into()))?;
        let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
        Ok::<_, Error>(names)
    };
    let (written, names) = tokio::join!(write, read);
    written?;
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_entries_become_docker_changes() {
        let entries: Vec<String> = [
            "etc/",
            "etc/hosts",
            "etc/.wh.motd",
            "tmp/new/",
            "tmp/new/file",
            "var/.wh..wh..opq",
            ".wh.gone",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let lower = ["/etc", "/etc/hosts", "/tmp", "/var"];
        let got = classify(&entries, |p| lower.contains(&p));
        let text: Vec<String> = got
            .iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect();
        assert_eq!(
            text,
            [
                "C /etc",
                "C /etc/hosts",
                "D /etc/motd",
                "D /gone",
                "A /tmp/new",
                "A /tmp/new/file",
            ]
        );
    }
}
