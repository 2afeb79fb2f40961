//! Unique names per test: namespaces, cgroup parents, bridges, container names, so that
//! tests running in parallel (and other people's tests on the same machine) never meet.
//!
//! [`TestNames`] also removes, when dropped, what was created under its cgroup parent and
//! its bridge name, if anything was (best effort; it never kills a process).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The longest network interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

/// A name unique in this machine for as long as this process lives: `{prefix}{pid}-{n}`.
/// With a prefix of letters it is a valid containerd identifier.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{n}", std::process::id())
}

/// A short hex token unique to this process and call, for names with a length limit.
fn token(len: usize) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let hash = Sha256::digest(format!("{}-{n}-{nanos}", std::process::id()));
    hex::encode(hash)[..len].to_string()
}

/// The names one test uses. Build it first in the test so it is dropped last.
#[derive(Debug)]
pub struct TestNames {
    /// Prefix of every name of this test: `t{pid}-{n}`.
    pub prefix: String,
    /// A containerd namespace for the test: `{prefix}-ns`.
    pub namespace: String,
    /// A cgroup parent (a single path component): `berth-test-{pid}-{n}`.
    pub cgroup_parent: String,
    /// A bridge name: `bt` and 13 hex digits (15 characters, Linux's limit).
    pub bridge: String,
}

impl TestNames {
    /// Fresh names for one test.
    pub fn new() -> TestNames {
        let prefix = unique("t");
        TestNames {
            namespace: format!("{prefix}-ns"),
            cgroup_parent: format!("berth-test-{}", &prefix[1..]),
            bridge: format!("bt{}", token(MAX_IFNAME - 2)),
            prefix,
        }
    }

    /// `{prefix}-{what}`: a name for a container, image, lease or network of this test.
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    /// A further unique name under this test's prefix: `{prefix}-{what}{n}`.
    pub fn fresh(&self, what: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{}-{what}{n}", self.prefix)
    }

    /// A further unique interface name: `{letter}{13 hex digits}`, e.g. for a veth.
    pub fn ifname(&self, letter: char) -> String {
        format!("{letter}{}", token(MAX_IFNAME - 1))
    }
}

impl Default for TestNames {
    fn default() -> Self {
        TestNames::new()
    }
}

impl Drop for TestNames {
    fn drop(&mut self) {
        remove_cgroup_tree(Path::new("/sys/fs/cgroup"), &self.cgroup_parent);
        delete_link(&self.bridge);
    }
}

/// Removes the directories named `parent` under every cgroup hierarchy mounted below
/// `cgroup_root` (v1: one per controller; v2 or hybrid's `unified`), deepest first.
/// Directories that still hold processes stay (rmdir fails with EBUSY).
pub fn remove_cgroup_tree(cgroup_root: &Path, parent: &str) {
    if parent.is_empty() || parent.contains("..") {
        return;
    }
    let mut tops = vec![cgroup_root.join(parent)];
    if let Ok(entries) = std::fs::read_dir(cgroup_root) {
        tops.extend(entries.flatten().map(|e| e.path().join(parent)));
    }
    for top in tops {
        if top.is_dir() {
            rmdir_tree(&top);
        }
    }
}

fn rmdir_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&entry.path());
            }
        }
    }
    // cgroup directories are removed with rmdir alone, whatever their control files.
    let _ = std::fs::remove_dir(dir);
}

/// Deletes the network link `name` if it exists (it is this test's own, by its name).
fn delete_link(name: &str) {
    if !Path::new("/sys/class/net").join(name).exists() {
        return;
    }
    let _ = crate::procs::run(
        Command::new("ip").args(["link", "delete", "dev", name]),
        None,
        Duration::from_secs(10),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_valid() {
        let a = TestNames::new();
        let b = TestNames::new();
        assert_ne!(a.prefix, b.prefix);
        assert_ne!(a.namespace, b.namespace);
        assert_ne!(a.bridge, b.bridge);
        assert_ne!(a.cgroup_parent, b.cgroup_parent);
        assert_eq!(a.bridge.len(), MAX_IFNAME);
        assert!(a.bridge.starts_with("bt"));
        assert_eq!(a.ifname('v').len(), MAX_IFNAME);
        assert_ne!(a.fresh("c"), a.fresh("c"));
        // containerd identifiers: alphanumeric runs joined by single '.', '_' or '-'.
        for name in [&a.namespace, &a.name("web"), &a.fresh("c")] {
            assert!(name.len() <= 76);
            assert!(name.split('-').all(|part| !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric())), "{name}");
        }
    }

    #[test]
    fn removes_a_cgroup_tree_in_a_plain_directory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("cpu/berth-test-x/a/b")).unwrap();
        std::fs::create_dir_all(root.path().join("berth-test-x/c")).unwrap();
        std::fs::create_dir_all(root.path().join("cpu/other")).unwrap();
        remove_cgroup_tree(root.path(), "berth-test-x");
        assert!(!root.path().join("cpu/berth-test-x").exists());
        assert!(!root.path().join("berth-test-x").exists());
        assert!(root.path().join("cpu/other").exists());
    }
}
