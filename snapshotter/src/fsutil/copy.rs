//! Full tree copies for the native snapshotter: owners, modes (incl. setuid), times, xattrs,
//! hard links, symlinks and special files are preserved; symlinks are never followed.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, lchown};
use std::path::Path;

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::time::TimeSpec;

use crate::error::{Error, Result};

/// Copies the contents and metadata of directory `src` onto directory `dst` (which must
/// exist; its own metadata is set from `src`).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let mut links = HashMap::new();
    copy_dir(src, dst, &mut links)
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(src)
        .map_err(io_err("read dir", src))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(io_err("read dir", src))?;
    names.sort();
    for name in names {
        let s = src.join(&name);
        let d = dst.join(&name);
        let meta = fs::symlink_metadata(&s).map_err(io_err("stat", &s))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&d).map_err(io_err("mkdir", &d))?;
            copy_dir(&s, &d, links)?;
            continue;
        }
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, &d).map_err(io_err("link", &d))?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), d.clone());
        }
        if ft.is_file() {
            let mut from = File::open(&s).map_err(io_err("open", &s))?;
            let mut to = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&d)
                .map_err(io_err("create", &d))?;
            // std uses copy_file_range, which reflinks where the file system can.
            io::copy(&mut from, &mut to).map_err(io_err("copy to", &d))?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&s).map_err(io_err("readlink", &s))?;
            std::os::unix::fs::symlink(&target, &d).map_err(io_err("symlink", &d))?;
        } else {
            let kind = SFlag::from_bits_truncate(meta.mode()) & SFlag::S_IFMT;
            mknod(&d, kind, Mode::from_bits_truncate(0o600), meta.rdev())
                .map_err(|e| Error::errno(format!("mknod {}", d.display()), e))?;
        }
        copy_metadata(&s, &d, &meta)?;
    }
    let meta = fs::symlink_metadata(src).map_err(io_err("stat", src))?;
    copy_metadata(src, dst, &meta)
}

/// Owner, xattrs, mode and times of `src` onto `dst` (in that order: chown clears setuid).
pub(crate) fn copy_metadata(src: &Path, dst: &Path, meta: &fs::Metadata) -> Result<()> {
    lchown(dst, Some(meta.uid()), Some(meta.gid())).map_err(io_err("chown", dst))?;
    copy_xattrs(src, dst)?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_err("chmod", dst))?;
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| Error::errno(format!("set times of {}", dst.display()), e))
}

fn copy_xattrs(src: &Path, dst: &Path) -> Result<()> {
    let names = match xattr::list(src) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(()),
        Err(e) => return Err(Error::io(format!("list xattrs of {}", src.display()), e)),
    };
    for name in names {
        let Some(value) = xattr::get(src, &name).map_err(io_err("get xattr of", src))? else {
            continue;
        };
        if let Err(e) = xattr::set(dst, &name, &value) {
            if e.raw_os_error() == Some(libc::ENOTSUP) {
                tracing::warn!(path = %dst.display(), xattr = ?name, "xattr not supported, skipped");
                continue;
            }
            return Err(Error::io(
                format!("set xattr {name:?} on {}", dst.display()),
                e,
            ));
        }
    }
    Ok(())
}
