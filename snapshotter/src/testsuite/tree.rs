//! Describing a directory tree (types, modes, owners, sizes, contents, link targets, device
//! numbers, xattrs, hard-link groups) so that two trees can be compared in tests.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What a test can observe about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `dir`, `file`, `symlink`, `char`, `block`, `fifo` or `socket`.
    pub kind: &'static str,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// File content, or the symlink target.
    pub data: Vec<u8>,
    /// Device number of device nodes.
    pub rdev: u64,
    /// Modification time in seconds (not compared for directories).
    pub mtime: i64,
    /// xattrs, overlay-private ones excluded.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// The first path (in sorted order) sharing this file's inode, for hard links.
    pub link_group: Option<PathBuf>,
}

/// Every entry below `root` (not `root` itself), keyed by relative path.
pub fn describe(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut first_of_inode: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(root, Path::new(""), &mut out, &mut first_of_inode);
    out
}

fn walk(
    root: &Path,
    rel: &Path,
    out: &mut BTreeMap<PathBuf, Node>,
    inodes: &mut HashMap<(u64, u64), PathBuf>,
) {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let child = rel.join(&name);
        let path = root.join(&child);
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "socket"
        };
        let data = match kind {
            "file" => fs::read(&path).unwrap(),
            "symlink" => fs::read_link(&path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes(),
            _ => Vec::new(),
        };
        let mut xattrs: Vec<(String, Vec<u8>)> = xattr::list(&path)
            .map(|names| {
                names
                    .filter_map(|n| {
                        let s = n.to_string_lossy().into_owned();
                        if s.starts_with("trusted.overlay.") {
                            return None;
                        }
                        xattr::get(&path, &n).ok().flatten().map(|v| (s, v))
                    })
                    .collect()
            })
            .unwrap_or_default();
        xattrs.sort();
        let link_group = (kind == "file" && meta.nlink() > 1).then(|| {
            inodes
                .entry((meta.dev(), meta.ino()))
                .or_insert_with(|| child.clone())
                .clone()
        });
        out.insert(
            child.clone(),
            Node {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                data,
                rdev: meta.rdev(),
                mtime: if kind == "dir" { 0 } else { meta.mtime() },
                xattrs,
                link_group,
            },
        );
        if kind == "dir" {
            walk(root, &child, out, inodes);
        }
    }
}

/// Panics with the first difference between the trees at `a` and `b`.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (describe(a), describe(b));
    for (path, node) in &ta {
        match tb.get(path) {
            None => panic!(
                "{} exists in {} but not in {}",
                path.display(),
                a.display(),
                b.display()
            ),
            Some(other) if other != node => panic!(
                "{} differs:\n  {}: {node:?}\n  {}: {other:?}",
                path.display(),
                a.display(),
                b.display()
            ),
            _ => {}
        }
    }
    for path in tb.keys() {
        assert!(
            ta.contains_key(path),
            "{} exists in {} but not in {}",
            path.display(),
            b.display(),
            a.display()
        );
    }
}
