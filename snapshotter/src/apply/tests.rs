//! Apply tests, including hostile layers built in place. They create device nodes and set
//! owners and trusted xattrs, so they need root (which the test machines have).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::*;
use crate::diff::tar_writer::{TarBuf, TarEntry, TarKind};

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"keep").unwrap();
    Fixture {
        root,
        outside,
        _tmp: tmp,
    }
}

impl Fixture {
    /// The outside directory still holds exactly the one file it started with.
    fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
        assert_eq!(fs::read(self.outside.join("secret")).unwrap(), b"keep");
    }
}

async fn run(dir: &Path, tar: &[u8], mode: &ApplyMode, opts: &ApplyOptions) -> Result<Digested> {
    apply(dir, mode, tar, opts).await
}

async fn run_plain(dir: &Path, tar: &[u8]) -> Result<Digested> {
    run(dir, tar, &ApplyMode::Directory, &ApplyOptions::default()).await
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

async fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = async_compression::tokio::write::GzipEncoder::new(Vec::new());
    enc.write_all(data).await.unwrap();
    enc.shutdown().await.unwrap();
    enc.into_inner()
}

async fn zstd(data: &[u8]) -> Vec<u8> {
    let mut enc = async_compression::tokio::write::ZstdEncoder::new(Vec::new());
    enc.write_all(data).await.unwrap();
    enc.shutdown().await.unwrap();
    enc.into_inner()
}

fn rich_layer() -> Vec<u8> {
    let mut t = TarBuf::default();
    let mut bin = TarEntry::new("usr/bin/", TarKind::Dir);
    bin.mtime = 1_600_000_000;
    bin.mode = 0o750;
    t.add(TarEntry::new("usr/", TarKind::Dir), b"");
    t.add(bin, b"");
    let mut su = TarEntry::new("usr/bin/su", TarKind::File);
    su.mode = 0o4755;
    su.uid = 1000;
    su.gid = 1001;
    su.mtime = 1_500_000_000;
    su.xattrs = vec![
        (b"user.note".to_vec(), b"hello".to_vec()),
        (
            b"security.capability".to_vec(),
            vec![
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ),
    ];
    t.add(su, b"#!/bin/sh\n");
    t.hardlink("usr/bin/su2", "usr/bin/su");
    t.symlink("usr/bin/sh", "/bin/busybox");
    let mut null = TarEntry::new("dev/null", TarKind::Char);
    null.device = (1, 3);
    null.mode = 0o666;
    t.add(null, b"");
    t.add(TarEntry::new("run/fifo", TarKind::Fifo), b"");
    let long = format!("deep/{}/{}", "d".repeat(120), "f".repeat(120));
    t.file(&long, b"long name");
    t.finish()
}

#[tokio::test]
async fn applies_metadata_links_and_nodes() {
    let f = fixture();
    let tar = rich_layer();
    let out = run_plain(&f.root, &tar).await.unwrap();
    assert_eq!(out.digest, sha(&tar));
    assert_eq!(out.size, tar.len() as u64);

    let su = fs::symlink_metadata(f.root.join("usr/bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!((su.uid(), su.gid()), (1000, 1001));
    assert_eq!(su.mtime(), 1_500_000_000);
    assert_eq!(
        xattr::get(f.root.join("usr/bin/su"), "user.note")
            .unwrap()
            .unwrap(),
        b"hello"
    );
    assert!(
        xattr::get(f.root.join("usr/bin/su"), "security.capability")
            .unwrap()
            .is_some()
    );
    let su2 = fs::symlink_metadata(f.root.join("usr/bin/su2")).unwrap();
    assert_eq!(su2.ino(), su.ino(), "hard link shares the inode");
    assert_eq!(
        fs::read_link(f.root.join("usr/bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let null = fs::symlink_metadata(f.root.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o777, 0o666);
    assert!(
        fs::symlink_metadata(f.root.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let bin = fs::symlink_metadata(f.root.join("usr/bin")).unwrap();
    assert_eq!(bin.mode() & 0o7777, 0o750);
    assert_eq!(
        bin.mtime(),
        1_600_000_000,
        "directory times set after its children"
    );
    let long = f
        .root
        .join(format!("deep/{}/{}", "d".repeat(120), "f".repeat(120)));
    assert_eq!(fs::read(long).unwrap(), b"long name");
}

#[tokio::test]
async fn diff_id_is_of_the_uncompressed_stream() {
    let tar = rich_layer();
    for (data, hint) in [
        (gzip(&tar).await, None),
        (zstd(&tar).await, None),
        (gzip(&tar).await, Some(Compression::Gzip)),
        (tar.clone(), Some(Compression::None)),
    ] {
        let f = fixture();
        let opts = ApplyOptions {
            compression: hint,
            ..Default::default()
        };
        let out = run(&f.root, &data, &ApplyMode::Directory, &opts)
            .await
            .unwrap();
        assert_eq!(out.digest, sha(&tar));
        assert_eq!(out.size, tar.len() as u64);
        assert!(f.root.join("usr/bin/su").exists());
    }
    assert_eq!(
        Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        Some(Compression::Gzip)
    );
    assert_eq!(
        Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
        Some(Compression::Zstd)
    );
    assert_eq!(
        Compression::from_media_type("application/vnd.oci.image.layer.v1.tar"),
        Some(Compression::None)
    );
}

fn assert_unsafe(r: Result<Digested>) {
    match r {
        Err(e @ Error::UnsafeEntry { .. }) => {
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        }
        other => panic!("expected an unsafe-entry error, got {other:?}"),
    }
}

#[tokio::test]
async fn rejects_dotdot() {
    let f = fixture();
    let tar = TarBuf::default()
        .file("a/../../outside/pwned", b"x")
        .finish();
    assert_unsafe(run_plain(&f.root, &tar).await);
    let tar = TarBuf::default().file("../outside/pwned", b"x").finish();
    assert_unsafe(run_plain(&f.root, &tar).await);
    f.assert_outside_untouched();
}

#[tokio::test]
async fn rejects_absolute_paths() {
    let f = fixture();
    let path = format!("{}/pwned", f.outside.display());
    let tar = TarBuf::default().file(&path, b"x").finish();
    assert_unsafe(run_plain(&f.root, &tar).await);
    f.assert_outside_untouched();
}

#[tokio::test]
async fn symlinked_parent_cannot_lead_outside() {
    for target in [f_outside_abs as fn(&Fixture) -> String, |_| {
        "../outside".to_string()
    }] {
        let f = fixture();
        let tar = TarBuf::default()
            .symlink("evil", &target(&f))
            .file("evil/pwned", b"x")
            .finish();
        assert_unsafe(run_plain(&f.root, &tar).await);
        f.assert_outside_untouched();
        // The symlink itself is fine to have; it is never followed.
        assert!(
            fs::symlink_metadata(f.root.join("evil"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}

fn f_outside_abs(f: &Fixture) -> String {
    f.outside.display().to_string()
}

#[tokio::test]
async fn symlink_is_replaced_not_written_through() {
    let f = fixture();
    let tar = TarBuf::default()
        .symlink("secret", &format!("{}/secret", f.outside.display()))
        .file("secret", b"overwritten")
        .finish();
    run_plain(&f.root, &tar).await.unwrap();
    assert_eq!(fs::read(f.root.join("secret")).unwrap(), b"overwritten");
    f.assert_outside_untouched();
}

#[tokio::test]
async fn in_root_symlinked_parent_is_followed() {
    let f = fixture();
    let tar = TarBuf::default()
        .dir("usr/lib/")
        .symlink("lib", "usr/lib")
        .file("lib/libc.so", b"elf")
        .finish();
    run_plain(&f.root, &tar).await.unwrap();
    assert_eq!(fs::read(f.root.join("usr/lib/libc.so")).unwrap(), b"elf");
}

#[tokio::test]
async fn hardlinks_cannot_point_outside() {
    let f = fixture();
    let secret = format!("{}/secret", f.outside.display());
    for tar in [
        TarBuf::default()
            .hardlink("l", "../outside/secret")
            .finish(),
        TarBuf::default().hardlink("l", &secret).finish(),
        TarBuf::default()
            .symlink("evil", &f.outside.display().to_string())
            .hardlink("l", "evil/secret")
            .finish(),
    ] {
        let r = run_plain(&f.root, &tar).await;
        assert_unsafe(r);
        assert!(!f.root.join("l").exists());
    }
    f.assert_outside_untouched();
    assert_eq!(fs::metadata(f.outside.join("secret")).unwrap().nlink(), 1);
}

#[tokio::test]
async fn limit_on_uncompressed_bytes() {
    let f = fixture();
    let tar = TarBuf::default().file("big", &vec![7u8; 3 << 20]).finish();
    let opts = ApplyOptions {
        max_uncompressed_bytes: Some(1 << 20),
        ..Default::default()
    };
    let gz = gzip(&tar).await;
    let r = run(&f.root, &gz, &ApplyMode::Directory, &opts).await;
    assert!(
        matches!(r, Err(Error::LimitExceeded { limit }) if limit == 1 << 20),
        "{r:?}"
    );

    // A header declaring a huge size fails before any data is read.
    let mut t = TarBuf::default();
    let mut e = TarEntry::new("huge", TarKind::File);
    e.size = 1 << 40;
    t.0.extend_from_slice(&crate::diff::tar_writer::header_bytes(&e).unwrap());
    t.0.extend_from_slice(&[0u8; 4096]);
    let r = run(&f.root, &t.0, &ApplyMode::Directory, &opts).await;
    assert!(matches!(r, Err(Error::LimitExceeded { .. })), "{r:?}");
    assert!(!f.root.join("huge").exists());
}

#[tokio::test]
async fn corrupted_gzip_fails() {
    let f = fixture();
    let tar = rich_layer();
    let mut gz = gzip(&tar).await;
    let mid = gz.len() / 2;
    for b in &mut gz[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let r = run_plain(&f.root, &gz).await;
    assert!(matches!(r, Err(Error::InvalidLayer(_))), "{r:?}");
    assert_eq!(r.unwrap_err().kind(), crate::ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn truncated_tar_fails() {
    let f = fixture();
    let tar = TarBuf::default().file("a", &vec![1u8; 10_000]).finish();
    let r = run_plain(&f.root, &tar[..4096]).await;
    assert!(matches!(r, Err(Error::InvalidLayer(_))), "{r:?}");
    // Truncated inside a header.
    let r = run_plain(&f.root, &tar[..200]).await;
    assert!(matches!(r, Err(Error::InvalidLayer(_))), "{r:?}");
}

#[tokio::test]
async fn invalid_whiteout_names_are_refused() {
    let f = fixture();
    let tar = TarBuf::default()
        .dir("sub/")
        .file("sub/.wh...", b"")
        .finish();
    assert_unsafe(run_plain(&f.root.clone(), &tar).await);
    assert!(f.root.exists());
}

#[tokio::test]
async fn whiteouts_in_directory_mode() {
    let f = fixture();
    let base = TarBuf::default()
        .file("a/b", b"1")
        .file("a/keep", b"1")
        .file("c", b"1")
        .file("d/old1", b"1")
        .file("d/sub/old2", b"1")
        .finish();
    run_plain(&f.root, &base).await.unwrap();
    let layer = TarBuf::default()
        .file("a/.wh.b", b"")
        .file(".wh.c", b"")
        .file(".wh.missing", b"")
        .dir("d/")
        .file("d/new", b"2")
        .file("d/.wh..wh..opq", b"")
        .finish();
    run_plain(&f.root, &layer).await.unwrap();
    assert!(!f.root.join("a/b").exists());
    assert!(f.root.join("a/keep").exists());
    assert!(!f.root.join("c").exists());
    let mut d: Vec<_> = fs::read_dir(f.root.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    d.sort();
    assert_eq!(d, vec![std::ffi::OsString::from("new")]);
}

#[tokio::test]
async fn whiteouts_off_are_plain_files() {
    let f = fixture();
    run_plain(&f.root, &TarBuf::default().file("c", b"1").finish())
        .await
        .unwrap();
    let files = TarBuf::default()
        .file(".wh.c", b"kept")
        .file(".wh..wh..opq", b"")
        .finish();
    let options = ApplyOptions {
        whiteouts: false,
        ..ApplyOptions::default()
    };
    run(&f.root, &files, &ApplyMode::Directory, &options)
        .await
        .unwrap();
    assert_eq!(fs::read(f.root.join("c")).unwrap(), b"1");
    assert_eq!(fs::read(f.root.join(".wh.c")).unwrap(), b"kept");
    assert!(f.root.join(".wh..wh..opq").is_file());
}

#[tokio::test]
async fn whiteouts_in_overlay_mode() {
    let f = fixture();
    let lower = f.root.parent().unwrap().join("lower");
    fs::create_dir_all(lower.join("etc/conf.d")).unwrap();
    fs::set_permissions(lower.join("etc"), fs::Permissions::from_mode(0o710)).unwrap();
    std::os::unix::fs::chown(lower.join("etc"), Some(5), Some(6)).unwrap();
    xattr::set(lower.join("etc"), "trusted.overlay.opaque", b"y").unwrap();
    xattr::set(lower.join("etc"), "user.kept", b"1").unwrap();
    let layer = TarBuf::default()
        .file("etc/.wh.passwd", b"")
        .file("etc/conf.d/.wh..wh..opq", b"")
        .finish();
    let mode = ApplyMode::OverlayUpper {
        lowers: vec![lower.clone()],
    };
    run(&f.root, &layer, &mode, &ApplyOptions::default())
        .await
        .unwrap();
    let wh = fs::symlink_metadata(f.root.join("etc/passwd")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert_eq!(
        xattr::get(f.root.join("etc/conf.d"), "trusted.overlay.opaque")
            .unwrap()
            .unwrap(),
        b"y"
    );
    let etc = fs::symlink_metadata(f.root.join("etc")).unwrap();
    assert_eq!(
        etc.mode() & 0o7777,
        0o710,
        "created parent copies the lower's mode"
    );
    assert_eq!((etc.uid(), etc.gid()), (5, 6));
    assert_eq!(
        xattr::get(f.root.join("etc"), "user.kept")
            .unwrap()
            .unwrap(),
        b"1"
    );
    assert!(
        xattr::get(f.root.join("etc"), "trusted.overlay.opaque")
            .unwrap()
            .is_none(),
        "overlay-private xattrs of lowers are not inherited"
    );
}

#[tokio::test]
async fn apply_to_mounts_picks_the_right_way() {
    let f = fixture();
    let tar = TarBuf::default().file("hello", b"hi").finish();
    // Single bind mount: written through its source.
    let bind = [Mount::bind(f.root.display().to_string(), false)];
    apply_to_mounts(&bind, &tar[..], &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(fs::read(f.root.join("hello")).unwrap(), b"hi");

    // Overlay: written into the upper dir, in overlay mode.
    let base = f.root.parent().unwrap();
    for d in ["upper", "work", "low"] {
        fs::create_dir(base.join(d)).unwrap();
    }
    let overlay = [Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            format!("workdir={}", base.join("work").display()),
            format!("upperdir={}", base.join("upper").display()),
            format!("lowerdir={}", base.join("low").display()),
        ],
    }];
    let wh = TarBuf::default().file(".wh.gone", b"").finish();
    apply_to_mounts(&overlay, &wh[..], &ApplyOptions::default())
        .await
        .unwrap();
    assert!(
        fs::symlink_metadata(base.join("upper/gone"))
            .unwrap()
            .file_type()
            .is_char_device()
    );

    // Anything else is mounted on a temporary directory: two stacked binds write into the top.
    let other = base.join("other");
    fs::create_dir(&other).unwrap();
    let stacked = [
        Mount::bind(f.root.display().to_string(), false),
        Mount::bind(other.display().to_string(), false),
    ];
    let temp = base.join("mnt");
    fs::create_dir(&temp).unwrap();
    let opts = ApplyOptions {
        temp_dir: Some(temp.clone()),
        ..Default::default()
    };
    apply_to_mounts(&stacked, &tar[..], &opts).await.unwrap();
    assert_eq!(fs::read(other.join("hello")).unwrap(), b"hi");
    assert_eq!(
        fs::read_dir(&temp).unwrap().count(),
        0,
        "temporary mount point removed"
    );

    // A read-only bind mount fails (and is unmounted).
    let ro = [Mount::bind(other.display().to_string(), true)];
    let r = apply_to_mounts(&ro, &tar[..], &opts).await;
    assert!(r.is_err());
    assert_eq!(fs::read_dir(&temp).unwrap().count(), 0);
}

// The directory cache (`dirs.rs`) must never hand out a directory that was removed,
// replaced or changed since it was resolved.

#[tokio::test]
async fn dir_replaced_by_file_then_by_new_dir() {
    let f = fixture();
    let tar = TarBuf::default()
        .dir("d/")
        .file("d/x", b"1")
        .file("d", b"now a file")
        .dir("d/")
        .file("d/y", b"2")
        .finish();
    run_plain(&f.root, &tar).await.unwrap();
    assert!(f.root.join("d").is_dir());
    assert!(!f.root.join("d/x").exists(), "old directory's content gone");
    assert_eq!(fs::read(f.root.join("d/y")).unwrap(), b"2");
}

#[tokio::test]
async fn dir_replaced_by_file_refuses_children() {
    let f = fixture();
    let tar = TarBuf::default()
        .file("d/x", b"1")
        .file("d", b"now a file")
        .file("d/y", b"2")
        .finish();
    let r = run_plain(&f.root, &tar).await;
    assert!(matches!(r, Err(Error::InvalidLayer(_))), "{r:?}");
    assert_eq!(fs::read(f.root.join("d")).unwrap(), b"now a file");
}

#[tokio::test]
async fn whiteout_of_a_cached_dir() {
    let f = fixture();
    run_plain(&f.root, &TarBuf::default().file("d/old", b"0").finish())
        .await
        .unwrap();
    let tar = TarBuf::default()
        .file("d/a", b"1")
        .file(".wh.d", b"")
        .file("d/b", b"2")
        .finish();
    run_plain(&f.root, &tar).await.unwrap();
    assert!(!f.root.join("d/old").exists());
    assert!(!f.root.join("d/a").exists());
    assert_eq!(fs::read(f.root.join("d/b")).unwrap(), b"2");
}

#[tokio::test]
async fn overlay_whiteout_of_a_cached_dir() {
    let f = fixture();
    let tar = TarBuf::default()
        .file("d/a", b"1")
        .file(".wh.d", b"")
        .file("d/b", b"2")
        .finish();
    let mode = ApplyMode::OverlayUpper { lowers: vec![] };
    let r = run(&f.root, &tar, &mode, &ApplyOptions::default()).await;
    assert!(matches!(r, Err(Error::InvalidLayer(_))), "{r:?}");
    assert!(
        fs::symlink_metadata(f.root.join("d"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[tokio::test]
async fn cached_dir_replaced_by_symlink_to_outside() {
    let f = fixture();
    let tar = TarBuf::default()
        .file("d/a", b"1")
        .symlink("d", &f.outside.display().to_string())
        .file("d/pwned", b"x")
        .finish();
    assert_unsafe(run_plain(&f.root, &tar).await);
    f.assert_outside_untouched();
}

#[tokio::test]
async fn cached_dir_replaced_by_symlink_inside() {
    let f = fixture();
    let tar = TarBuf::default()
        .dir("e/")
        .file("d/a", b"1")
        .symlink("d", "e")
        .file("d/b", b"2")
        .finish();
    run_plain(&f.root, &tar).await.unwrap();
    assert_eq!(fs::read(f.root.join("e/b")).unwrap(), b"2");
    assert!(!f.root.join("e/a").exists());
}

#[tokio::test]
async fn opaque_removes_a_cached_dir() {
    let f = fixture();
    run_plain(&f.root, &TarBuf::default().file("d/sub/old", b"0").finish())
        .await
        .unwrap();
    // The hard link caches `d/sub`; the opaque marker then removes it.
    let tar = TarBuf::default()
        .hardlink("d/link", "d/sub/old")
        .file("d/.wh..wh..opq", b"")
        .file("d/sub/new", b"1")
        .finish();
    run_plain(&f.root, &tar).await.unwrap();
    assert!(!f.root.join("d/sub/old").exists());
    assert_eq!(fs::read(f.root.join("d/sub/new")).unwrap(), b"1");
    assert_eq!(fs::read(f.root.join("d/link")).unwrap(), b"0");
}

#[tokio::test]
async fn owner_and_mode_exact_after_dir_changes() {
    let f = fixture();
    let mut t = TarBuf::default();
    t.dir("a/");
    t.file("a/f1", b"1");
    // The same directory again, now setgid with another group: entries created in it
    // would inherit that group (and subdirectories the setgid bit) if nothing set them.
    let mut a = TarEntry::new("a/", TarKind::Dir);
    a.gid = 7;
    a.mode = 0o2775;
    t.add(a, b"");
    t.file("a/f2", b"2");
    t.dir("a/sub/");
    t.symlink("a/l", "f2");
    let tar = t.finish();
    run_plain(&f.root, &tar).await.unwrap();
    let a = fs::symlink_metadata(f.root.join("a")).unwrap();
    assert_eq!((a.gid(), a.mode() & 0o7777), (7, 0o2775));
    for (name, mode) in [("a/f1", 0o644), ("a/f2", 0o644), ("a/sub", 0o755)] {
        let m = fs::symlink_metadata(f.root.join(name)).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{name}");
        assert_eq!(m.mode() & 0o7777, mode, "{name}");
    }
    assert_eq!(fs::symlink_metadata(f.root.join("a/l")).unwrap().gid(), 0);
}

#[tokio::test]
async fn modes_exact_whatever_the_umask() {
    let f = fixture();
    let mut t = TarBuf::default();
    for (i, mode) in [0o777, 0o666, 0o640, 0o600, 0o400, 0o000, 0o2755, 0o1777]
        .into_iter()
        .enumerate()
    {
        let mut e = TarEntry::new(format!("f{i}"), TarKind::File);
        e.mode = mode;
        t.add(e, b"x");
        let mut d = TarEntry::new(format!("d{i}/"), TarKind::Dir);
        d.mode = mode;
        t.add(d, b"");
        let mut n = TarEntry::new(format!("p{i}"), TarKind::Fifo);
        n.mode = mode & 0o777;
        t.add(n, b"");
    }
    let tar = t.finish();
    run_plain(&f.root, &tar).await.unwrap();
    for (i, mode) in [0o777, 0o666, 0o640, 0o600, 0o400, 0o000, 0o2755, 0o1777]
        .into_iter()
        .enumerate()
    {
        let m = |p: String| fs::symlink_metadata(f.root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(m(format!("f{i}")), mode, "file {mode:o}");
        assert_eq!(m(format!("d{i}")), mode, "dir {mode:o}");
        assert_eq!(m(format!("p{i}")), mode & 0o777, "fifo {mode:o}");
    }
}

#[tokio::test]
async fn default_acl_does_not_change_modes() {
    let f = fixture();
    // system.posix_acl_default: version 2; user::rwx, group::---, mask::---, other::---.
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in [(0x01u16, 7u16), (0x04, 0), (0x10, 0), (0x20, 0)] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    let mut t = TarBuf::default();
    let mut d = TarEntry::new("acl/", TarKind::Dir);
    d.xattrs = vec![(b"system.posix_acl_default".to_vec(), acl)];
    t.add(d, b"");
    t.file("acl/f", b"x");
    t.dir("acl/sub/");
    let tar = t.finish();
    run_plain(&f.root, &tar).await.unwrap();
    let m = |p: &str| fs::symlink_metadata(f.root.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(m("acl/f"), 0o644);
    assert_eq!(m("acl/sub"), 0o755);
}

#[tokio::test]
async fn many_directories_overflow_the_cache() {
    let f = fixture();
    let mut t = TarBuf::default();
    for round in 0..2 {
        for i in 0..200 {
            t.file(&format!("d{i}/f{round}"), b"x");
        }
    }
    let tar = t.finish();
    run_plain(&f.root, &tar).await.unwrap();
    for i in 0..200 {
        for round in 0..2 {
            assert!(f.root.join(format!("d{i}/f{round}")).exists());
        }
    }
}
