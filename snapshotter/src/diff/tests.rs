//! Diff tests: round trips through apply, determinism, the overlay fast path and mounts.
//! They set owners, device nodes and trusted xattrs and mount overlays, so they need root.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::path::Path;

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::*;
use crate::apply::{ApplyMode, ApplyOptions, apply};
use crate::fsutil::copy_tree;
use crate::mount::MountGuard;
use crate::testsuite::tree::assert_same_tree;

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

async fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    async_compression::tokio::bufread::GzipDecoder::new(data)
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

fn mknod(path: &Path, kind: nix::sys::stat::SFlag, dev: u64) {
    nix::sys::stat::mknod(
        path,
        kind,
        nix::sys::stat::Mode::from_bits_truncate(0o640),
        dev,
    )
    .unwrap();
}

/// A lower tree with every kind of entry.
fn make_lower(d: &Path) {
    fs::create_dir_all(d.join("etc/conf.d")).unwrap();
    fs::create_dir_all(d.join("usr/bin")).unwrap();
    fs::create_dir_all(d.join("var/lib/gone/deep")).unwrap();
    fs::create_dir_all(d.join("becomes-file")).unwrap();
    fs::write(d.join("etc/passwd"), "root:x:0:0\n").unwrap();
    fs::write(d.join("etc/conf.d/a"), "a").unwrap();
    fs::write(d.join("var/lib/gone/deep/f"), "f").unwrap();
    fs::write(d.join("usr/bin/tool"), vec![9u8; 200_000]).unwrap();
    fs::write(d.join("becomes-dir"), "file").unwrap();
    fs::write(d.join("same"), "unchanged").unwrap();
    symlink("tool", d.join("usr/bin/alias")).unwrap();
    fs::hard_link(d.join("usr/bin/tool"), d.join("usr/bin/tool2")).unwrap();
    mknod(
        &d.join("etc/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::makedev(1, 3),
    );
    xattr::set(d.join("etc/passwd"), "user.tag", b"1").unwrap();
}

/// The upper tree: a modified copy of the lower one.
fn make_upper(lower: &Path, u: &Path) {
    copy_tree(lower, u).unwrap();
    fs::write(u.join("etc/passwd"), "root:x:0:0\nuser:x:1000:1000\n").unwrap();
    xattr::set(u.join("etc/passwd"), "user.tag", b"2").unwrap();
    fs::remove_dir_all(u.join("var/lib/gone")).unwrap();
    fs::remove_file(u.join("etc/conf.d/a")).unwrap();
    fs::remove_dir(u.join("becomes-file")).unwrap();
    fs::write(u.join("becomes-file"), "now a file").unwrap();
    fs::remove_file(u.join("becomes-dir")).unwrap();
    fs::create_dir(u.join("becomes-dir")).unwrap();
    fs::write(u.join("becomes-dir/inside"), "x").unwrap();
    fs::write(u.join("usr/bin/su"), "su").unwrap();
    chown(u.join("usr/bin/su"), Some(0), Some(0)).unwrap();
    fs::set_permissions(u.join("usr/bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
    chown(u.join("usr/bin/tool"), Some(33), Some(44)).unwrap();
    fs::create_dir_all(u.join("new/dir")).unwrap();
    fs::write(u.join("new/dir/file"), "new").unwrap();
    fs::hard_link(u.join("new/dir/file"), u.join("new/link")).unwrap();
    symlink("/etc/passwd", u.join("new/abs-link")).unwrap();
    mknod(&u.join("new/fifo"), nix::sys::stat::SFlag::S_IFIFO, 0);
    fs::set_permissions(u.join("etc"), fs::Permissions::from_mode(0o750)).unwrap();
    let long = u.join("new").join("n".repeat(150));
    fs::create_dir(&long).unwrap();
    fs::write(long.join("m".repeat(200)), "long").unwrap();
}

#[tokio::test]
async fn round_trip_reproduces_upper() {
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper, target) = (
        tmp.path().join("lower"),
        tmp.path().join("upper"),
        tmp.path().join("target"),
    );
    for d in [&lower, &upper, &target] {
        fs::create_dir(d).unwrap();
    }
    make_lower(&lower);
    make_upper(&lower, &upper);
    copy_tree(&lower, &target).unwrap();

    let mut blob = Vec::new();
    let out = diff_dirs(&lower, &upper, &mut blob, &DiffOptions::default())
        .await
        .unwrap();
    assert_eq!(
        out.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(out.compressed.digest, sha(&blob));
    assert_eq!(out.compressed.size, blob.len() as u64);
    let tar = gunzip(&blob).await;
    assert_eq!(out.uncompressed.digest, sha(&tar));
    assert_eq!(out.uncompressed.size, tar.len() as u64);

    let applied = apply(
        &target,
        &ApplyMode::Directory,
        &blob[..],
        &ApplyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        applied, out.uncompressed,
        "apply returns the diff ID the diff computed"
    );
    assert_same_tree(&upper, &target);
    assert!(
        !tar.windows(4).any(|w| w == b"same"),
        "unchanged files are not in the layer"
    );

    // Deterministic: the same trees give the same bytes.
    let mut again = Vec::new();
    let out2 = diff_dirs(&lower, &upper, &mut again, &DiffOptions::default())
        .await
        .unwrap();
    assert_eq!(out2, out);
    assert_eq!(again, blob);

    // Uncompressed and zstd blobs carry the same tar.
    for compression in [Compression::None, Compression::Zstd] {
        let mut b = Vec::new();
        let opts = DiffOptions {
            compression,
            ..Default::default()
        };
        let o = diff_dirs(&lower, &upper, &mut b, &opts).await.unwrap();
        assert_eq!(o.uncompressed, out.uncompressed);
        assert_eq!(o.compressed.digest, sha(&b));
    }
}

fn overlay(lower: &[&Path], upper: &Path, work: &Path) -> Mount {
    let lowers: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            format!("workdir={}", work.display()),
            format!("upperdir={}", upper.display()),
            format!("lowerdir={}", lowers.join(":")),
        ],
    }
}

#[tokio::test]
async fn overlay_upper_fast_path() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n);
    for d in ["lower", "upper", "work", "merged", "target", "check"] {
        fs::create_dir(p(d)).unwrap();
    }
    make_lower(&p("lower"));
    let mounts = [overlay(&[&p("lower")], &p("upper"), &p("work"))];
    {
        let m = MountGuard::mount(&mounts, &p("merged")).unwrap();
        let d = m.path();
        fs::remove_file(d.join("etc/passwd")).unwrap();
        fs::remove_dir_all(d.join("var/lib/gone")).unwrap();
        fs::remove_dir_all(d.join("etc/conf.d")).unwrap();
        fs::create_dir(d.join("etc/conf.d")).unwrap();
        fs::write(d.join("etc/conf.d/b"), "b").unwrap();
        fs::write(d.join("usr/bin/new"), "n").unwrap();
        m.unmount().unwrap();
    }
    let mut blob = Vec::new();
    fs::create_dir(p("mnt")).unwrap();
    let opts = DiffOptions {
        compression: Compression::None,
        temp_dir: Some(p("mnt")),
    };
    let out = diff_overlay_upper(&p("upper"), &mut blob, &opts)
        .await
        .unwrap();
    let has = |s: &[u8]| blob.windows(s.len()).any(|w| w == s);
    assert!(has(b"etc/.wh.passwd"));
    assert!(has(b"etc/conf.d/.wh..wh..opq"));
    assert!(has(b"var/lib/.wh.gone"));
    assert!(
        !has(b"trusted.overlay"),
        "overlay-private xattrs are not archived"
    );

    // Applied onto a copy of the lower tree, the layer gives the merged view.
    copy_tree(&p("lower"), &p("target")).unwrap();
    let applied = apply(
        &p("target"),
        &ApplyMode::Directory,
        &blob[..],
        &ApplyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(applied, out.uncompressed);
    let ro = crate::mount::read_only(&mounts);
    let m = MountGuard::mount(&ro, &p("check")).unwrap();
    assert_same_tree(m.path(), &p("target"));
    drop(m);

    // diff_mounts takes the fast path for an overlay right on top of its lower.
    let lower_bind = [Mount::bind(p("lower").display().to_string(), true)];
    let mut via_mounts = Vec::new();
    let out2 = diff_mounts(&lower_bind, &mounts, &mut via_mounts, &opts)
        .await
        .unwrap();
    assert_eq!(out2, out);
    assert_eq!(via_mounts, blob);

    // Any other pair of mounts is compared as trees: a different layer, the same result.
    let mut compared = Vec::new();
    diff_mounts(
        &lower_bind,
        &[Mount::bind(p("target").display().to_string(), true)],
        &mut compared,
        &opts,
    )
    .await
    .unwrap();
    let target2 = p("target2");
    fs::create_dir(&target2).unwrap();
    copy_tree(&p("lower"), &target2).unwrap();
    apply(
        &target2,
        &ApplyMode::Directory,
        &compared[..],
        &ApplyOptions::default(),
    )
    .await
    .unwrap();
    assert_same_tree(&p("target"), &target2);

    // An empty lower is an empty tree: the layer holds everything.
    let mut full = Vec::new();
    diff_mounts(&[], &lower_bind, &mut full, &opts)
        .await
        .unwrap();
    let target3 = p("target3");
    fs::create_dir(&target3).unwrap();
    apply(
        &target3,
        &ApplyMode::Directory,
        &full[..],
        &ApplyOptions::default(),
    )
    .await
    .unwrap();
    assert_same_tree(&p("lower"), &target3);
    assert_eq!(
        fs::read_dir(p("mnt")).unwrap().count(),
        0,
        "no temporary mount points left"
    );
}
