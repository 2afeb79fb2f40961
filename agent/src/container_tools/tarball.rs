//! A tar of a tree inside a container, written from file descriptors: every entry is
//! opened with `O_PATH | O_NOFOLLOW` from its parent directory's fd, so no symlink is
//! ever followed during the walk (symlinks are archived as symlinks). Regular files with
//! several links are archived once, then as hard links. Sockets are skipped. Names are
//! sorted, so the same tree gives the same tar.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode};
use tokio_tar::{EntryType, Header};

use super::rootfs::{read_link_fd, stat_fd};
use crate::error::{Error, Result};

const BLOCK: usize = 512;

/// Writes tar entries to `W`.
pub struct TarOut<W: Write> {
    w: W,
    /// (device, inode) -> the name it was first archived under.
    links: HashMap<(u64, u64), String>,
    buf: Vec<u8>,
}

fn write_err(e: io::Error) -> Error {
    Error::io("write the archive", e)
}

impl<W: Write> TarOut<W> {
    pub fn new(w: W) -> TarOut<W> {
        TarOut {
            w,
            links: HashMap::new(),
            buf: vec![0; 256 * 1024],
        }
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// A GNU long name (or long link) record before a header whose field is too short.
    fn long(&mut self, kind: EntryType, value: &[u8]) -> io::Result<()> {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_path("././@LongLink")?;
        h.set_mode(0o644);
        h.set_size(value.len() as u64 + 1);
        h.set_cksum();
        self.w.write_all(h.as_bytes())?;
        self.w.write_all(value)?;
        self.w.write_all(&[0])?;
        self.pad(value.len() as u64 + 1)
    }

    /// Writes the header of an entry (name, type, metadata from `st`, `size` bytes of
    /// data to follow, a link target).
    fn header(
        &mut self,
        name: &str,
        kind: EntryType,
        st: &FileStat,
        size: u64,
        link: Option<&[u8]>,
    ) -> io::Result<()> {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        if h.set_path(name).is_err() {
            self.long(EntryType::GNULongName, name.as_bytes())?;
            let mut cut = 99.min(name.len());
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            h.set_path(&name[..cut])?;
        }
        if let Some(target) = link {
            let text = std::ffi::OsStr::from_bytes(target);
            if target.len() >= 100 || h.set_link_name(text).is_err() {
                self.long(EntryType::GNULongLink, target)?;
            }
        }
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid as u64);
        h.set_gid(st.st_gid as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(size);
        if kind == EntryType::Char || kind == EntryType::Block {
            h.set_device_major(nix::sys::stat::major(st.st_rdev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(st.st_rdev) as u32)?;
        }
        h.set_cksum();
        self.w.write_all(h.as_bytes())
    }

    /// Archives what `fd` (an `O_PATH` fd) refers to, as `name`, and everything below it.
    pub fn walk(&mut self, fd: BorrowedFd<'_>, name: &str) -> Result<()> {
        let st = stat_fd(fd, name)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                let dir_name = if name.ends_with('/') {
                    name.to_string()
                } else {
                    format!("{name}/")
                };
                self.header(&dir_name, EntryType::Directory, &st, 0, None)
                    .map_err(write_err)?;
                let dir = nix::fcntl::openat(
                    fd,
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::io(format!("open directory {name}"), e.into()))?;
                let mut names: Vec<OsString> = {
                    let listing = dir
                        .try_clone()
                        .map_err(|e| Error::io(format!("read directory {name}"), e))?;
                    let mut d = nix::dir::Dir::from_fd(listing)
                        .map_err(|e| Error::io(format!("read directory {name}"), e.into()))?;
                    d.iter()
                        .filter_map(|e| e.ok())
                        .map(|e| {
                            OsString::from(std::ffi::OsStr::from_bytes(e.file_name().to_bytes()))
                        })
                        .filter(|n| n != "." && n != "..")
                        .collect()
                };
                names.sort();
                for n in names {
                    let child = match open_child(dir.as_fd(), &n) {
                        Ok(c) => c,
                        // Gone meanwhile (a running container may delete files).
                        Err(nix::errno::Errno::ENOENT) => continue,
                        Err(e) => {
                            return Err(Error::io(
                                format!("open {dir_name}{}", n.to_string_lossy()),
                                e.into(),
                            ));
                        }
                    };
                    self.walk(child.as_fd(), &format!("{dir_name}{}", n.to_string_lossy()))?;
                }
                Ok(())
            }
            libc::S_IFREG => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key).cloned() {
                        return self
                            .header(name, EntryType::Link, &st, 0, Some(first.as_bytes()))
                            .map_err(write_err);
                    }
                    self.links.insert(key, name.to_string());
                }
                let mut file = reopen(fd).map_err(|e| Error::io(format!("open {name}"), e))?;
                let size = st.st_size.max(0) as u64;
                self.header(name, EntryType::Regular, &st, size, None)
                    .map_err(write_err)?;
                self.copy(&mut file, size, name)?;
                self.pad(size).map_err(write_err)
            }
            libc::S_IFLNK => {
                let target = read_link_fd(fd)?;
                self.header(name, EntryType::Symlink, &st, 0, Some(target.as_bytes()))
                    .map_err(write_err)
            }
            libc::S_IFCHR => self
                .header(name, EntryType::Char, &st, 0, None)
                .map_err(write_err),
            libc::S_IFBLK => self
                .header(name, EntryType::Block, &st, 0, None)
                .map_err(write_err),
            libc::S_IFIFO => self
                .header(name, EntryType::Fifo, &st, 0, None)
                .map_err(write_err),
            _ => Ok(()),
        }
    }

    /// Copies exactly `size` bytes: a file that shrank meanwhile is padded with zeros, one
    /// that grew is cut, so the archive stays well-formed.
    fn copy(&mut self, file: &mut std::fs::File, size: u64, name: &str) -> Result<()> {
        let mut left = size;
        while left > 0 {
            let want = (self.buf.len() as u64).min(left) as usize;
            let n = file
                .read(&mut self.buf[..want])
                .map_err(|e| Error::io(format!("read {name}"), e))?;
            if n == 0 {
                break;
            }
            self.w.write_all(&self.buf[..n]).map_err(write_err)?;
            left -= n as u64;
        }
        while left > 0 {
            let n = (self.buf.len() as u64).min(left) as usize;
            self.buf[..n].fill(0);
            self.w.write_all(&self.buf[..n]).map_err(write_err)?;
            left -= n as u64;
        }
        Ok(())
    }

    /// The end-of-archive blocks; returns the writer.
    pub fn finish(mut self) -> Result<W> {
        self.w.write_all(&[0u8; 2 * BLOCK]).map_err(write_err)?;
        self.w.flush().map_err(write_err)?;
        Ok(self.w)
    }
}

fn open_child(dir: BorrowedFd<'_>, name: &OsString) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name.as_os_str(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Opens the regular file an `O_PATH` fd refers to for reading (through the fd itself,
/// never by name).
fn reopen(fd: BorrowedFd<'_>) -> io::Result<std::fs::File> {
    std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// A `Write` that hands chunks to an async receiver (for a walk on a blocking thread).
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

/// Bytes per chunk sent.
pub const CHUNK: usize = 1 << 20;

impl ChannelWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes>>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::container_tools::rootfs::{Root, open_path};

    #[tokio::test]
    async fn archives_a_tree_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("d/sub")).unwrap();
        std::fs::write(root.join("d/a.txt"), "hello").unwrap();
        std::fs::hard_link(root.join("d/a.txt"), root.join("d/b.txt")).unwrap();
        symlink("/etc/passwd", root.join("d/sub/pw")).unwrap();
        let long = "x".repeat(150);
        std::fs::write(root.join("d").join(&long), "long").unwrap();
        let r = Root::dir(&root).unwrap();
        let top = open_path(r.fd(), "/d", false).unwrap();
        let mut t = TarOut::new(Vec::new());
        t.walk(top.as_fd(), "d").unwrap();
        let bytes = t.finish().unwrap();
        let mut ar = tokio_tar::Archive::new(std::io::Cursor::new(bytes));
        let mut seen = Vec::new();
        use tokio_stream::StreamExt;
        let mut entries = ar.entries().unwrap();
        while let Some(e) = entries.next().await {
            let e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let kind = e.header().entry_type();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            seen.push((path, kind, link));
        }
        let names: Vec<&str> = seen.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(names[0], "d/");
        assert!(names.contains(&"d/a.txt"));
        let b = seen.iter().find(|(p, _, _)| p == "d/b.txt").unwrap();
        assert_eq!(b.1, EntryType::Link);
        assert_eq!(b.2, "d/a.txt");
        let pw = seen.iter().find(|(p, _, _)| p == "d/sub/pw").unwrap();
        assert_eq!(pw.1, EntryType::Symlink);
        assert_eq!(pw.2, "/etc/passwd");
        assert!(names.contains(&format!("d/{long}").as_str()));
    }
}
