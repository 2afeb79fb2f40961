//! The conformance suite and overlay-specific checks (mount lists, unpack) against the
//! overlayfs snapshotter. Needs root: the cases mount.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_snapshotter::testsuite::Factory;
use berth_snapshotter::{Labels, Mount, OverlaySnapshotter, Result, Snapshotter};

struct Overlay;

#[async_trait::async_trait]
impl Factory for Overlay {
    async fn open(&self, root: &Path) -> Result<Arc<dyn Snapshotter>> {
        Ok(Arc::new(OverlaySnapshotter::open(root)?))
    }

    fn snapshots_dir(&self, root: &Path) -> Option<PathBuf> {
        Some(root.join("snapshots"))
    }
}

berth_snapshotter::snapshotter_suite!(Overlay);

fn fs_of(root: &Path, id: u32) -> String {
    root.join(format!("snapshots/{id}/fs"))
        .display()
        .to_string()
}

/// Mount lists exactly as containerd's overlayfs snapshotter returns them.
#[tokio::test]
async fn mount_lists_match_containerd() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let sn = OverlaySnapshotter::open(root).unwrap();
    assert!(root.join("metadata.redb").is_file());
    let index: Vec<String> = if Path::new("/sys/module/overlay/parameters/index").exists() {
        vec!["index=off".into()]
    } else {
        vec![]
    };

    let m = sn.prepare("k1", None, Labels::new()).await.unwrap();
    assert_eq!(
        m,
        vec![Mount {
            kind: "bind".into(),
            source: fs_of(root, 1),
            options: vec!["rw".into(), "rbind".into()],
        }]
    );
    assert!(root.join("snapshots/1/work").is_dir());
    sn.commit("c1", "k1", Labels::new()).await.unwrap();

    let v = sn.view("v0", None, Labels::new()).await.unwrap();
    assert_eq!(v, vec![Mount::bind(fs_of(root, 2), true)]);
    assert!(
        !root.join("snapshots/2/work").exists(),
        "views have no work dir"
    );

    let v = sn.view("v1", Some("c1"), Labels::new()).await.unwrap();
    assert_eq!(
        v,
        vec![Mount::bind(fs_of(root, 1), true)],
        "single-parent view binds the parent"
    );

    let a = sn.prepare("k2", Some("c1"), Labels::new()).await.unwrap();
    let mut options = index.clone();
    options.push(format!(
        "workdir={}",
        root.join("snapshots/4/work").display()
    ));
    options.push(format!("upperdir={}", fs_of(root, 4)));
    options.push(format!("lowerdir={}", fs_of(root, 1)));
    assert_eq!(
        a,
        vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
        }]
    );
    sn.commit("c2", "k2", Labels::new()).await.unwrap();

    let v = sn.view("v2", Some("c2"), Labels::new()).await.unwrap();
    let mut options = index.clone();
    options.push(format!("lowerdir={}:{}", fs_of(root, 4), fs_of(root, 1)));
    assert_eq!(
        v,
        vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
        }],
        "multi-parent view: lowerdir newest first, no upper"
    );
}

/// The suite through a trait object wrapping another snapshotter (as the gRPC client will
/// be): a namespaced view over the overlay backend.
struct NamespacedOverlay;

#[async_trait::async_trait]
impl Factory for NamespacedOverlay {
    async fn open(&self, root: &Path) -> Result<Arc<dyn Snapshotter>> {
        let inner = OverlaySnapshotter::open(root)?;
        Ok(Arc::new(berth_snapshotter::Namespaced::new(
            inner, "suite",
        )?))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_through_namespaced_adapter() {
    berth_snapshotter::testsuite::run(&NamespacedOverlay).await;
}
