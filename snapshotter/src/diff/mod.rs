//! Layer diff: the difference between a lower and an upper tree written as an OCI layer
//! (tar, gzip by default) to any `AsyncWrite`, returning the digests and sizes of the
//! compressed blob and of the uncompressed tar (the diff ID).
//!
//! Two ways to find the changes: comparing two directories (both read-only), or, for an
//! overlay snapshot, reading its upper directory (whiteout devices become `.wh.<name>`,
//! opaque directories `.wh..wh..opq`). Entries are sorted by path, parents before children;
//! times are whole seconds, so the same trees always give the same tar.

mod changes;
pub(crate) mod tar_writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use async_compression::Level;
use async_compression::tokio::write::{GzipEncoder, ZstdEncoder};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

use changes::Change;
use tar_writer::{TarEntry, TarKind, padding, write_header, write_trailer};

pub use crate::apply::Compression;
use crate::digest::{Digested, HashingWriter};
use crate::error::{Error, Result};
use crate::mount::{TempMount, read_only};
use crate::types::Mount;

/// Media type of an uncompressed OCI layer.
pub const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Options of a diff.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Compression of the written blob (gzip by default).
    pub compression: Compression,
    /// Where [`diff_mounts`] creates temporary mount points (the system temp dir if `None`).
    pub temp_dir: Option<PathBuf>,
}

/// What a diff wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffResult {
    /// The OCI media type of the blob (`application/vnd.oci.image.layer.v1.tar[+gzip]`).
    pub media_type: String,
    /// Digest and size of the blob as written.
    pub compressed: Digested,
    /// Digest and size of the uncompressed tar (the diff ID).
    pub uncompressed: Digested,
}

/// Writes the layer that turns `lower` into `upper` (two directories, not changing meanwhile).
pub async fn diff_dirs<W: AsyncWrite + Unpin + Send>(
    lower: &Path,
    upper: &Path,
    writer: W,
    options: &DiffOptions,
) -> Result<DiffResult> {
    let (lower, upper) = (lower.to_path_buf(), upper.to_path_buf());
    let changes = blocking(move || changes::compare(&lower, &upper)).await?;
    write_layer(changes, writer, options).await
}

/// Writes the layer recorded in an overlay upper directory. Fails with `NotImplemented`
/// when the directory uses redirects or metacopy (compare the mounted trees instead).
pub async fn diff_overlay_upper<W: AsyncWrite + Unpin + Send>(
    upper: &Path,
    writer: W,
    options: &DiffOptions,
) -> Result<DiffResult> {
    let upper = upper.to_path_buf();
    let changes = blocking(move || changes::overlay_upper(&upper)).await?;
    match changes {
        Ok(changes) => write_layer(changes, writer, options).await,
        Err(n) => Err(Error::NotImplemented(format!(
            "overlay upper {} uses redirects or metacopy; compare the mounted trees",
            n.0.display()
        ))),
    }
}

/// Writes the layer between two mount lists (as the Diff service receives them): uses the
/// overlay upper directory when `upper` is an overlay directly on top of `lower`, otherwise
/// mounts both read-only on temporary directories and compares them. An empty `lower` is an
/// empty tree.
pub async fn diff_mounts<W: AsyncWrite + Unpin + Send>(
    lower: &[Mount],
    upper: &[Mount],
    writer: W,
    options: &DiffOptions,
) -> Result<DiffResult> {
    if let Some(upperdir) = overlay_on_top(lower, upper) {
        let dir = upperdir.clone();
        if let Ok(changes) = blocking(move || changes::overlay_upper(&dir)).await? {
            return write_layer(changes, writer, options).await;
        }
    }
    let (lower, upper, temp_dir) = (lower.to_vec(), upper.to_vec(), options.temp_dir.clone());
    let (changes, mounts) = blocking(move || {
        let lower_mount = if lower.is_empty() {
            None
        } else {
            Some(TempMount::new(&read_only(&lower), temp_dir.as_deref())?)
        };
        let empty =
            tempfile::tempdir().map_err(|e| Error::io("create empty lower directory", e))?;
        let upper_mount = TempMount::new(&read_only(&upper), temp_dir.as_deref())?;
        let lower_path = lower_mount
            .as_ref()
            .map(|m| m.path())
            .unwrap_or(empty.path());
        let changes = changes::compare(lower_path, upper_mount.path())?;
        Ok((changes, (lower_mount, upper_mount, empty)))
    })
    .await?;
    // Files are read from the mounts while writing; unmount afterwards.
    let result = write_layer(changes, writer, options).await;
    let (lower_mount, upper_mount, _empty) = mounts;
    blocking(move || {
        upper_mount.close()?;
        if let Some(m) = lower_mount {
            m.close()?;
        }
        Ok(())
    })
    .await?;
    result
}

/// The upper directory when `upper` is one overlay mount whose lower directories are
/// exactly what `lower` shows.
fn overlay_on_top(lower: &[Mount], upper: &[Mount]) -> Option<PathBuf> {
    let [u] = upper else { return None };
    if u.kind != "overlay" {
        return None;
    }
    let upperdir = u.option_value("upperdir")?;
    let lowers: Vec<&str> = u.option_value("lowerdir")?.split(':').collect();
    let shown: Vec<String> = match lower {
        [m] if m.is_bind() => vec![m.source.clone()],
        [m] if m.kind == "overlay" => {
            let ro = read_only(std::slice::from_ref(m));
            ro[0]
                .option_value("lowerdir")?
                .split(':')
                .map(str::to_string)
                .collect()
        }
        _ => return None,
    };
    (shown == lowers).then(|| PathBuf::from(upperdir))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::io("diff task", std::io::Error::other(e)))?
}

/// Streams the changes as a tar through the compressor into `writer`.
async fn write_layer<W: AsyncWrite + Unpin + Send>(
    changes: Vec<Change>,
    writer: W,
    options: &DiffOptions,
) -> Result<DiffResult> {
    let write_err = |e| Error::io("write layer", e);
    let mut compressed = HashingWriter::new(writer, false);
    let uncompressed = {
        let encoder: Box<dyn AsyncWrite + Unpin + Send + '_> = match options.compression {
            Compression::Gzip => {
                Box::new(GzipEncoder::with_quality(&mut compressed, Level::Default))
            }
            Compression::Zstd => Box::new(ZstdEncoder::new(&mut compressed)),
            Compression::None => Box::new(&mut compressed),
        };
        let mut tar = HashingWriter::new(BufWriter::with_capacity(256 * 1024, encoder), true);
        let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
        let mut buf = vec![0u8; 1024 * 1024];
        for change in changes {
            write_change(&mut tar, change, &mut links, &mut buf).await?;
        }
        write_trailer(&mut tar).await.map_err(write_err)?;
        tar.shutdown().await.map_err(write_err)?;
        tar.digested()
    };
    Ok(DiffResult {
        media_type: format!(
            "{MEDIA_TYPE_LAYER}{}",
            options.compression.media_type_suffix()
        ),
        compressed: compressed.digested(),
        uncompressed,
    })
}

fn rel_bytes(rel: &Path, dir: bool) -> Vec<u8> {
    let mut b = rel.as_os_str().as_bytes().to_vec();
    if dir {
        b.push(b'/');
    }
    b
}

fn whiteout_entry(dir: Option<&Path>, name: &[u8]) -> TarEntry {
    let mut path = dir
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| rel_bytes(d, true))
        .unwrap_or_default();
    path.extend_from_slice(name);
    let mut e = TarEntry::new(path, TarKind::File);
    e.mode = 0;
    e
}

async fn write_change<W: AsyncWrite + Unpin>(
    tar: &mut W,
    change: Change,
    links: &mut HashMap<(u64, u64), Vec<u8>>,
    buf: &mut [u8],
) -> Result<()> {
    let write_err = |e| Error::io("write layer", e);
    let (rel, abs) = match change {
        Change::Delete { rel } => {
            let mut name = b".wh.".to_vec();
            name.extend_from_slice(rel.file_name().map(|n| n.as_bytes()).unwrap_or_default());
            let e = whiteout_entry(rel.parent(), &name);
            return write_header(tar, &e).await.map_err(write_err);
        }
        Change::Opaque { rel } => {
            let e = whiteout_entry(Some(&rel), b".wh..wh..opq");
            return write_header(tar, &e).await.map_err(write_err);
        }
        Change::Put { rel, abs } => (rel, abs),
    };
    let meta =
        fs::symlink_metadata(&abs).map_err(|e| Error::io(format!("stat {}", abs.display()), e))?;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        TarKind::Dir
    } else if ft.is_file() {
        TarKind::File
    } else if ft.is_symlink() {
        TarKind::Symlink
    } else if ft.is_char_device() {
        TarKind::Char
    } else if ft.is_block_device() {
        TarKind::Block
    } else if ft.is_fifo() {
        TarKind::Fifo
    } else {
        return Ok(());
    };
    let mut e = TarEntry::new(rel_bytes(&rel, kind == TarKind::Dir), kind);
    e.mode = meta.mode() & 0o7777;
    e.uid = meta.uid() as u64;
    e.gid = meta.gid() as u64;
    e.mtime = meta.mtime();
    e.xattrs = changes::xattrs(&abs)?;
    match kind {
        TarKind::Symlink => {
            let target = fs::read_link(&abs)
                .map_err(|err| Error::io(format!("readlink {}", abs.display()), err))?;
            e.link = Some(target.as_os_str().as_bytes().to_vec());
        }
        TarKind::Char | TarKind::Block => {
            e.device = (
                nix::sys::stat::major(meta.rdev()) as u32,
                nix::sys::stat::minor(meta.rdev()) as u32,
            );
        }
        TarKind::File if meta.nlink() > 1 => {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                e.kind = TarKind::HardLink;
                e.link = Some(first.clone());
                return write_header(tar, &e).await.map_err(write_err);
            }
            links.insert(key, e.path.clone());
        }
        _ => {}
    }
    if kind != TarKind::File {
        return write_header(tar, &e).await.map_err(write_err);
    }
    e.size = meta.size();
    let mut file =
        File::open(&abs).map_err(|err| Error::io(format!("open {}", abs.display()), err))?;
    write_header(tar, &e).await.map_err(write_err)?;
    let mut left = e.size;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = file
            .read(&mut buf[..want])
            .map_err(|err| Error::io(format!("read {}", abs.display()), err))?;
        if n == 0 {
            return Err(Error::io(
                format!("read {}", abs.display()),
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shrank while the layer was written",
                ),
            ));
        }
        tar.write_all(&buf[..n]).await.map_err(write_err)?;
        left -= n as u64;
    }
    tar.write_all(padding(e.size)).await.map_err(write_err)?;
    Ok(())
}
