//! A small streaming tar writer: ustar headers plus PAX records where ustar cannot say it
//! (long names and link targets, xattrs, large ids, sizes and times). Names are written as
//! given, unchecked: callers produce them (and tests produce hostile ones on purpose).

use std::io;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_tar::{EntryType, Header};

const BLOCK: usize = 512;
const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

/// The type of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TarKind {
    File,
    Dir,
    Symlink,
    HardLink,
    Char,
    Block,
    Fifo,
}

/// Everything a header says about one entry.
#[derive(Debug, Clone)]
pub(crate) struct TarEntry {
    /// The name as stored (directories end with `/`).
    pub path: Vec<u8>,
    pub kind: TarKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Data bytes that follow (regular files only).
    pub size: u64,
    pub link: Option<Vec<u8>>,
    pub device: (u32, u32),
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl TarEntry {
    /// An entry with everything zero but its name and kind.
    pub fn new(path: impl Into<Vec<u8>>, kind: TarKind) -> Self {
        TarEntry {
            path: path.into(),
            kind,
            mode: if kind == TarKind::Dir { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            link: None,
            device: (0, 0),
            xattrs: Vec::new(),
        }
    }
}

fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // "<len> <key>=<value>\n", where <len> counts the whole record including itself.
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Writes `path` into the ustar name/prefix fields if it fits; false when it does not.
fn set_ustar_name(h: &mut Header, path: &[u8]) -> bool {
    let ustar = h.as_ustar_mut().expect("ustar header");
    if path.len() <= ustar.name.len() {
        ustar.name[..path.len()].copy_from_slice(path);
        return true;
    }
    // Split at a '/' so that the prefix fits in 155 bytes and the rest in 100.
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    for (i, &b) in trimmed.iter().enumerate().rev() {
        if b != b'/' {
            continue;
        }
        let (prefix, name) = (&path[..i], &path[i + 1..]);
        if prefix.len() <= ustar.prefix.len() && name.len() <= ustar.name.len() && !name.is_empty()
        {
            ustar.prefix[..prefix.len()].copy_from_slice(prefix);
            ustar.name[..name.len()].copy_from_slice(name);
            return true;
        }
    }
    false
}

/// The header block(s) of an entry: a PAX extended header when needed, then the ustar one.
pub(crate) fn header_bytes(e: &TarEntry) -> io::Result<Vec<u8>> {
    let mut h = Header::new_ustar();
    let mut pax = Vec::new();
    h.set_entry_type(match e.kind {
        TarKind::File => EntryType::Regular,
        TarKind::Dir => EntryType::Directory,
        TarKind::Symlink => EntryType::Symlink,
        TarKind::HardLink => EntryType::Link,
        TarKind::Char => EntryType::Char,
        TarKind::Block => EntryType::Block,
        TarKind::Fifo => EntryType::Fifo,
    });
    if !set_ustar_name(&mut h, &e.path) {
        pax_record(&mut pax, b"path", &e.path);
        let short = &e.path[..100.min(e.path.len())];
        set_ustar_name(&mut h, short);
    }
    if let Some(link) = &e.link {
        let ustar = h.as_ustar_mut().expect("ustar header");
        if link.len() <= ustar.linkname.len() {
            ustar.linkname[..link.len()].copy_from_slice(link);
        } else {
            pax_record(&mut pax, b"linkpath", link);
            ustar.linkname.copy_from_slice(&link[..100]);
        }
    }
    h.set_mode(e.mode & 0o7777);
    for (key, value, set) in [
        (&b"uid"[..], e.uid, Header::set_uid as fn(&mut Header, u64)),
        (&b"gid"[..], e.gid, Header::set_gid),
    ] {
        if value > MAX_OCTAL_7 {
            pax_record(&mut pax, key, value.to_string().as_bytes());
            set(&mut h, 0);
        } else {
            set(&mut h, value);
        }
    }
    if e.mtime < 0 || e.mtime as u64 > MAX_OCTAL_11 {
        pax_record(&mut pax, b"mtime", e.mtime.to_string().as_bytes());
        h.set_mtime(0);
    } else {
        h.set_mtime(e.mtime as u64);
    }
    if e.size > MAX_OCTAL_11 {
        pax_record(&mut pax, b"size", e.size.to_string().as_bytes());
        h.set_size(0);
    } else {
        h.set_size(e.size);
    }
    if matches!(e.kind, TarKind::Char | TarKind::Block) {
        h.set_device_major(e.device.0)?;
        h.set_device_minor(e.device.1)?;
    }
    for (name, value) in &e.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        pax_record(&mut pax, &key, value);
    }
    h.set_cksum();

    let mut out = Vec::with_capacity(3 * BLOCK + pax.len());
    if !pax.is_empty() {
        let mut ph = Header::new_ustar();
        ph.set_entry_type(EntryType::XHeader);
        let base = e
            .path
            .rsplit(|&b| b == b'/')
            .find(|s| !s.is_empty())
            .unwrap_or(b"entry");
        let mut name = b"PaxHeaders.0/".to_vec();
        name.extend_from_slice(&base[..base.len().min(80)]);
        set_ustar_name(&mut ph, &name);
        ph.set_mode(0o644);
        ph.set_size(pax.len() as u64);
        ph.set_mtime(0);
        ph.set_cksum();
        out.extend_from_slice(ph.as_bytes());
        out.extend_from_slice(&pax);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    out.extend_from_slice(h.as_bytes());
    Ok(out)
}

/// Zero bytes that complete `size` bytes of data to a whole block.
pub(crate) fn padding(size: u64) -> &'static [u8] {
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let rem = (size % BLOCK as u64) as usize;
    if rem == 0 { &[] } else { &ZEROS[..BLOCK - rem] }
}

/// Writes an entry's header(s).
pub(crate) async fn write_header<W: AsyncWrite + Unpin>(w: &mut W, e: &TarEntry) -> io::Result<()> {
    w.write_all(&header_bytes(e)?).await
}

/// Writes the end-of-archive marker (two zero blocks).
pub(crate) async fn write_trailer<W: AsyncWrite + Unpin>(w: &mut W) -> io::Result<()> {
    w.write_all(&[0u8; 2 * BLOCK]).await
}

/// An in-memory tar, for tests and small archives.
#[derive(Default)]
pub(crate) struct TarBuf(pub Vec<u8>);

impl TarBuf {
    pub fn add(&mut self, mut e: TarEntry, data: &[u8]) -> &mut Self {
        if e.kind == TarKind::File && e.size == 0 {
            e.size = data.len() as u64;
        }
        self.0.extend_from_slice(&header_bytes(&e).expect("header"));
        self.0.extend_from_slice(data);
        self.0.extend_from_slice(padding(data.len() as u64));
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.add(TarEntry::new(path, TarKind::File), data)
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.add(TarEntry::new(path, TarKind::Dir), b"")
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut e = TarEntry::new(path, TarKind::Symlink);
        e.link = Some(target.into());
        self.add(e, b"")
    }

    #[cfg(test)]
    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut e = TarEntry::new(path, TarKind::HardLink);
        e.link = Some(target.into());
        self.add(e, b"")
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.0);
        out.extend_from_slice(&[0u8; 2 * BLOCK]);
        out
    }
}
