//! Running containers: `ctr run --rm IMG true`, and a fleet of detached containers
//! started one after another with the memory of shims and daemons while they run.

use std::time::Instant;

use super::{Pair, memory_mib};
use crate::Ctr;
use crate::bench::{Row, Samples};

/// `ctr version`: process start, connect, two calls. The floor of every ctr scenario.
pub async fn client_round_trip(p: &Pair) -> anyhow::Result<Vec<Row>> {
    let measure = |ctr: Ctr| {
        tokio::task::spawn_blocking(move || {
            Samples::measure(3, 30, || {
                ctr.ok(["version"]);
            })
        })
    };
    let b = measure(p.berth_ctr.clone()).await?;
    let c = measure(p.containerd_ctr.clone()).await?;
    Ok(vec![Row::timing(
        "ctr version (client round trip)",
        &b,
        &c,
        None,
    )])
}

/// `ctr run --rm IMG ID true`, end to end through the client.
pub async fn run_rm(p: &Pair) -> anyhow::Result<Vec<Row>> {
    let measure = |ctr: Ctr, image: String, tag: &'static str| {
        tokio::task::spawn_blocking(move || {
            let mut n = 0;
            Samples::measure(3, 20, || {
                n += 1;
                ctr.ok(["run", "--rm", &image, &format!("{tag}{n}"), "true"]);
            })
        })
    };
    let b = measure(p.berth_ctr.clone(), p.image.clone(), "rb").await?;
    let c = measure(p.containerd_ctr.clone(), p.image.clone(), "rc").await?;
    Ok(vec![Row::timing(
        "ctr run --rm busybox true",
        &b,
        &c,
        Some(0.25),
    )])
}

/// Starts `n` detached `sleep` containers one after another, measures the total time,
/// the shim memory per container and the daemon's memory with them running, then
/// removes them.
pub async fn detached_fleet(p: &Pair, n: usize) -> anyhow::Result<Vec<Row>> {
    struct Fleet {
        elapsed: f64,
        shim_rss: f64,
        shim_pss: f64,
        daemon_rss: f64,
    }
    let run = |ctr: Ctr,
               image: String,
               daemon_pid: u32,
               dir: std::path::PathBuf,
               shim_name: &'static str| {
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            for i in 0..n {
                ctr.ok(["run", "-d", &image, &format!("fleet{i}"), "sleep", "100000"]);
            }
            let elapsed = started.elapsed().as_secs_f64();
            // Both daemons' shims name the daemon's temp dir on their command line.
            let shims: Vec<u32> = crate::procs::processes_under(&dir)
                .into_iter()
                .filter(|pid| cmdline(*pid).contains(shim_name))
                .collect();
            let (mut rss, mut pss) = (0.0, 0.0);
            for pid in &shims {
                let (r, s) = memory_mib(*pid);
                rss += r;
                pss += s;
            }
            let count = shims.len().max(1) as f64;
            let daemon_rss = memory_mib(daemon_pid).0;
            for i in 0..n {
                let id = format!("fleet{i}");
                let _ = ctr.run(["tasks", "kill", "-s", "SIGKILL", &id]);
            }
            for i in 0..n {
                let id = format!("fleet{i}");
                for _ in 0..100 {
                    if ctr
                        .run(["tasks", "delete", &id])
                        .map(|o| o.status.success())
                        .unwrap_or(false)
                    {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                let _ = ctr.run(["containers", "rm", &id]);
            }
            Fleet {
                elapsed,
                shim_rss: rss / count,
                shim_pss: pss / count,
                daemon_rss,
            }
        })
    };
    let b = run(
        p.berth_ctr.clone(),
        p.image.clone(),
        p.berth.pid().unwrap_or(0),
        p.berth.dir().to_path_buf(),
        "berth-shim",
    )
    .await?;
    let c = run(
        p.containerd_ctr.clone(),
        p.image.clone(),
        p.containerd.pid().unwrap_or(0),
        p.containerd.dir().to_path_buf(),
        "containerd-shim",
    )
    .await?;
    Ok(vec![
        Row::quantity(
            &format!("{n} detached containers, one after another"),
            "s",
            b.elapsed,
            c.elapsed,
            Some(0.25),
        ),
        Row::quantity(
            "shim RSS per container (target <= 3 MiB)",
            "MiB",
            b.shim_rss,
            c.shim_rss,
            None,
        ),
        Row::quantity(
            "shim PSS per container (target <= 0.5 MiB)",
            "MiB",
            b.shim_pss,
            c.shim_pss,
            None,
        ),
        Row::quantity(
            &format!("daemon RSS with {n} running (target <= 15 MiB)"),
            "MiB",
            b.daemon_rss,
            c.daemon_rss,
            None,
        ),
    ])
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}
