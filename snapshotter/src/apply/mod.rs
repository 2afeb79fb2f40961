//! Layer apply: decompress (gzip, zstd or none, detected from the media type or the magic
//! bytes) and untar a layer onto a directory, converting OCI whiteouts, keeping owners,
//! modes, times, xattrs, links and device nodes, and hashing the uncompressed stream into
//! the diff ID.
//!
//! Safety: every parent directory is resolved below the target with
//! `openat2(RESOLVE_BENEATH)` (and its descriptor reused by the following entries until
//! anything is removed or a directory changes, see `dirs`); entries
//! with `..`, absolute paths, parents that lead outside through a symlink, hard links to
//! outside, invalid whiteouts, and layers over the size limit fail the apply with
//! [`Error::UnsafeEntry`], [`Error::InvalidLayer`] or [`Error::LimitExceeded`], and nothing
//! is written outside the target. What was written inside stays: the caller removes the
//! snapshot of a failed apply.
//!
//! The file-system calls are made inline from the async task (they hit the page cache; the
//! tree is synced once at the end with `syncfs`), so run applies on a multi-threaded runtime.

mod compression;
mod dirs;
mod entry;
mod path;
mod root;
mod whiteout;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use tokio::io::{AsyncRead, BufReader};
use tokio_stream::StreamExt;
use tokio_tar::{Archive, Entry, EntryType};

pub use compression::Compression;
use dirs::DirHandle;
use entry::{EntryKind, EntryMeta, Outcome};
use path::{Components, join, normalize, valid_name};
use root::Root;

use crate::digest::{Digested, HashingReader, LimitReached};
use crate::error::{Error, Result};
use crate::fsutil::{remove_at, sync_filesystem};
use crate::mount::TempMount;
use crate::types::Mount;

/// Buffer between the decompressor and the tar parser.
const TAR_BUFFER: usize = 1024 * 1024;

/// How whiteouts are written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ApplyMode {
    /// A plain directory holding the full tree: a whiteout deletes the path below it, an
    /// opaque marker empties the directory of everything not from this layer.
    #[default]
    Directory,
    /// An overlay upper directory: `.wh.name` becomes a 0:0 character device, `.wh..wh..opq`
    /// the xattr `trusted.overlay.opaque=y`. `lowers` (newest first) supply the metadata of
    /// parent directories the layer does not list.
    OverlayUpper {
        /// The overlay's lower directories, newest first.
        lowers: Vec<PathBuf>,
    },
}

/// Options of an apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Fail when the uncompressed layer is larger than this many bytes.
    pub max_uncompressed_bytes: Option<u64>,
    /// The compression, usually from [`Compression::from_media_type`]; detected from the
    /// magic bytes when `None`.
    pub compression: Option<Compression>,
    /// Sync the target file system once at the end (`syncfs`). On by default.
    pub sync: bool,
    /// Where [`apply_to_mounts`] creates a temporary mount point when it needs one (the
    /// system temp dir when `None`).
    pub temp_dir: Option<PathBuf>,
    /// Entries named `.wh.*` are whiteouts (a layer). Off, they are ordinary entries,
    /// for tars that are plain files (`cp` into a container). On by default.
    pub whiteouts: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            max_uncompressed_bytes: None,
            compression: None,
            sync: true,
            temp_dir: None,
            whiteouts: true,
        }
    }
}

/// Maps a read error of the layer stream to the crate error.
pub(crate) fn read_error(e: io::Error, entry: &str) -> Error {
    if let Some(LimitReached(limit)) = e.get_ref().and_then(|i| i.downcast_ref::<LimitReached>()) {
        return Error::LimitExceeded { limit: *limit };
    }
    let at = if entry.is_empty() {
        String::new()
    } else {
        format!(" at entry {entry:?}")
    };
    match e.kind() {
        io::ErrorKind::InvalidData
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::Other => Error::InvalidLayer(format!("reading the layer{at}: {e}")),
        _ => Error::io(format!("reading the layer{at}"), e),
    }
}

/// Applies the layer read from `reader` onto the directory `dir`; returns the digest and
/// size of the uncompressed tar (the diff ID).
pub async fn apply<R: AsyncRead + Unpin + Send>(
    dir: &Path,
    mode: &ApplyMode,
    reader: R,
    options: &ApplyOptions,
) -> Result<Digested> {
    let decoded = compression::decoder(reader, options.compression)
        .await
        .map_err(|e| read_error(e, ""))?;
    let hashing = HashingReader::new(decoded, options.max_uncompressed_bytes);
    let mut archive = Archive::new(BufReader::with_capacity(TAR_BUFFER, hashing));
    let lowers = match mode {
        ApplyMode::Directory => Vec::new(),
        ApplyMode::OverlayUpper { lowers } => lowers.clone(),
    };
    let mut unpacker = Unpacker {
        root: Root::open(dir, lowers)?,
        overlay: matches!(mode, ApplyMode::OverlayUpper { .. }),
        unpacked: HashSet::new(),
        dirs: Vec::new(),
        buf: vec![0; entry::COPY_BUFFER],
        limit: options.max_uncompressed_bytes,
        whiteouts: options.whiteouts,
    };
    {
        let mut entries = archive.entries().map_err(|e| read_error(e, ""))?;
        while let Some(item) = entries.next().await {
            let mut item = item.map_err(|e| read_error(e, ""))?;
            unpacker.entry(&mut item).await?;
        }
    }
    unpacker.finish();
    // Hash the rest of the stream (the end-of-archive blocks and record padding).
    let mut rest = archive
        .into_inner()
        .map_err(|_| Error::io("finish layer", io::Error::other("tar archive still in use")))?;
    tokio::io::copy(&mut rest, &mut tokio::io::sink())
        .await
        .map_err(|e| read_error(e, ""))?;
    let digested = rest.into_inner().finish();
    if options.sync {
        sync_filesystem(dir)?;
    }
    Ok(digested)
}

/// Applies a layer onto a snapshot's mount list the way containerd does: a single bind
/// mount is written through its source directory; a single overlay mount is written into its
/// upper directory in overlay mode; anything else is mounted on a temporary directory,
/// applied there and unmounted.
pub async fn apply_to_mounts<R: AsyncRead + Unpin + Send>(
    mounts: &[Mount],
    reader: R,
    options: &ApplyOptions,
) -> Result<Digested> {
    match mounts {
        [m] if m.is_bind() && !m.is_read_only() => {
            apply(Path::new(&m.source), &ApplyMode::Directory, reader, options).await
        }
        [m] if m.kind == "overlay" && m.option_value("upperdir").is_some() => {
            let upper = PathBuf::from(m.option_value("upperdir").unwrap_or_default());
            let lowers = m
                .option_value("lowerdir")
                .map(|l| {
                    l.split(':')
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default();
            apply(&upper, &ApplyMode::OverlayUpper { lowers }, reader, options).await
        }
        _ => {
            let mount = TempMount::new(mounts, options.temp_dir.as_deref())?;
            let result = apply(mount.path(), &ApplyMode::Directory, reader, options).await;
            mount.close()?;
            result
        }
    }
}

/// State of one apply.
struct Unpacker {
    root: Root,
    overlay: bool,
    /// Paths written by this layer (directory mode: opaque markers keep them).
    unpacked: HashSet<OsString>,
    /// Directories whose times are set at the end (creating children changes them).
    dirs: Vec<(Components, TimeSpec)>,
    buf: Vec<u8>,
    limit: Option<u64>,
    whiteouts: bool,
}

impl Unpacker {
    async fn entry<R: AsyncRead + Unpin + Send>(&mut self, e: &mut Entry<R>) -> Result<()> {
        let raw = e
            .path_bytes()
            .map_err(|err| read_error(err, ""))?
            .into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let et = e.header().entry_type();
        let kind = match et {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => EntryKind::File,
            EntryType::Directory => EntryKind::Dir,
            EntryType::Symlink => EntryKind::Symlink,
            EntryType::Link => EntryKind::HardLink,
            EntryType::Char => EntryKind::Char,
            EntryType::Block => EntryKind::Block,
            EntryType::Fifo => EntryKind::Fifo,
            EntryType::XGlobalHeader => return Ok(()),
            other => {
                return Err(Error::InvalidLayer(format!(
                    "entry {shown:?} has an unsupported type {:?}",
                    other.as_byte() as char
                )));
            }
        };
        let components = normalize(&raw).map_err(|reason| Error::UnsafeEntry {
            path: shown.clone(),
            reason: reason.into(),
        })?;
        let meta = read_meta(e, kind, &shown).await?;
        if let Some(limit) = self.limit
            && meta.size > limit
        {
            return Err(Error::LimitExceeded { limit });
        }
        let Some((name, parent)) = components.split_last() else {
            // The root itself: its metadata belongs to the snapshot, not the layer.
            return Ok(());
        };
        let name_bytes = name.as_bytes();
        if self.whiteouts
            && let Some(target) = name_bytes.strip_prefix(whiteout::PREFIX)
        {
            if name_bytes == whiteout::OPAQUE {
                return self.opaque(parent, &shown);
            }
            if target.starts_with(whiteout::PREFIX) {
                // Other AUFS metadata (.wh..wh.plnk, ...): not content.
                return Ok(());
            }
            if !valid_name(target) {
                return Err(Error::UnsafeEntry {
                    path: shown,
                    reason: "invalid whiteout name".into(),
                });
            }
            return self.whiteout(parent, std::ffi::OsStr::from_bytes(target), &meta, &shown);
        }

        let pdir = self
            .root
            .dir(parent, true, &shown)?
            .ok_or_else(|| Error::InvalidLayer(format!("parent of {shown:?} missing")))?;
        // The creating call reports an existing entry (EEXIST); it is removed once and the
        // entry created again.
        let mut replaced = false;
        loop {
            let link = if kind == EntryKind::HardLink {
                Some(self.link_target(&meta, &shown)?)
            } else {
                None
            };
            let outcome = entry::create(
                &pdir,
                self.root.creds(),
                name,
                &meta,
                e,
                &mut self.buf,
                &shown,
                link.as_ref().map(|(dir, n)| (dir.as_fd(), n.as_os_str())),
            )
            .await?;
            match outcome {
                Outcome::Created => break,
                Outcome::UpdatedDir => {
                    // Its owner, mode or default ACL may have changed.
                    self.root.forget();
                    break;
                }
                Outcome::Exists if !replaced => {
                    remove_at(pdir.as_fd(), name).map_err(|err| {
                        Error::errno(
                            format!("replace {shown:?} in {}", self.root.path().display()),
                            err,
                        )
                    })?;
                    self.root.forget();
                    replaced = true;
                }
                Outcome::Exists => {
                    return Err(Error::errno(
                        format!("create {shown:?} in {}", self.root.path().display()),
                        Errno::EEXIST,
                    ));
                }
            }
        }
        if kind == EntryKind::Dir {
            self.dirs.push((components.clone(), meta.mtime));
        }
        if !self.overlay {
            self.unpacked.insert(join(&components));
        }
        Ok(())
    }

    /// The directory and name a hard link entry points to.
    fn link_target(&mut self, meta: &EntryMeta, shown: &str) -> Result<(DirHandle, OsString)> {
        let target = meta.link.clone().unwrap_or_default();
        let tcomps = normalize(&target).map_err(|reason| Error::UnsafeEntry {
            path: shown.to_string(),
            reason: format!("hard link target: {reason}"),
        })?;
        let Some((tname, tparent)) = tcomps.split_last() else {
            return Err(Error::UnsafeEntry {
                path: shown.to_string(),
                reason: "hard link to the root directory".into(),
            });
        };
        let tdir = self.root.dir(tparent, false, shown)?.ok_or_else(|| {
            Error::InvalidLayer(format!("hard link {shown:?}: target directory missing"))
        })?;
        Ok((tdir, tname.clone()))
    }

    /// Sets directory times last, once nothing more is created in them. Directories that
    /// were replaced or moved behind a symlink since are skipped.
    fn finish(&mut self) {
        for (components, mtime) in self.dirs.drain(..) {
            let Some((name, parent)) = components.split_last() else {
                continue;
            };
            if let Ok(Some(pfd)) = self.root.dir(parent, false, "") {
                let _ = entry::set_times(pfd.as_fd(), name, mtime, "");
            }
        }
    }
}

/// Reads an entry's metadata, applying PAX overrides (uid, gid, mtime, SCHILY.xattr.*).
async fn read_meta<R: AsyncRead + Unpin + Send>(
    e: &mut Entry<R>,
    kind: EntryKind,
    shown: &str,
) -> Result<EntryMeta> {
    let bad = |what: &str, err: io::Error| {
        Error::InvalidLayer(format!("entry {shown:?}: bad {what}: {err}"))
    };
    let h = e.header();
    let id = |v: u64, what: &str| {
        u32::try_from(v)
            .map_err(|_| Error::InvalidLayer(format!("entry {shown:?}: {what} {v} out of range")))
    };
    let mut meta = EntryMeta {
        kind,
        mode: h.mode().map_err(|err| bad("mode", err))?,
        uid: id(h.uid().map_err(|err| bad("uid", err))?, "uid")?,
        gid: id(h.gid().map_err(|err| bad("gid", err))?, "gid")?,
        mtime: TimeSpec::new(h.mtime().map_err(|err| bad("mtime", err))? as i64, 0),
        size: e.effective_size(),
        link: e
            .link_name_bytes()
            .map_err(|err| bad("link name", err))?
            .map(|c| c.into_owned()),
        device: (0, 0),
        xattrs: Vec::new(),
    };
    if matches!(kind, EntryKind::Char | EntryKind::Block) {
        meta.device = (
            h.device_major()
                .map_err(|err| bad("device major", err))?
                .unwrap_or(0) as u64,
            h.device_minor()
                .map_err(|err| bad("device minor", err))?
                .unwrap_or(0) as u64,
        );
    }
    if let Some(exts) = e
        .pax_extensions()
        .await
        .map_err(|err| read_error(err, shown))?
    {
        for ext in exts {
            let ext = ext.map_err(|err| bad("pax record", err))?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            let number = || {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
            };
            match key {
                b"uid" => {
                    meta.uid = id(
                        number()
                            .ok_or_else(|| bad("pax uid", io::ErrorKind::InvalidData.into()))?,
                        "uid",
                    )?
                }
                b"gid" => {
                    meta.gid = id(
                        number()
                            .ok_or_else(|| bad("pax gid", io::ErrorKind::InvalidData.into()))?,
                        "gid",
                    )?
                }
                b"mtime" => {
                    if let Some(t) = parse_pax_time(value) {
                        meta.mtime = t;
                    }
                }
                k => {
                    if let Some(name) = k.strip_prefix(b"SCHILY.xattr.") {
                        meta.xattrs.push((
                            std::ffi::OsStr::from_bytes(name).to_os_string(),
                            value.to_vec(),
                        ));
                    }
                }
            }
        }
    }
    Ok(meta)
}

/// Parses a PAX time (`secs[.fraction]`).
fn parse_pax_time(value: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(value).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        let digits: String = frac.chars().take(9).collect();
        let scale = 10i64.pow(9 - digits.len() as u32);
        nanos = digits.parse::<i64>().ok()? * scale;
    }
    if secs < 0 && nanos > 0 {
        return Some(TimeSpec::new(secs - 1, 1_000_000_000 - nanos));
    }
    Some(TimeSpec::new(secs, nanos))
}
