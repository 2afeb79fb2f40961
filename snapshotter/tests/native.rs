//! The conformance suite and native-specific checks against the native snapshotter.
//! Needs root: the cases mount.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_snapshotter::testsuite::Factory;
use berth_snapshotter::{Labels, Mount, NativeSnapshotter, Result, Snapshotter};

struct Native;

#[async_trait::async_trait]
impl Factory for Native {
    async fn open(&self, root: &Path) -> Result<Arc<dyn Snapshotter>> {
        Ok(Arc::new(NativeSnapshotter::open(root)?))
    }

    fn snapshots_dir(&self, root: &Path) -> Option<PathBuf> {
        Some(root.join("snapshots"))
    }
}

berth_snapshotter::snapshotter_suite!(Native);

/// Bind mounts only; children are full copies that keep special files and hard links.
#[tokio::test]
async fn copies_are_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let sn = NativeSnapshotter::open(root).unwrap();
    let m = sn.prepare("k1", None, Labels::new()).await.unwrap();
    let fs1 = root.join("snapshots/1/fs");
    assert_eq!(m, vec![Mount::bind(fs1.display().to_string(), false)]);
    std::fs::write(fs1.join("a"), "x").unwrap();
    std::fs::hard_link(fs1.join("a"), fs1.join("b")).unwrap();
    nix::sys::stat::mknod(
        &fs1.join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    std::os::unix::fs::symlink("/nowhere", fs1.join("dangling")).unwrap();
    xattr::set(fs1.join("a"), "user.k", b"v").unwrap();
    sn.commit("c1", "k1", Labels::new()).await.unwrap();
    let v = sn.view("v", Some("c1"), Labels::new()).await.unwrap();
    let fs2 = root.join("snapshots/2/fs");
    assert_eq!(v, vec![Mount::bind(fs2.display().to_string(), true)]);
    berth_snapshotter::testsuite::tree::assert_same_tree(&fs1, &fs2);
    let (a, b) = (
        std::fs::metadata(fs2.join("a")).unwrap(),
        std::fs::metadata(fs2.join("b")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino());
    assert_ne!(a.ino(), std::fs::metadata(fs1.join("a")).unwrap().ino());
}
