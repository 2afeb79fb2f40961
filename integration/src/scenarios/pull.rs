//! Cold pull + unpack of the big image ([`super::big_image`]) from a local registry:
//! `berthctl pull` on a fresh berthd against `ctr images pull --plain-http` (which
//! fetches, then unpacks) on a fresh containerd, alternately, a few runs each.
//!
//! Before each timed pull the file system is synced (`sync -f`), so neither side pays
//! for the other's dirty pages. Every run gets a fresh directory in a new spot of the
//! disk, and all are deleted only after the last run: on ext4 without a journal (this
//! VM's root), allocating an inode skips, one buffer lookup each, every nearby inode freed
//! in the last minutes, so a run next to a big recent delete (the previous run's, or a
//! test suite's) measures that scan rather than the pull. The runs' parent is marked
//! top-of-hierarchy (`chattr +T`), which makes ext4 place each run's directory in a
//! lightly used block group, as it does for directories at the root of the file system.
//! `BERTH_BENCH_VERBOSE=1` prints berthd's per-layer
//! timings (debug log) after each of its runs.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::big_image;
use crate::bench::{Row, Samples};
use crate::{Daemon, DaemonOptions, Registry, procs};

const TIMEOUT: Duration = Duration::from_secs(900);

/// `runs` cold pulls on each side; one row.
pub async fn cold_pull(runs: usize) -> anyhow::Result<Vec<Row>> {
    let image = tokio::task::spawn_blocking(big_image::get).await??;
    let registry = Registry::start()?;
    image.push(&registry, "bench/big", "v1")?;
    let reference = registry.reference("bench/big:v1");
    eprintln!(
        "cold pull: {} layers, {:.0} MB gzip, {:.0} MB unpacked, {} files",
        image.layers.len(),
        image.compressed() as f64 / 1e6,
        image.unpacked() as f64 / 1e6,
        image.files()
    );
    let mut berth = Vec::new();
    let mut containerd = Vec::new();
    let mut done_dirs = Vec::new();
    let spread = spread_parent()?;
    for i in 0..runs {
        let mut d = Daemon::start_with(DaemonOptions {
            parent: Some(spread.path().to_path_buf()),
            ..DaemonOptions::default()
        })
        .await?;
        sync_fs(d.dir())?;
        let mut cmd = d.berthctl()?;
        cmd.args(["-n", &d.namespace(), "pull", "-q", &reference]);
        let t = Instant::now();
        let out =
            tokio::task::spawn_blocking(move || procs::run(&mut cmd, None, TIMEOUT)).await??;
        let took_b = t.elapsed();
        anyhow::ensure!(out.success(), "berthctl pull failed: {out:?}");
        berth.push(took_b);
        if std::env::var_os("BERTH_BENCH_VERBOSE").is_some() {
            for line in d.log().lines().filter(|l| {
                ["layer applied", "downloads done", "synced", "image pulled"]
                    .iter()
                    .any(|m| l.contains(m))
            }) {
                eprintln!("    {line}");
            }
        }
        done_dirs.push(d.take_dir());
        drop(d);

        let mut c = Daemon::start_with(DaemonOptions {
            parent: Some(spread.path().to_path_buf()),
            ..crate::containerd::options()?
        })
        .await?;
        sync_fs(c.dir())?;
        let ctr = c.ctr(&c.namespace()).with_timeout(TIMEOUT);
        let r = reference.clone();
        let t = Instant::now();
        let out =
            tokio::task::spawn_blocking(move || ctr.run(["images", "pull", "--plain-http", &r]))
                .await??;
        let took_c = t.elapsed();
        anyhow::ensure!(out.success(), "ctr images pull failed: {out:?}");
        containerd.push(took_c);
        done_dirs.push(c.take_dir());
        drop(c);
        eprintln!(
            "  run {}: berth {:.2} s, containerd {:.2} s",
            i + 1,
            took_b.as_secs_f64(),
            took_c.as_secs_f64()
        );
    }
    drop(done_dirs);
    Ok(vec![Row::timing(
        &format!(
            "cold pull + unpack ({} layers, {:.0} MB gz, {} files)",
            image.layers.len(),
            image.compressed() as f64 / 1e6,
            image.files()
        ),
        &Samples(berth),
        &Samples(containerd),
        Some(0.35),
    )])
}

/// A temp dir whose subdirectories ext4 spreads over the disk like top-level ones
/// (`chattr +T`; where the flag is unknown, a plain temp dir).
fn spread_parent() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-pull-")
        .tempdir()?;
    let marked = Command::new("chattr")
        .arg("+T")
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !marked {
        eprintln!("note: chattr +T failed; runs share the temp dir's block group");
    }
    Ok(dir)
}

/// Writes back the dirty pages of the file system holding `dir` (`syncfs`).
fn sync_fs(dir: &Path) -> anyhow::Result<()> {
    let status = Command::new("sync").arg("-f").arg(dir).status()?;
    anyhow::ensure!(status.success(), "sync -f {}: {status}", dir.display());
    Ok(())
}
