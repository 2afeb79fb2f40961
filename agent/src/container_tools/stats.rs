//! `stats`: resource usage of containers from their cgroup metrics (through the task's
//! shim: cgroup v1 or v2), network counters from the container's network namespace
//! (`/proc/<pid>/net/dev`), and CPU percentages from two samples, as docker computes
//! them: the container's CPU time over the host's, times the number of CPUs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_api::io::containerd::cgroups::{v1, v2};

use crate::berth_containers::{Record, Status};
use crate::core::Core;
use crate::host;
use tokio::sync::mpsc;

/// One sample of one container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub id: String,
    pub name: String,
    pub running: bool,
    /// Container CPU time, nanoseconds.
    pub cpu_ns: u64,
    /// Host CPU time (every CPU), nanoseconds.
    pub system_ns: u64,
    pub online_cpus: u32,
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
    /// Unix nanoseconds.
    pub read: i64,
}

/// What `stats` shows for one container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub sample: Sample,
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

/// Host CPU time in nanoseconds, from the `cpu` line of `/proc/stat`.
fn system_ns() -> u64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|v| *v > 0)
        .unwrap_or(100) as u64;
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("cpu "))?;
            Some(
                line.split_whitespace()
                    .skip(1)
                    .take(8)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>(),
            )
        })
        .map(|ticks| ticks * (1_000_000_000 / hz))
        .unwrap_or(0)
}

/// Bytes received and sent on every interface but loopback of `/proc/<pid>/net/dev`.
pub fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut rx = 0;
    let mut tx = 0;
    for line in text.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

/// A limit that means "none" (cgroup v1 writes a page-rounded i64::MAX).
fn unlimited(limit: u64) -> bool {
    limit == 0 || limit >= (1 << 62)
}

fn fill_v1(s: &mut Sample, m: &v1::Metrics) {
    if let Some(cpu) = m.cpu.as_ref().and_then(|c| c.usage.as_ref()) {
        s.cpu_ns = cpu.total;
        if !cpu.per_cpu.is_empty() {
            s.online_cpus = cpu.per_cpu.len() as u32;
        }
    }
    if let Some(mem) = &m.memory {
        let usage = mem.usage.as_ref().map(|u| u.usage).unwrap_or(0);
        let inactive = mem.total_inactive_file;
        s.memory_usage = if inactive < usage {
            usage - inactive
        } else {
            usage
        };
        let limit = mem.usage.as_ref().map(|u| u.limit).unwrap_or(0);
        if !unlimited(limit) {
            s.memory_limit = limit;
        }
    }
    if let Some(b) = &m.blkio {
        for e in &b.io_service_bytes_recursive {
            match e.op.to_ascii_lowercase().as_str() {
                "read" => s.block_read += e.value,
                "write" => s.block_write += e.value,
                _ => {}
            }
        }
    }
    if let Some(p) = &m.pids {
        s.pids = p.current;
    }
}

fn fill_v2(s: &mut Sample, m: &v2::Metrics) {
    if let Some(cpu) = &m.cpu {
        s.cpu_ns = cpu.usage_usec * 1000;
    }
    if let Some(mem) = &m.memory {
        s.memory_usage = if mem.inactive_file < mem.usage {
            mem.usage - mem.inactive_file
        } else {
            mem.usage
        };
        if !unlimited(mem.usage_limit) {
            s.memory_limit = mem.usage_limit;
        }
    }
    if let Some(io) = &m.io {
        for e in &io.usage {
            s.block_read += e.rbytes;
            s.block_write += e.wbytes;
        }
    }
    if let Some(p) = &m.pids {
        s.pids = p.current;
    }
}

/// Samples one container (zeros for one that does not run).
pub async fn sample(core: &Arc<Core>, ns: &str, rec: &Record) -> Sample {
    let mut s = Sample {
        id: rec.id.clone(),
        name: rec.name.clone(),
        online_cpus: host::cpus(),
        read: berth_api::time::to_unix_nanos(std::time::SystemTime::now()),
        ..Default::default()
    };
    let running = matches!(rec.state.status, Status::Running | Status::Paused);
    if !running {
        return s;
    }
    let Ok(metrics) = core.tasks.metrics(ns, &rec.id).await else {
        return s;
    };
    s.running = true;
    s.system_ns = system_ns();
    if let Ok(m) = berth_api::any::unpack::<v1::Metrics>(&metrics) {
        fill_v1(&mut s, &m);
    } else if let Ok(m) = berth_api::any::unpack::<v2::Metrics>(&metrics) {
        fill_v2(&mut s, &m);
    }
    if s.memory_limit == 0 {
        s.memory_limit = host::memory_bytes();
    }
    if let Ok(state) = core.tasks.state(ns, &rec.id, "").await
        && state.pid > 0
        && let Ok(text) = std::fs::read_to_string(format!("/proc/{}/net/dev", state.pid))
    {
        (s.net_rx, s.net_tx) = parse_net_dev(&text);
    }
    s
}

/// The figures shown for `cur`, with `prev` (an earlier sample of the same container)
/// for the CPU percentage.
pub fn compute(prev: Option<&Sample>, cur: &Sample) -> Stats {
    let cpu_percent = match prev {
        Some(p) if p.running && cur.running => {
            let cpu = cur.cpu_ns.saturating_sub(p.cpu_ns) as f64;
            let system = cur.system_ns.saturating_sub(p.system_ns) as f64;
            if system > 0.0 && cpu > 0.0 {
                cpu / system * cur.online_cpus.max(1) as f64 * 100.0
            } else {
                0.0
            }
        }
        _ => 0.0,
    };
    let memory_percent = if cur.memory_limit > 0 {
        cur.memory_usage as f64 / cur.memory_limit as f64 * 100.0
    } else {
        0.0
    };
    Stats {
        sample: cur.clone(),
        cpu_percent,
        memory_percent,
    }
}

/// The containers a stats request covers now: the named ones (those still there), or
/// the running ones of the namespace (every one with `all`).
fn covered(core: &Core, ns: &str, named: &Option<Vec<String>>, all: bool) -> Vec<Record> {
    match named {
        Some(ids) => ids
            .iter()
            .filter_map(|id| core.berth.store.get(ns, id).ok())
            .collect(),
        None => {
            let mut recs: Vec<Record> = core
                .berth
                .store
                .list(ns)
                .unwrap_or_default()
                .into_iter()
                .filter(|r| all || matches!(r.state.status, Status::Running | Status::Paused))
                .collect();
            recs.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
            recs
        }
    }
}

/// Streams the stats of containers: `ids` (names, IDs or prefixes; empty: the running
/// ones, all with `all`), one batch per `interval`, or a single batch when not `stream`.
/// The first batch comes after a short first interval so CPU percentages mean something.
pub fn watch(
    core: &Arc<Core>,
    ns: &str,
    ids: &[String],
    all: bool,
    stream: bool,
    interval: Duration,
) -> crate::error::Result<mpsc::Receiver<crate::error::Result<Vec<Stats>>>> {
    let named = if ids.is_empty() {
        None
    } else {
        Some(
            ids.iter()
                .map(|i| core.berth.store.resolve(ns, i).map(|r| r.id))
                .collect::<crate::error::Result<Vec<_>>>()?,
        )
    };
    let (tx, rx) = mpsc::channel(2);
    let (core, ns) = (core.clone(), ns.to_string());
    tokio::spawn(async move {
        let mut prev: HashMap<String, Sample> = HashMap::new();
        for rec in covered(&core, &ns, &named, all) {
            let s = sample(&core, &ns, &rec).await;
            prev.insert(rec.id.clone(), s);
        }
        let mut wait = interval.min(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = tx.closed() => return,
            }
            wait = interval;
            let mut batch = Vec::new();
            let mut next = HashMap::new();
            for rec in covered(&core, &ns, &named, all) {
                let s = sample(&core, &ns, &rec).await;
                batch.push(compute(prev.get(&rec.id), &s));
                next.insert(rec.id.clone(), s);
            }
            prev = next;
            if tx.send(Ok(batch)).await.is_err() || !stream {
                return;
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_counts_every_interface_but_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
eth0:    1500      10    0    0    0     0          0         0      700       5    0    0    0     0       0          0\n  \
eth1:      10       1    0    0    0     0          0         0       20       1    0    0    0     0       0          0\n";
        assert_eq!(parse_net_dev(text), (1510, 720));
    }

    #[test]
    fn cpu_percent_is_relative_to_the_host() {
        let a = Sample {
            running: true,
            cpu_ns: 1_000,
            system_ns: 10_000,
            online_cpus: 2,
            memory_usage: 50,
            memory_limit: 200,
            ..Default::default()
        };
        let b = Sample {
            cpu_ns: 2_000,
            system_ns: 20_000,
            ..a.clone()
        };
        let s = compute(Some(&a), &b);
        assert!((s.cpu_percent - 20.0).abs() < 1e-9, "{}", s.cpu_percent);
        assert!((s.memory_percent - 25.0).abs() < 1e-9);
        assert_eq!(compute(None, &b).cpu_percent, 0.0);
        assert!(unlimited(9_223_372_036_854_771_712));
        assert!(!unlimited(64 << 20));
    }
}
