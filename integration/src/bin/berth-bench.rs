//! `make bench`: berth against containerd + runc on this machine, in one run.
//!
//! Scenarios grow with the features: each starts a private berthd and a private
//! containerd on temp dirs and measures the same client-visible operation on both.
//! Arguments name the scenarios to run (`basic`, `pull`); none runs them all.

use std::time::{Duration, Instant};

use berth_integration::bench::{self, Row, Samples};
use berth_integration::{Daemon, Registry, bench_image, containerd, procs};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let mut rows = Vec::new();
    if run("basic") {
        rows.extend(basic().await?);
    }
    if run("pull") {
        rows.push(cold_pull().await?);
    }
    println!();
    bench::print(&rows);
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// Cold pull + unpack of a 3-layer image of a few hundred MB from a local registry:
/// `berthctl pull` on a fresh berthd against `ctr images pull --plain-http` (which
/// unpacks) on a fresh containerd, a few runs each.
async fn cold_pull() -> anyhow::Result<Row> {
    const RUNS: usize = 3;
    let image = tokio::task::spawn_blocking(bench_image::get).await??;
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
    let mut reference_runs = Vec::new();
    for i in 0..RUNS {
        let d = Daemon::start_with(berth_integration::DaemonOptions {
            log_level: "debug".into(),
            ..Default::default()
        })
        .await?;
        let mut cmd = d.berthctl()?;
        cmd.args(["pull", "-q", &reference]);
        let t = Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            procs::run(&mut cmd, None, Duration::from_secs(600))
        })
        .await??;
        let took = t.elapsed();
        anyhow::ensure!(out.success(), "berthctl pull failed: {out:?}");
        berth.push(took);
        if std::env::var_os("BERTH_BENCH_VERBOSE").is_some() {
            for line in d.log().lines().filter(|l| {
                l.contains("layer applied")
                    || l.contains("downloads done")
                    || l.contains("synced")
                    || l.contains("image pulled")
            }) {
                eprintln!("    {line}");
            }
        }
        drop(d);

        let c = containerd::start().await?;
        let ctr = c.ctr("default").with_timeout(Duration::from_secs(600));
        let r = reference.clone();
        let t = Instant::now();
        let out =
            tokio::task::spawn_blocking(move || ctr.run(["images", "pull", "--plain-http", &r]))
                .await??;
        let took_c = t.elapsed();
        anyhow::ensure!(out.success(), "ctr images pull failed: {out:?}");
        reference_runs.push(took_c);
        drop(c);
        eprintln!(
            "  run {}: berth {:.2} s, containerd {:.2} s",
            i + 1,
            took.as_secs_f64(),
            took_c.as_secs_f64()
        );
    }
    Ok(Row::timing(
        &format!(
            "cold pull + unpack ({} layers, {:.0} MB gz, {} files)",
            image.layers.len(),
            image.compressed() as f64 / 1e6,
            image.files()
        ),
        &Samples(berth),
        &Samples(reference_runs),
        Some(0.35),
    ))
}

/// Client round trip and idle memory.
async fn basic() -> anyhow::Result<Vec<Row>> {
    let berth = Daemon::start().await?;
    let reference = containerd::start().await?;
    let mut rows = Vec::new();

    // A round trip through the client: process start, connect, Version + Introspection.
    let (b, c) = (berth.ctr("default"), reference.ctr("default"));
    let time_version = |ctr: berth_integration::Ctr| {
        Samples::measure(3, 30, move || {
            ctr.ok(["version"]);
        })
    };
    let bv = tokio::task::spawn_blocking({
        let b = b.clone();
        move || time_version(b)
    })
    .await?;
    let cv = tokio::task::spawn_blocking(move || time_version(c)).await?;
    rows.push(Row::timing(
        "ctr version (client round trip)",
        &bv,
        &cv,
        None,
    ));

    // Idle daemon memory.
    let rss = |pid: Option<u32>| -> f64 {
        let pid = pid.expect("daemon running");
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("VmRSS:")?
                        .trim()
                        .strip_suffix("kB")?
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
            })
            .map_or(0.0, |kb| kb / 1024.0)
    };
    rows.push(Row::quantity(
        "daemon RSS, idle",
        "MiB",
        rss(berth.pid()),
        rss(reference.pid()),
        None,
    ));
    Ok(rows)
}
