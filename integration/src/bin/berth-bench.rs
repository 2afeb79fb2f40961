//! `make bench`: berth against containerd + runc on this machine, in one run.
//!
//! Scenarios grow with the features: each starts a private berthd and a private
//! containerd on temp dirs and measures the same client-visible operation on both.

use std::time::Duration;

use berth_integration::bench::{self, Row, Samples};
use berth_integration::{Daemon, containerd};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
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

    println!();
    bench::print(&rows);
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
