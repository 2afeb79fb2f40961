//! The conformance cases. Each opens its own snapshotter on its own temporary directory,
//! mounts under it, and unmounts (guards) even when it fails.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::Factory;
use crate::error::{ErrorKind, Result};
use crate::mount::MountGuard;
use crate::namespaced::Namespaced;
use crate::snapshotter::Snapshotter;
use crate::types::{Info, Kind, Labels, Mount};

/// Keys shaped like containerd's (spaces, colons, slashes): never usable as paths.
const KEY_A: &str = "extract-1700000000-abc sha256:aaaa/../x";
const KEY_B: &str = "extract-1700000001-def sha256:bbbb";

struct Ctx {
    sn: Arc<dyn Snapshotter>,
    root: PathBuf,
    work: PathBuf,
    counter: std::sync::atomic::AtomicU32,
    _tmp: tempfile::TempDir,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expect_kind<T: std::fmt::Debug>(r: Result<T>, kind: ErrorKind, what: &str) {
    match r {
        Err(e) if e.kind() == kind => {}
        Err(e) => panic!("{what}: expected {kind:?}, got {:?}: {e}", e.kind()),
        Ok(v) => panic!("{what}: expected {kind:?}, got Ok({v:?})"),
    }
}

impl Ctx {
    async fn new(f: &dyn Factory) -> Ctx {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("root");
        let work = tmp.path().join("work");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&work).unwrap();
        let sn = f.open(&root).await.expect("open snapshotter");
        Ctx {
            sn,
            root,
            work,
            counter: std::sync::atomic::AtomicU32::new(0),
            _tmp: tmp,
        }
    }

    /// Mounts `mounts` on a new directory under the work dir.
    fn mount(&self, mounts: &[Mount]) -> MountGuard {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let dir = self.work.join(format!("m{n}"));
        fs::create_dir(&dir).unwrap();
        MountGuard::mount(mounts, &dir).unwrap_or_else(|e| panic!("mount {mounts:?}: {e}"))
    }

    /// Prepares `key` on `parent`, lets `change` edit the mounted tree, commits as `name`.
    async fn layer(&self, name: &str, parent: Option<&str>, change: impl FnOnce(&Path)) {
        let key = format!("{name}-active");
        let mounts = self.sn.prepare(&key, parent, Labels::new()).await.unwrap();
        let m = self.mount(&mounts);
        change(m.path());
        m.unmount().unwrap();
        self.sn.commit(name, &key, Labels::new()).await.unwrap();
    }

    /// Runs `check` on a mounted view of `parent`, then removes the view.
    async fn with_view(&self, parent: &str, check: impl FnOnce(&Path)) {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let key = format!("view-{n}");
        let mounts = self
            .sn
            .view(&key, Some(parent), Labels::new())
            .await
            .unwrap();
        let m = self.mount(&mounts);
        check(m.path());
        m.unmount().unwrap();
        self.sn.remove(&key).await.unwrap();
    }
}

fn write(dir: &Path, rel: &str, data: &str) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, data).unwrap();
}

fn read(dir: &Path, rel: &str) -> Option<String> {
    fs::read_to_string(dir.join(rel)).ok()
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Prepare, write through the mount, commit, build on it, view the result, remove in order.
pub async fn basic(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    let mounts =
        c.sn.prepare(KEY_A, None, labels(&[("l", "1")]))
            .await
            .unwrap();
    assert!(!mounts.is_empty());
    let m = c.mount(&mounts);
    write(m.path(), "foo", "foo\n");
    fs::create_dir_all(m.path().join("a/b/c")).unwrap();
    m.unmount().unwrap();

    let active = c.sn.stat(KEY_A).await.unwrap();
    assert_eq!(active.kind, Kind::Active);
    assert_eq!(active.parent, None);
    assert_eq!(active.labels, labels(&[("l", "1")]));

    c.sn.commit("committed", KEY_A, Labels::new())
        .await
        .unwrap();
    let si = c.sn.stat("committed").await.unwrap();
    assert_eq!(
        (si.kind, si.parent.clone(), si.name.as_str()),
        (Kind::Committed, None, "committed")
    );
    assert!(
        si.labels.is_empty(),
        "commit labels replace the active ones"
    );
    expect_kind(
        c.sn.stat(KEY_A).await,
        ErrorKind::NotFound,
        "key gone after commit",
    );

    let mounts =
        c.sn.prepare(KEY_B, Some("committed"), Labels::new())
            .await
            .unwrap();
    let m = c.mount(&mounts);
    assert_eq!(read(m.path(), "foo").as_deref(), Some("foo\n"));
    assert!(m.path().join("a/b/c").is_dir());
    write(m.path(), "bar", "bar\n");
    write(m.path(), "foo", "bar\n");
    fs::remove_dir_all(m.path().join("a/b")).unwrap();
    m.unmount().unwrap();
    let next = c.sn.stat(KEY_B).await.unwrap();
    assert_eq!(
        (next.kind, next.parent.as_deref()),
        (Kind::Active, Some("committed"))
    );
    c.sn.commit("committed-next", KEY_B, Labels::new())
        .await
        .unwrap();
    let si2 = c.sn.stat("committed-next").await.unwrap();
    assert_eq!(
        (si2.kind, si2.parent.as_deref()),
        (Kind::Committed, Some("committed"))
    );

    let all = c.sn.list().await.unwrap();
    for want in [&si, &si2] {
        assert!(all.contains(want), "list has {want:?}: {all:?}");
    }

    c.with_view("committed-next", |v| {
        assert_eq!(read(v, "foo").as_deref(), Some("bar\n"));
        assert_eq!(read(v, "bar").as_deref(), Some("bar\n"));
        assert!(v.join("a").is_dir());
        assert!(!v.join("a/b").exists());
    })
    .await;
    expect_kind(
        c.sn.remove("committed").await,
        ErrorKind::FailedPrecondition,
        "remove parent",
    );
    c.sn.remove("committed-next").await.unwrap();
    c.sn.remove("committed").await.unwrap();
    assert!(c.sn.list().await.unwrap().is_empty());
}

/// A <- B <- C: parents resolve transitively and every layer contributes.
pub async fn chains(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("A", None, |d| write(d, "a", "1")).await;
    c.layer("B", Some("A"), |d| write(d, "b", "2")).await;
    c.layer("C", Some("B"), |d| write(d, "c", "3")).await;
    let (a, b, cc) = (
        c.sn.stat("A").await.unwrap(),
        c.sn.stat("B").await.unwrap(),
        c.sn.stat("C").await.unwrap(),
    );
    assert_eq!(a.parent, None);
    assert_eq!(b.parent.as_deref(), Some("A"));
    assert_eq!(cc.parent.as_deref(), Some("B"));
    let grand = c.sn.stat(b.parent.as_deref().unwrap()).await.unwrap();
    assert_eq!(grand.parent, None);
    for parent in ["A", "B", "C"] {
        c.with_view(parent, |v| {
            let want: BTreeSet<String> = ["a", "b", "c"]
                .iter()
                .take(match parent {
                    "A" => 1,
                    "B" => 2,
                    _ => 3,
                })
                .map(|s| s.to_string())
                .collect();
            assert_eq!(names(v), want, "view of {parent}");
        })
        .await;
    }
    // Active snapshots on every level, and their mounts again.
    for parent in [None, Some("A"), Some("C")] {
        let key = format!("active on {parent:?}");
        let first = c.sn.prepare(&key, parent, Labels::new()).await.unwrap();
        assert_eq!(c.sn.mounts(&key).await.unwrap(), first);
        let m = c.mount(&first);
        write(m.path(), "new", "x");
        drop(m);
        c.sn.remove(&key).await.unwrap();
    }
}

/// Error kinds of every call, as the daemon maps them to gRPC codes.
pub async fn errors(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("base", None, |_| {}).await;
    c.sn.prepare("active", Some("base"), Labels::new())
        .await
        .unwrap();
    c.sn.view("view", Some("base"), Labels::new())
        .await
        .unwrap();

    for key in ["active", "view", "base"] {
        expect_kind(
            c.sn.prepare(key, Some("base"), Labels::new()).await,
            ErrorKind::AlreadyExists,
            "prepare existing",
        );
        expect_kind(
            c.sn.view(key, None, Labels::new()).await,
            ErrorKind::AlreadyExists,
            "view existing",
        );
    }
    expect_kind(
        c.sn.prepare("x", Some("missing"), Labels::new()).await,
        ErrorKind::NotFound,
        "missing parent",
    );
    expect_kind(
        c.sn.view("x", Some("missing"), Labels::new()).await,
        ErrorKind::NotFound,
        "view missing parent",
    );
    expect_kind(
        c.sn.prepare("x", Some("active"), Labels::new()).await,
        ErrorKind::InvalidArgument,
        "active parent",
    );
    expect_kind(
        c.sn.prepare("x", Some("view"), Labels::new()).await,
        ErrorKind::InvalidArgument,
        "view parent",
    );
    expect_kind(
        c.sn.prepare("", None, Labels::new()).await,
        ErrorKind::InvalidArgument,
        "empty key",
    );
    expect_kind(
        c.sn.commit("c", "view", Labels::new()).await,
        ErrorKind::FailedPrecondition,
        "commit view",
    );
    expect_kind(
        c.sn.commit("c", "base", Labels::new()).await,
        ErrorKind::FailedPrecondition,
        "commit committed",
    );
    expect_kind(
        c.sn.commit("base", "active", Labels::new()).await,
        ErrorKind::AlreadyExists,
        "commit onto name",
    );
    expect_kind(
        c.sn.commit("c", "missing", Labels::new()).await,
        ErrorKind::NotFound,
        "commit missing",
    );
    expect_kind(
        c.sn.commit("", "active", Labels::new()).await,
        ErrorKind::InvalidArgument,
        "commit empty name",
    );
    expect_kind(
        c.sn.mounts("base").await,
        ErrorKind::FailedPrecondition,
        "mounts of committed",
    );
    expect_kind(
        c.sn.mounts("missing").await,
        ErrorKind::NotFound,
        "mounts missing",
    );
    expect_kind(
        c.sn.stat("missing").await,
        ErrorKind::NotFound,
        "stat missing",
    );
    expect_kind(
        c.sn.usage("missing").await,
        ErrorKind::NotFound,
        "usage missing",
    );
    expect_kind(
        c.sn.remove("missing").await,
        ErrorKind::NotFound,
        "remove missing",
    );
    let mut info = c.sn.stat("base").await.unwrap();
    info.name = "missing".into();
    expect_kind(
        c.sn.update(info, &[]).await,
        ErrorKind::NotFound,
        "update missing",
    );
    let long = "v".repeat(5000);
    expect_kind(
        c.sn.prepare("x", None, labels(&[("k", &long)])).await,
        ErrorKind::InvalidArgument,
        "label too long",
    );
    // A failed call leaves nothing behind.
    expect_kind(
        c.sn.stat("x").await,
        ErrorKind::NotFound,
        "nothing created by failed calls",
    );
    assert_eq!(c.sn.list().await.unwrap().len(), 3);
}

/// Label updates: replace, set one, delete one, unknown fields, timestamps.
pub async fn update(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    let t0 = SystemTime::now() - std::time::Duration::from_secs(1);
    c.sn.prepare("c1-a", None, labels(&[("a", "1")]))
        .await
        .unwrap();
    c.sn.commit("c1", "c1-a", labels(&[("x", "y")]))
        .await
        .unwrap();
    c.sn.prepare("a1", Some("c1"), labels(&[("a", "1")]))
        .await
        .unwrap();
    c.sn.view("v1", Some("c1"), Labels::new()).await.unwrap();
    for key in ["c1", "a1", "v1"] {
        let before = c.sn.stat(key).await.unwrap();
        assert!(before.created_at >= t0 && before.updated_at >= before.created_at);
        let mut info = before.clone();
        info.labels = labels(&[("l1", "v1"), ("l2", "v2")]);
        let after = c.sn.update(info.clone(), &[]).await.unwrap();
        assert_eq!(
            after.labels, info.labels,
            "no paths replace all labels ({key})"
        );
        assert_eq!(after.created_at, before.created_at);
        assert!(after.updated_at >= before.updated_at);
        assert_eq!(after.kind, before.kind);
        assert_eq!(after.parent, before.parent);

        info.labels = labels(&[("l1", "changed"), ("l3", "new"), ("l2", "ignored")]);
        let after =
            c.sn.update(info.clone(), &["labels.l1".into(), "labels.l3".into()])
                .await
                .unwrap();
        assert_eq!(
            after.labels,
            labels(&[("l1", "changed"), ("l2", "v2"), ("l3", "new")])
        );

        info.labels = labels(&[("l1", "")]);
        let after =
            c.sn.update(info.clone(), &["labels.l1".into(), "labels.l2".into()])
                .await
                .unwrap();
        assert_eq!(
            after.labels,
            labels(&[("l3", "new")]),
            "empty or absent value deletes"
        );

        info.labels = labels(&[("only", "1")]);
        let after = c.sn.update(info.clone(), &["labels".into()]).await.unwrap();
        assert_eq!(after.labels, labels(&[("only", "1")]));
        assert_eq!(c.sn.stat(key).await.unwrap(), after, "stat sees the update");

        expect_kind(
            c.sn.update(info.clone(), &["parent".into()]).await,
            ErrorKind::InvalidArgument,
            "update parent",
        );
        expect_kind(
            c.sn.update(info, &["kind".into()]).await,
            ErrorKind::InvalidArgument,
            "update kind",
        );
    }
}

/// A snapshot with children (active, view or committed) cannot be removed.
pub async fn remove_rules(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("base", None, |d| write(d, "f", "1")).await;
    c.layer("mid", Some("base"), |_| {}).await;
    c.sn.prepare("top", Some("mid"), Labels::new())
        .await
        .unwrap();
    c.sn.view("look", Some("base"), Labels::new())
        .await
        .unwrap();
    expect_kind(
        c.sn.remove("mid").await,
        ErrorKind::FailedPrecondition,
        "remove with active child",
    );
    expect_kind(
        c.sn.remove("base").await,
        ErrorKind::FailedPrecondition,
        "remove with children",
    );
    c.sn.remove("top").await.unwrap();
    c.sn.remove("mid").await.unwrap();
    expect_kind(
        c.sn.remove("base").await,
        ErrorKind::FailedPrecondition,
        "remove with view child",
    );
    c.sn.remove("look").await.unwrap();
    c.sn.remove("base").await.unwrap();
    expect_kind(
        c.sn.remove("base").await,
        ErrorKind::NotFound,
        "remove twice",
    );
    // Keys are reusable after removal.
    c.sn.prepare("top", None, Labels::new()).await.unwrap();
    c.sn.remove("top").await.unwrap();
}

/// `list` returns every snapshot with its kind, parent and labels.
pub async fn list(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.sn.prepare("c1-a", None, Labels::new()).await.unwrap();
    c.sn.commit("c1", "c1-a", labels(&[("x", "1")]))
        .await
        .unwrap();
    c.sn.prepare("c2-a", Some("c1"), Labels::new())
        .await
        .unwrap();
    c.sn.commit("c2", "c2-a", Labels::new()).await.unwrap();
    c.sn.prepare("a1", Some("c2"), Labels::new()).await.unwrap();
    c.sn.prepare("a2", None, Labels::new()).await.unwrap();
    c.sn.view("v1", Some("c2"), Labels::new()).await.unwrap();
    c.sn.view("v2", None, Labels::new()).await.unwrap();
    let mut all: Vec<Info> = c.sn.list().await.unwrap();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let got: Vec<(&str, Kind, Option<&str>)> = all
        .iter()
        .map(|i| (i.name.as_str(), i.kind, i.parent.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a1", Kind::Active, Some("c2")),
            ("a2", Kind::Active, None),
            ("c1", Kind::Committed, None),
            ("c2", Kind::Committed, Some("c1")),
            ("v1", Kind::View, Some("c2")),
            ("v2", Kind::View, None),
        ]
    );
    for info in &all {
        assert_eq!(
            &c.sn.stat(&info.name).await.unwrap(),
            info,
            "list agrees with stat"
        );
    }
    c.sn.remove("a2").await.unwrap();
    assert!(c.sn.list().await.unwrap().iter().all(|i| i.name != "a2"));
}

/// Usage measures the snapshot's own layer.
pub async fn usage(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("base", None, |d| write(d, "small", "x")).await;
    let mounts =
        c.sn.prepare("active", Some("base"), Labels::new())
            .await
            .unwrap();
    let empty = c.sn.usage("active").await.unwrap();
    let m = c.mount(&mounts);
    fs::write(m.path().join("big"), vec![1u8; 1 << 20]).unwrap();
    fs::create_dir(m.path().join("dir")).unwrap();
    drop(m);
    let used = c.sn.usage("active").await.unwrap();
    assert!(used.size >= empty.size + (1 << 20), "{used:?} vs {empty:?}");
    assert!(used.inodes >= empty.inodes + 2, "{used:?} vs {empty:?}");
    c.sn.commit("top", "active", Labels::new()).await.unwrap();
    assert_eq!(
        c.sn.usage("top").await.unwrap(),
        used,
        "committed usage is what was measured"
    );
    c.sn.usage("base").await.unwrap();
}

/// Changes written in one layer are visible to children; children's changes stay theirs.
pub async fn visibility(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("l1", None, |d| {
        write(d, "etc/hostname", "one");
        write(d, "etc/keep", "k");
    })
    .await;
    c.layer("l2", Some("l1"), |d| {
        assert_eq!(read(d, "etc/hostname").as_deref(), Some("one"));
        write(d, "etc/hostname", "two");
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(d.join("etc/keep"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"+").unwrap();
    })
    .await;
    c.with_view("l1", |v| {
        assert_eq!(read(v, "etc/hostname").as_deref(), Some("one"));
        assert_eq!(read(v, "etc/keep").as_deref(), Some("k"));
    })
    .await;
    c.with_view("l2", |v| {
        assert_eq!(read(v, "etc/hostname").as_deref(), Some("two"));
        assert_eq!(read(v, "etc/keep").as_deref(), Some("k+"));
    })
    .await;
    // Two actives on one parent do not see each other.
    let ma = c.sn.prepare("a", Some("l2"), Labels::new()).await.unwrap();
    let mb = c.sn.prepare("b", Some("l2"), Labels::new()).await.unwrap();
    let (ga, gb) = (c.mount(&ma), c.mount(&mb));
    write(ga.path(), "only-a", "a");
    assert!(!gb.path().join("only-a").exists());
}

/// Deleted files and directories (and directories deleted then recreated) stay deleted.
pub async fn deletions(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("l1", None, |d| {
        write(d, "foo", "foo");
        write(d, "foobar", "foobar");
        write(d, "dir/x", "x");
        write(d, "dir/sub/y", "y");
        write(d, "re/old", "old");
    })
    .await;
    c.layer("l2", Some("l1"), |d| {
        fs::remove_file(d.join("foobar")).unwrap();
        fs::remove_dir_all(d.join("dir")).unwrap();
        fs::remove_dir_all(d.join("re")).unwrap();
        write(d, "re/new", "new");
    })
    .await;
    c.layer("l3", Some("l2"), |_| {}).await;
    c.with_view("l3", |v| {
        assert_eq!(
            names(v),
            ["foo", "re"].iter().map(|s| s.to_string()).collect()
        );
        assert_eq!(
            names(&v.join("re")),
            ["new".to_string()].into_iter().collect()
        );
    })
    .await;
    c.with_view("l1", |v| assert!(v.join("dir/sub/y").exists()))
        .await;
}

/// Renaming files and directories from a lower layer.
pub async fn moves(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("l1", None, |d| {
        write(d, "a/file", "data");
        write(d, "dir/inner", "i");
    })
    .await;
    c.layer("l2", Some("l1"), |d| {
        fs::rename(d.join("a/file"), d.join("moved")).unwrap();
        // overlayfs without redirect_dir refuses to rename lower directories (EXDEV); do
        // what mv(1) does then.
        if let Err(e) = fs::rename(d.join("dir"), d.join("dir2")) {
            assert_eq!(e.raw_os_error(), Some(libc::EXDEV), "rename dir: {e}");
            write(d, "dir2/inner", &read(d, "dir/inner").unwrap());
            fs::remove_dir_all(d.join("dir")).unwrap();
        }
    })
    .await;
    c.with_view("l2", |v| {
        assert!(!v.join("a/file").exists());
        assert_eq!(read(v, "moved").as_deref(), Some("data"));
        assert!(!v.join("dir").exists());
        assert_eq!(read(v, "dir2/inner").as_deref(), Some("i"));
    })
    .await;
}

/// Owners, modes (setuid) and directory permissions survive commits.
pub async fn ownership(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("l1", None, |d| {
        write(d, "bin/su", "su");
        fs::create_dir(d.join("private")).unwrap();
        fs::set_permissions(d.join("private"), fs::Permissions::from_mode(0o700)).unwrap();
    })
    .await;
    c.layer("l2", Some("l1"), |d| {
        std::os::unix::fs::chown(d.join("bin/su"), Some(1000), Some(1001)).unwrap();
        fs::set_permissions(d.join("bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::chown(d.join("private"), Some(7), Some(7)).unwrap();
    })
    .await;
    c.with_view("l2", |v| {
        let su = fs::metadata(v.join("bin/su")).unwrap();
        assert_eq!(
            (su.uid(), su.gid(), su.mode() & 0o7777),
            (1000, 1001, 0o4755)
        );
        let p = fs::metadata(v.join("private")).unwrap();
        assert_eq!((p.uid(), p.mode() & 0o7777), (7, 0o700));
    })
    .await;
    c.with_view("l1", |v| {
        let su = fs::metadata(v.join("bin/su")).unwrap();
        assert_eq!((su.uid(), su.mode() & 0o7777), (0, 0o644));
    })
    .await;
}

/// Views are read-only, whatever the depth.
pub async fn view_readonly(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("l1", None, |d| write(d, "f", "1")).await;
    c.layer("l2", Some("l1"), |d| write(d, "g", "2")).await;
    for (key, parent) in [("v0", None), ("v1", Some("l1")), ("v2", Some("l2"))] {
        let mounts = c.sn.view(key, parent, Labels::new()).await.unwrap();
        assert_eq!(c.sn.mounts(key).await.unwrap(), mounts);
        let m = c.mount(&mounts);
        let err = fs::write(m.path().join("new"), "x").unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EROFS),
            "view {key} is read-only"
        );
    }
}

/// Cleanup after removals keeps live snapshots intact.
pub async fn cleanup(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("keep", None, |d| write(d, "f", "kept")).await;
    c.layer("gone", None, |d| write(d, "f", "gone")).await;
    c.sn.remove("gone").await.unwrap();
    c.sn.cleanup().await.unwrap();
    c.sn.cleanup().await.unwrap();
    c.with_view("keep", |v| {
        assert_eq!(read(v, "f").as_deref(), Some("kept"))
    })
    .await;
}

/// Directories left by interrupted calls are invisible after a restart and reclaimed by
/// cleanup; metadata persists across restarts.
pub async fn crash_recovery(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    let Some(dir) = f.snapshots_dir(&c.root) else {
        return;
    };
    c.layer("base", None, |d| write(d, "f", "base")).await;
    c.sn.prepare("active", Some("base"), labels(&[("a", "b")]))
        .await
        .unwrap();
    let before = {
        let mut l = c.sn.list().await.unwrap();
        l.sort_by(|a, b| a.name.cmp(&b.name));
        l
    };
    let live: BTreeSet<String> = names(&dir);
    // What an interrupted prepare, commit or remove can leave: directories without records.
    for orphan in ["new-interrupted", "9999", "42", "trash-7-1"] {
        write(&dir.join(orphan), "fs/file", "orphan");
    }
    let Ctx {
        sn,
        root,
        _tmp,
        work,
        counter,
    } = c;
    drop(sn);
    let sn = f.open(&root).await.expect("reopen");
    let c = Ctx {
        sn,
        root,
        _tmp,
        work,
        counter,
    };
    let mut after = c.sn.list().await.unwrap();
    after.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(after, before, "metadata persists, orphans are invisible");
    // New snapshots work even if their id collides with an orphan's directory.
    for i in 0..3 {
        c.layer(&format!("new{i}"), Some("base"), |d| write(d, "n", "n"))
            .await;
    }
    c.sn.cleanup().await.unwrap();
    let remaining = names(&dir);
    for orphan in ["new-interrupted", "9999", "42", "trash-7-1"] {
        assert!(
            !remaining.contains(orphan),
            "{orphan} reclaimed: {remaining:?}"
        );
    }
    assert!(live.is_subset(&remaining), "live directories kept");
    c.with_view("new2", |v| {
        assert_eq!(read(v, "f").as_deref(), Some("base"));
        assert_eq!(read(v, "n").as_deref(), Some("n"));
    })
    .await;
    let m = c.mount(&c.sn.mounts("active").await.unwrap());
    assert_eq!(read(m.path(), "f").as_deref(), Some("base"));
}

/// A deep chain (more layers than fit in one page of overlay mount options).
pub async fn many_layers(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    let mut parent: Option<String> = None;
    for i in 0..130 {
        let name = format!("layer-{i:03} sha256:{}", "ab".repeat(8));
        let file = format!("f{i}");
        c.layer(&name, parent.as_deref(), |d| write(d, &file, "x"))
            .await;
        parent = Some(name);
    }
    let top = parent.unwrap();
    c.with_view(&top, |v| {
        assert!(v.join("f0").exists());
        assert!(v.join("f129").exists());
        assert_eq!(names(v).len(), 130);
    })
    .await;
    let mounts = c.sn.prepare("rw", Some(&top), Labels::new()).await.unwrap();
    let m = c.mount(&mounts);
    write(m.path(), "top", "t");
    assert!(m.path().join("f64").exists());
}

/// Namespaced views over one backend are isolated.
pub async fn namespaces(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    let a = Namespaced::new(c.sn.clone(), "a").unwrap();
    let b = Namespaced::new(c.sn.clone(), "b").unwrap();
    assert!(Namespaced::new(c.sn.clone(), "x/y").is_err());
    for ns in [&a, &b] {
        ns.prepare("k", None, Labels::new()).await.unwrap();
        ns.commit("base", "k", Labels::new()).await.unwrap();
        ns.prepare("k", Some("base"), Labels::new()).await.unwrap();
    }
    let la: Vec<(String, Option<String>)> = {
        let mut l: Vec<_> = a
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|i| (i.name, i.parent))
            .collect();
        l.sort();
        l
    };
    assert_eq!(
        la,
        vec![("base".into(), None), ("k".into(), Some("base".into()))]
    );
    assert_eq!(a.stat("k").await.unwrap().parent.as_deref(), Some("base"));
    b.remove("k").await.unwrap();
    expect_kind(b.stat("k").await, ErrorKind::NotFound, "removed in b");
    a.stat("k").await.unwrap();
    let mut info = a.stat("base").await.unwrap();
    info.labels = labels(&[("n", "a")]);
    let updated = a.update(info, &[]).await.unwrap();
    assert_eq!(updated.name, "base");
    assert!(b.stat("base").await.unwrap().labels.is_empty());
    expect_kind(
        a.prepare("x", Some("nope"), Labels::new()).await,
        ErrorKind::NotFound,
        "parent in other ns",
    );
    assert_eq!(
        c.sn.list().await.unwrap().len(),
        3,
        "backend holds both namespaces"
    );
}

/// Parallel prepares and commits get distinct snapshots.
pub async fn concurrent(f: &dyn Factory) {
    let c = Ctx::new(f).await;
    c.layer("base", None, |d| write(d, "f", "1")).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let sn = c.sn.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("par {i}");
            let mounts = sn.prepare(&key, Some("base"), Labels::new()).await.unwrap();
            sn.commit(&format!("done {i}"), &key, Labels::new())
                .await
                .unwrap();
            mounts
        }));
    }
    let mut all = BTreeSet::new();
    for t in tasks {
        let mounts = t.await.unwrap();
        assert!(all.insert(format!("{mounts:?}")), "distinct mounts");
    }
    assert_eq!(c.sn.list().await.unwrap().len(), 9);
}

/// The unpack flow: layers (with whiteouts and an opaque directory) applied onto prepared
/// snapshots' mounts and committed; then the diff of an active snapshot against its parent,
/// applied elsewhere, reproduces it.
pub async fn unpack(f: &dyn Factory) {
    use crate::apply::{ApplyOptions, apply_to_mounts};
    use crate::diff::tar_writer::{TarBuf, TarEntry, TarKind};
    use crate::diff::{DiffOptions, diff_mounts};

    let c = Ctx::new(f).await;
    let mut t = TarBuf::default();
    t.dir("etc/").dir("etc/conf.d/").dir("bin/").dir("dev/");
    t.file("etc/passwd", b"root:x:0:0\n")
        .file("etc/conf.d/a", b"a")
        .file("etc/conf.d/b", b"b");
    let mut sh = TarEntry::new("bin/sh", TarKind::File);
    sh.mode = 0o755;
    t.add(sh, b"#!");
    t.symlink("bin/ash", "sh");
    let mut null = TarEntry::new("dev/null", TarKind::Char);
    null.device = (1, 3);
    t.add(null, b"");
    let layer1 = t.finish();
    let layer2 = TarBuf::default()
        .file("etc/.wh.passwd", b"")
        .dir("etc/conf.d/")
        .file("etc/conf.d/.wh..wh..opq", b"")
        .file("etc/conf.d/c", b"c")
        .file("bin/new", b"new")
        .finish();

    let opts = ApplyOptions {
        temp_dir: Some(c.work.clone()),
        ..Default::default()
    };
    let mut parent: Option<String> = None;
    for (i, layer) in [&layer1, &layer2].into_iter().enumerate() {
        let key = format!("extract-{i} sha256:{i}");
        let mounts =
            c.sn.prepare(&key, parent.as_deref(), Labels::new())
                .await
                .unwrap();
        let applied = apply_to_mounts(&mounts, &layer[..], &opts).await.unwrap();
        let want = {
            use sha2::Digest;
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(layer)))
        };
        assert_eq!(applied.digest, want);
        assert_eq!(applied.size, layer.len() as u64);
        let chain = format!("sha256:chain{i}");
        c.sn.commit(&chain, &key, Labels::new()).await.unwrap();
        parent = Some(chain);
    }
    c.with_view("sha256:chain1", |v| {
        assert!(!v.join("etc/passwd").exists(), "whiteout hides the file");
        assert_eq!(
            names(&v.join("etc/conf.d")),
            ["c".to_string()].into_iter().collect()
        );
        assert_eq!(read(v, "bin/new").as_deref(), Some("new"));
        assert_eq!(fs::read_link(v.join("bin/ash")).unwrap(), Path::new("sh"));
        assert_eq!(
            fs::metadata(v.join("bin/sh")).unwrap().mode() & 0o777,
            0o755
        );
        let null = fs::symlink_metadata(v.join("dev/null")).unwrap();
        assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    })
    .await;
    c.with_view("sha256:chain0", |v| {
        assert_eq!(read(v, "etc/passwd").as_deref(), Some("root:x:0:0\n"));
        assert_eq!(names(&v.join("etc/conf.d")).len(), 2);
    })
    .await;

    // `ctr snapshots diff`: Diff(View(parent), Mounts(key)).
    let upper =
        c.sn.prepare("work", Some("sha256:chain1"), Labels::new())
            .await
            .unwrap();
    {
        let m = c.mount(&upper);
        write(m.path(), "etc/conf.d/d", "d");
        fs::remove_file(m.path().join("bin/new")).unwrap();
        fs::remove_dir_all(m.path().join("etc/conf.d")).unwrap();
    }
    let lower =
        c.sn.view("lower", Some("sha256:chain1"), Labels::new())
            .await
            .unwrap();
    let mut blob = Vec::new();
    let dopts = DiffOptions {
        temp_dir: Some(c.work.clone()),
        ..Default::default()
    };
    let out = diff_mounts(&lower, &upper, &mut blob, &dopts)
        .await
        .unwrap();
    let again =
        c.sn.prepare("again", Some("sha256:chain1"), Labels::new())
            .await
            .unwrap();
    let applied = apply_to_mounts(&again, &blob[..], &opts).await.unwrap();
    assert_eq!(applied, out.uncompressed);
    let (a, b) = (c.mount(&upper), c.mount(&again));
    super::tree::assert_same_tree(a.path(), b.path());
}
