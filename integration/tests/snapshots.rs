//! Snapshots and diff, end to end with the real ctr: pulls that unpack every fixture
//! (whiteouts, opaque directories, compressions, docker and OCI formats), the snapshot
//! verbs, `snapshots diff`, `images mount`, and garbage collection of unused snapshots.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_integration::fixtures::{self, Compression};
use berth_integration::{Ctr, Daemon, Fixture, Registry, procs};

fn sh(script: &str) -> String {
    let out = procs::run(
        Command::new("/bin/sh").args(["-c", script]),
        None,
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
    out.stdout
}

async fn pull(ctr: &Ctr, registry: &Registry, name: &str, fixture: &dyn Fixture) -> String {
    registry.push(fixture, &format!("{name}:v1")).unwrap();
    let image = registry.reference(&format!("{name}:v1"));
    ctr.ok_async(["images", "pull", "--plain-http", &image])
        .await;
    image
}

#[tokio::test]
async fn ctr_pull_unpacks_every_fixture() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ns = d.namespace();
    let ctr = d.ctr(&ns).with_timeout(Duration::from_secs(120));
    let cases: Vec<(&str, &dyn Fixture, String)> = vec![
        (
            "busybox",
            fixtures::busybox(),
            fixtures::busybox().chain_id(),
        ),
        (
            "busybox-none",
            fixtures::busybox_with(Compression::None),
            fixtures::busybox().chain_id(),
        ),
        (
            "busybox-zstd",
            fixtures::busybox_with(Compression::Zstd),
            fixtures::busybox().chain_id(),
        ),
        (
            "busybox-docker",
            fixtures::busybox_docker(),
            fixtures::busybox_docker().chain_id(),
        ),
        (
            "multilayer",
            fixtures::multilayer(),
            fixtures::multilayer().chain_id(),
        ),
        (
            "multilayer-zstd",
            fixtures::multilayer_with(Compression::Zstd),
            fixtures::multilayer_with(Compression::Zstd).chain_id(),
        ),
        (
            "multi-platform",
            fixtures::multi_platform(),
            fixtures::multi_platform().host_image().chain_id(),
        ),
    ];
    for (name, fixture, chain) in &cases {
        pull(&ctr, &registry, name, *fixture).await;
        let info = ctr.ok_async(["snapshots", "info", chain]).await;
        assert!(info.contains("\"Kind\": \"Committed\""), "{name}: {info}");
    }
    // Every chain of the multi-layer image exists, parents first.
    let ls = ctr.ok_async(["snapshots", "ls"]).await;
    for chain in fixtures::multilayer().chain_ids() {
        assert!(ls.contains(&chain), "{chain} missing from {ls}");
    }
    // Pulling again finds every snapshot and unpacks nothing.
    let again = ctr
        .ok_async([
            "images",
            "pull",
            "--plain-http",
            &registry.reference("multilayer:v1"),
        ])
        .await;
    assert!(!again.contains("error"), "{again}");
    assert!(
        d.log().matches("/snapshot/commit").count() >= 3,
        "commits are logged as events"
    );
}

#[tokio::test]
async fn ctr_images_mount_shows_whiteouts_and_opaque_dirs() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctr = d.ctr(&d.namespace());
    let image = pull(&ctr, &registry, "multilayer", fixtures::multilayer()).await;
    let target = d.dir().join("mnt");
    std::fs::create_dir_all(&target).unwrap();
    let target_s = target.display().to_string();
    ctr.ok_async(["images", "mount", &image, &target_s]).await;
    let check = || -> Result<(), String> {
        for (path, content) in fixtures::MULTILAYER_FILES {
            let got = std::fs::read_to_string(target.join(&path[1..]))
                .map_err(|e| format!("{path}: {e}"))?;
            if got != *content {
                return Err(format!("{path}: {got:?} != {content:?}"));
            }
        }
        for path in fixtures::MULTILAYER_ABSENT {
            if target.join(&path[1..]).symlink_metadata().is_ok() {
                return Err(format!("{path} should be gone"));
            }
        }
        let mut opaque: Vec<String> = std::fs::read_dir(target.join("opaque"))
            .map_err(|e| e.to_string())?
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        opaque.sort();
        if opaque != fixtures::MULTILAYER_OPAQUE_CONTENT {
            return Err(format!("opaque dir holds {opaque:?}"));
        }
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(target.join("data/nobody.txt")).map_err(|e| e.to_string())?;
        let (uid, gid, mode) = fixtures::MULTILAYER_NOBODY;
        if (m.uid(), m.gid(), m.mode() & 0o7777) != (uid, gid, mode) {
            return Err(format!(
                "nobody.txt is {}:{} {:o}",
                m.uid(),
                m.gid(),
                m.mode()
            ));
        }
        Ok(())
    };
    let result = check();
    ctr.ok_async(["images", "unmount", "--rm", &target_s]).await;
    result.unwrap();
    assert!(procs::mounts_under(&target).is_empty());
}

/// Runs the `mount ...` command `ctr snapshots mounts` prints.
fn mount_snapshot(ctr: &Ctr, target: &Path, key: &str) {
    let cmd = ctr.ok(["snapshots", "mounts", &target.display().to_string(), key]);
    assert!(cmd.starts_with("mount "), "{cmd}");
    sh(&cmd);
}

#[tokio::test]
async fn ctr_snapshot_verbs_and_diff() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctr = d.ctr(&d.namespace());
    pull(&ctr, &registry, "busybox", fixtures::busybox()).await;
    let base = fixtures::busybox().chain_id();

    ctr.ok_async(["snapshots", "prepare", "work", &base]).await;
    let dup = ctr
        .run_async(["snapshots", "prepare", "work", &base])
        .await
        .unwrap();
    assert!(
        !dup.status.success() && dup.stderr.contains("already exists"),
        "{dup:?}"
    );
    let missing = ctr
        .run_async(["snapshots", "prepare", "w2", "sha256:nope"])
        .await
        .unwrap();
    assert!(
        !missing.status.success() && missing.stderr.contains("not found"),
        "{missing:?}"
    );

    // Change the active snapshot through its mounts, as a container would.
    let target = d.dir().join("work");
    std::fs::create_dir_all(&target).unwrap();
    let c = ctr.clone();
    let t = target.clone();
    tokio::task::spawn_blocking(move || mount_snapshot(&c, &t, "work"))
        .await
        .unwrap();
    std::fs::write(target.join("hello.txt"), "hi from the snapshot\n").unwrap();
    std::fs::remove_file(target.join("etc/platform")).unwrap();
    sh(&format!("umount {}", target.display()));

    // The diff against the parent (ctr prints the layer blob) holds the new file and a
    // whiteout for the removed one.
    let blob = ctr.command(["snapshots", "diff", "work"]).output().unwrap();
    assert!(
        blob.status.success(),
        "{}",
        String::from_utf8_lossy(&blob.stderr)
    );
    let layer = d.dir().join("diff.tar.gz");
    std::fs::write(&layer, &blob.stdout).unwrap();
    let listing = sh(&format!("tar -tzf {}", layer.display()));
    assert!(listing.contains("hello.txt"), "{listing}");
    assert!(listing.contains("etc/.wh.platform"), "{listing}");
    let blobs = ctr.ok_async(["content", "ls"]).await;
    assert!(
        blobs.contains("containerd.io/uncompressed=sha256:"),
        "{blobs}"
    );

    ctr.ok_async(["snapshots", "commit", "done", "work"]).await;
    let info = ctr.ok_async(["snapshots", "info", "done"]).await;
    assert!(
        info.contains("\"Kind\": \"Committed\"") && info.contains(&base),
        "{info}"
    );
    let usage = ctr.ok_async(["snapshots", "usage", "done"]).await;
    assert!(usage.lines().any(|l| l.starts_with("done")), "{usage}");
    let tree = ctr.ok_async(["snapshots", "tree"]).await;
    assert!(tree.contains(&base) && tree.contains("done"), "{tree}");
    ctr.ok_async(["snapshots", "view", "look", "done"]).await;
    let view = ctr.ok_async(["snapshots", "info", "look"]).await;
    assert!(view.contains("\"Kind\": \"View\""), "{view}");

    // A parent with children stays.
    let busy = ctr.run_async(["snapshots", "rm", "done"]).await.unwrap();
    assert!(!busy.status.success(), "{busy:?}");
    ctr.ok_async(["snapshots", "rm", "look"]).await;
    ctr.ok_async(["snapshots", "rm", "done"]).await;
    let ls = ctr.ok_async(["snapshots", "ls"]).await;
    assert!(!ls.contains("done") && ls.contains(&base), "{ls}");
}

#[tokio::test]
async fn unused_snapshots_are_collected_after_image_removal() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctr = d.ctr(&d.namespace());
    let image = pull(&ctr, &registry, "multilayer", fixtures::multilayer()).await;
    // A snapshot a client roots itself survives.
    ctr.ok_async([
        "snapshots",
        "prepare",
        "mine",
        &fixtures::multilayer().chain_id(),
    ])
    .await;
    ctr.ok_async(["images", "rm", &image]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ls = ctr.ok_async(["snapshots", "ls"]).await;
        let content = ctr.ok_async(["content", "ls", "-q"]).await;
        // `mine` keeps its parents; the image's blobs are gone.
        if content.trim().is_empty() {
            assert!(ls.contains("mine"), "{ls}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "content never collected: {content}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ctr.ok_async(["snapshots", "rm", "mine"]).await;
    // Now nothing holds the chain: it goes at the next collection (after a delete).
    ctr.ok_async(["leases", "create", "--id", "poke"]).await;
    ctr.ok_async(["leases", "rm", "poke"]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ls = ctr.ok_async(["snapshots", "ls"]).await;
        if ls.lines().count() <= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "snapshots never collected: {ls}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
