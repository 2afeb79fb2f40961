//! Computing what changed between two trees, as a sorted list: either by comparing a lower
//! and an upper directory, or by reading an overlay upper directory (whiteout devices and
//! opaque xattrs already say what was deleted).

use std::collections::HashSet;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::is_overlay_private_xattr;

/// One change, in the order it goes into the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// `rel` exists in the upper tree (added or modified); `abs` is where to read it.
    Put { rel: PathBuf, abs: PathBuf },
    /// `rel` was deleted.
    Delete { rel: PathBuf },
    /// The directory `rel` hides everything of the layers below.
    Opaque { rel: PathBuf },
}

/// The upper directory uses overlay features a plain walk cannot express (redirects,
/// metacopy); compare trees instead.
#[derive(Debug)]
pub(crate) struct NeedsComparison(pub PathBuf);

fn io_err(what: &str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

fn sorted_names(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let mut names = fs::read_dir(dir)
        .map_err(io_err("read dir", dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(io_err("read dir", dir))?;
    names.sort();
    Ok(names)
}

fn lstat(path: &Path) -> Result<Metadata> {
    fs::symlink_metadata(path).map_err(io_err("stat", path))
}

/// xattrs of a path (not following symlinks), overlay-private ones excluded, sorted.
pub(crate) fn xattrs(path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("list xattrs of {}", path.display()), e)),
    };
    let mut out = Vec::new();
    for name in names {
        let bytes = name.as_encoded_bytes().to_vec();
        if is_overlay_private_xattr(&bytes) {
            continue;
        }
        if let Some(v) = xattr::get(path, &name).map_err(io_err("get xattr of", path))? {
            out.push((bytes, v));
        }
    }
    out.sort();
    Ok(out)
}

/// Collects changes, adding each change's missing parent directories first.
struct Collector {
    out: Vec<Change>,
    emitted_dirs: HashSet<PathBuf>,
    upper: PathBuf,
}

impl Collector {
    fn new(upper: &Path) -> Self {
        Collector {
            out: Vec::new(),
            emitted_dirs: HashSet::new(),
            upper: upper.to_path_buf(),
        }
    }

    fn parents(&mut self, rel: &Path) {
        let mut missing = Vec::new();
        let mut p = rel.parent();
        while let Some(dir) = p {
            if dir.as_os_str().is_empty() || self.emitted_dirs.contains(dir) {
                break;
            }
            missing.push(dir.to_path_buf());
            p = dir.parent();
        }
        for dir in missing.into_iter().rev() {
            self.emitted_dirs.insert(dir.clone());
            self.out.push(Change::Put {
                abs: self.upper.join(&dir),
                rel: dir,
            });
        }
    }

    fn put(&mut self, rel: PathBuf, is_dir: bool) {
        self.parents(&rel);
        if is_dir && !self.emitted_dirs.insert(rel.clone()) {
            return;
        }
        self.out.push(Change::Put {
            abs: self.upper.join(&rel),
            rel,
        });
    }

    fn delete(&mut self, rel: PathBuf) {
        self.parents(&rel);
        self.out.push(Change::Delete { rel });
    }

    fn opaque(&mut self, rel: PathBuf) {
        self.out.push(Change::Opaque { rel });
    }

    /// Everything below the upper directory `rel` (a new directory).
    fn put_subtree(&mut self, rel: &Path) -> Result<()> {
        let dir = self.upper.join(rel);
        for name in sorted_names(&dir)? {
            let child = rel.join(&name);
            let meta = lstat(&self.upper.join(&child))?;
            if meta.file_type().is_socket() {
                continue;
            }
            self.put(child.clone(), meta.is_dir());
            if meta.is_dir() {
                self.put_subtree(&child)?;
            }
        }
        Ok(())
    }
}

/// Changes from `lower` to `upper` (two full trees).
pub(crate) fn compare(lower: &Path, upper: &Path) -> Result<Vec<Change>> {
    let mut c = Collector::new(upper);
    compare_dir(&mut c, lower, Path::new(""))?;
    Ok(c.out)
}

fn compare_dir(c: &mut Collector, lower_root: &Path, rel: &Path) -> Result<()> {
    let lower_dir = lower_root.join(rel);
    let upper_dir = c.upper.join(rel);
    let lower_names = sorted_names(&lower_dir)?;
    let upper_names = sorted_names(&upper_dir)?;
    let (mut i, mut j) = (0, 0);
    while i < lower_names.len() || j < upper_names.len() {
        let order = match (lower_names.get(i), upper_names.get(j)) {
            (Some(l), Some(u)) => l.cmp(u),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                c.delete(rel.join(&lower_names[i]));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let child = rel.join(&upper_names[j]);
                let meta = lstat(&c.upper.join(&child))?;
                if !meta.file_type().is_socket() {
                    c.put(child.clone(), meta.is_dir());
                    if meta.is_dir() {
                        c.put_subtree(&child)?;
                    }
                }
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let child = rel.join(&upper_names[j]);
                let (lp, up) = (lower_root.join(&child), c.upper.join(&child));
                let (lm, um) = (lstat(&lp)?, lstat(&up)?);
                if um.file_type().is_socket() {
                    // Not representable in a layer: leave whatever is below.
                } else if lm.is_dir() && um.is_dir() {
                    if differs_meta(&lm, &um) || xattrs(&lp)? != xattrs(&up)? {
                        c.put(child.clone(), true);
                    }
                    compare_dir(c, lower_root, &child)?;
                } else if um.is_dir() {
                    c.put(child.clone(), true);
                    c.put_subtree(&child)?;
                } else if lm.is_dir() || differs_file(&lp, &lm, &up, &um)? {
                    c.put(child, false);
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

fn differs_meta(a: &Metadata, b: &Metadata) -> bool {
    a.mode() != b.mode() || a.uid() != b.uid() || a.gid() != b.gid() || a.rdev() != b.rdev()
}

fn differs_file(lp: &Path, lm: &Metadata, up: &Path, um: &Metadata) -> Result<bool> {
    if lm.dev() == um.dev() && lm.ino() == um.ino() {
        return Ok(false);
    }
    if differs_meta(lm, um) {
        return Ok(true);
    }
    if um.file_type().is_symlink() {
        let a = fs::read_link(lp).map_err(io_err("readlink", lp))?;
        let b = fs::read_link(up).map_err(io_err("readlink", up))?;
        if a != b {
            return Ok(true);
        }
    } else if um.is_file() {
        if lm.size() != um.size() || lm.mtime() != um.mtime() || lm.mtime_nsec() != um.mtime_nsec()
        {
            return Ok(true);
        }
        // Same size and time; with whole-second times that proves little: compare content.
        if um.mtime_nsec() == 0 && !same_content(lp, up)? {
            return Ok(true);
        }
    }
    Ok(xattrs(lp)? != xattrs(up)?)
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let mut fa = File::open(a).map_err(io_err("open", a))?;
    let mut fb = File::open(b).map_err(io_err("open", b))?;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba).map_err(io_err("read", a))?;
        if n == 0 {
            return Ok(fb.read(&mut bb[..1]).map_err(io_err("read", b))? == 0);
        }
        if fb.read_exact(&mut bb[..n]).is_err() {
            return Ok(false);
        }
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Changes recorded in an overlay upper directory.
pub(crate) fn overlay_upper(
    upper: &Path,
) -> Result<std::result::Result<Vec<Change>, NeedsComparison>> {
    let mut c = Collector::new(upper);
    match walk_upper(&mut c, Path::new(""))? {
        Ok(()) => Ok(Ok(c.out)),
        Err(n) => Ok(Err(n)),
    }
}

fn walk_upper(c: &mut Collector, rel: &Path) -> Result<std::result::Result<(), NeedsComparison>> {
    let dir = c.upper.join(rel);
    for name in sorted_names(&dir)? {
        let child = rel.join(&name);
        let abs = c.upper.join(&child);
        let meta = lstat(&abs)?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            c.delete(child);
            continue;
        }
        if ft.is_socket() {
            continue;
        }
        for private in ["trusted.overlay.redirect", "trusted.overlay.metacopy"] {
            if xattr::get(&abs, private).ok().flatten().is_some() {
                return Ok(Err(NeedsComparison(abs)));
            }
        }
        c.put(child.clone(), meta.is_dir());
        if meta.is_dir() {
            let opaque = xattr::get(&abs, "trusted.overlay.opaque").ok().flatten();
            if opaque.as_deref() == Some(b"y") {
                c.opaque(child.clone());
            }
            if let Err(n) = walk_upper(c, &child)? {
                return Ok(Err(n));
            }
        }
    }
    Ok(Ok(()))
}
