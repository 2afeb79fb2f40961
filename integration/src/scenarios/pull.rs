//! Cold pull + unpack of the big image ([`super::big_image`]) from a local registry:
//! `berthctl pull` on a fresh berthd against `ctr images pull --plain-http` (which
//! fetches, then unpacks) on a fresh containerd, alternately, a few runs each.
//!
//! Before each timed pull the file system is synced (`sync -f`), so neither side pays
//! for the other's dirty pages. `BERTH_BENCH_VERBOSE=1` prints berthd's per-layer
//! timings (debug log) after each of its runs.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::big_image;
use crate::bench::{Row, Samples};
use crate::{Daemon, Registry, procs};

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
    for i in 0..runs {
        let d = Daemon::start().await?;
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
        drop(d);

        let c = crate::containerd::start().await?;
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
        drop(c);
        eprintln!(
            "  run {}: berth {:.2} s, containerd {:.2} s",
            i + 1,
            took_b.as_secs_f64(),
            took_c.as_secs_f64()
        );
    }
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

/// Writes back the dirty pages of the file system holding `dir` (`syncfs`).
fn sync_fs(dir: &Path) -> anyhow::Result<()> {
    let status = Command::new("sync").arg("-f").arg(dir).status()?;
    anyhow::ensure!(status.success(), "sync -f {}: {status}", dir.display());
    Ok(())
}
