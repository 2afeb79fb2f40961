//! cgroup metrics read from the cgroup files, as containerd's
//! `io.containerd.cgroups.v1.Metrics` and `io.containerd.cgroups.v2.Metrics`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_api::io::containerd::cgroups::{v1, v2};

use crate::runtime::cgroups::parse_flat;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn num(path: &Path) -> u64 {
    read(path).trim().parse().unwrap_or(0)
}

/// `max` or a number (v2 limits); `max` is u64::MAX.
fn limit(path: &Path) -> u64 {
    let text = read(path);
    match text.trim() {
        "max" => u64::MAX,
        t => t.parse().unwrap_or(0),
    }
}

/// Nanoseconds per USER_HZ tick (cpuacct.stat counts ticks; USER_HZ is 100 on Linux).
const NANOS_PER_TICK: u64 = 10_000_000;

fn memory_entry(dir: &Path, prefix: &str) -> Option<v1::MemoryEntry> {
    let usage = dir.join(format!("{prefix}.usage_in_bytes"));
    if !usage.exists() {
        return None;
    }
    Some(v1::MemoryEntry {
        limit: num(&dir.join(format!("{prefix}.limit_in_bytes"))),
        usage: num(&usage),
        max: num(&dir.join(format!("{prefix}.max_usage_in_bytes"))),
        failcnt: num(&dir.join(format!("{prefix}.failcnt"))),
    })
}

/// Parses a v1 blkio file (`8:0 Read 4096` lines, `Total` lines skipped).
pub fn parse_blkio(text: &str) -> Vec<v1::BlkIoEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, value) = match f.as_slice() {
                [dev, op, value] => (*dev, *op, *value),
                [dev, value] => (*dev, "", *value),
                _ => return None,
            };
            let (major, minor) = dev.split_once(':')?;
            Some(v1::BlkIoEntry {
                op: op.to_string(),
                device: String::new(),
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// v1 metrics from the per-controller directories (keyed by controller name).
pub fn v1(dirs: &HashMap<String, PathBuf>) -> v1::Metrics {
    let mut m = v1::Metrics::default();
    if let Some(d) = dirs.get("pids") {
        m.pids = Some(v1::PidsStat {
            current: num(&d.join("pids.current")),
            limit: match read(&d.join("pids.max")).trim() {
                "max" | "" => 0,
                t => t.parse().unwrap_or(0),
            },
        });
    }
    let mut cpu = v1::CpuStat::default();
    if let Some(d) = dirs.get("cpuacct") {
        let stat = parse_flat(&read(&d.join("cpuacct.stat")));
        cpu.usage = Some(v1::CpuUsage {
            total: num(&d.join("cpuacct.usage")),
            kernel: stat.get("system").copied().unwrap_or(0) * NANOS_PER_TICK,
            user: stat.get("user").copied().unwrap_or(0) * NANOS_PER_TICK,
            per_cpu: read(&d.join("cpuacct.usage_percpu"))
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect(),
        });
    }
    if let Some(d) = dirs.get("cpu") {
        let stat = parse_flat(&read(&d.join("cpu.stat")));
        cpu.throttling = Some(v1::Throttle {
            periods: stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: stat.get("throttled_time").copied().unwrap_or(0),
        });
    }
    m.cpu = Some(cpu);
    if let Some(d) = dirs.get("memory") {
        let s = parse_flat(&read(&d.join("memory.stat")));
        let g = |k: &str| s.get(k).copied().unwrap_or(0);
        m.memory = Some(v1::MemoryStat {
            cache: g("cache"),
            rss: g("rss"),
            rss_huge: g("rss_huge"),
            mapped_file: g("mapped_file"),
            dirty: g("dirty"),
            writeback: g("writeback"),
            pg_pg_in: g("pgpgin"),
            pg_pg_out: g("pgpgout"),
            pg_fault: g("pgfault"),
            pg_maj_fault: g("pgmajfault"),
            inactive_anon: g("inactive_anon"),
            active_anon: g("active_anon"),
            inactive_file: g("inactive_file"),
            active_file: g("active_file"),
            unevictable: g("unevictable"),
            hierarchical_memory_limit: g("hierarchical_memory_limit"),
            hierarchical_swap_limit: g("hierarchical_memsw_limit"),
            total_cache: g("total_cache"),
            total_rss: g("total_rss"),
            total_rss_huge: g("total_rss_huge"),
            total_mapped_file: g("total_mapped_file"),
            total_dirty: g("total_dirty"),
            total_writeback: g("total_writeback"),
            total_pg_pg_in: g("total_pgpgin"),
            total_pg_pg_out: g("total_pgpgout"),
            total_pg_fault: g("total_pgfault"),
            total_pg_maj_fault: g("total_pgmajfault"),
            total_inactive_anon: g("total_inactive_anon"),
            total_active_anon: g("total_active_anon"),
            total_inactive_file: g("total_inactive_file"),
            total_active_file: g("total_active_file"),
            total_unevictable: g("total_unevictable"),
            usage: memory_entry(d, "memory"),
            swap: memory_entry(d, "memory.memsw"),
            kernel: memory_entry(d, "memory.kmem"),
            kernel_tcp: memory_entry(d, "memory.kmem.tcp"),
        });
        let oom = parse_flat(&read(&d.join("memory.oom_control")));
        m.memory_oom_control = Some(v1::MemoryOomControl {
            oom_kill_disable: oom.get("oom_kill_disable").copied().unwrap_or(0),
            under_oom: oom.get("under_oom").copied().unwrap_or(0),
            oom_kill: oom.get("oom_kill").copied().unwrap_or(0),
        });
    }
    if let Some(d) = dirs.get("blkio") {
        let f = |name: &str| parse_blkio(&read(&d.join(name)));
        let mut b = v1::BlkIoStat {
            io_service_bytes_recursive: f("blkio.io_service_bytes_recursive"),
            io_serviced_recursive: f("blkio.io_serviced_recursive"),
            io_queued_recursive: f("blkio.io_queued_recursive"),
            io_service_time_recursive: f("blkio.io_service_time_recursive"),
            io_wait_time_recursive: f("blkio.io_wait_time_recursive"),
            io_merged_recursive: f("blkio.io_merged_recursive"),
            io_time_recursive: f("blkio.time_recursive"),
            sectors_recursive: f("blkio.sectors_recursive"),
        };
        // Kernels without CFQ/BFQ only have the throttle counters.
        if b.io_service_bytes_recursive.is_empty() {
            b.io_service_bytes_recursive = f("blkio.throttle.io_service_bytes_recursive");
            b.io_serviced_recursive = f("blkio.throttle.io_serviced_recursive");
        }
        m.blkio = Some(b);
    }
    m
}

/// Parses v2 `io.stat` lines (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`).
pub fn parse_io_stat(text: &str) -> Vec<v2::IoEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (major, minor) = it.next()?.split_once(':')?;
            let mut e = v2::IoEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                ..Default::default()
            };
            for kv in it {
                let (k, v) = kv.split_once('=')?;
                let v: u64 = v.parse().unwrap_or(0);
                match k {
                    "rbytes" => e.rbytes = v,
                    "wbytes" => e.wbytes = v,
                    "rios" => e.rios = v,
                    "wios" => e.wios = v,
                    _ => {}
                }
            }
            Some(e)
        })
        .collect()
}

/// v2 metrics from the unified directory.
pub fn v2(dir: &Path) -> v2::Metrics {
    let s = parse_flat(&read(&dir.join("memory.stat")));
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    let cpu = parse_flat(&read(&dir.join("cpu.stat")));
    let c = |k: &str| cpu.get(k).copied().unwrap_or(0);
    let ev = parse_flat(&read(&dir.join("memory.events")));
    let e = |k: &str| ev.get(k).copied().unwrap_or(0);
    v2::Metrics {
        pids: Some(v2::PidsStat {
            current: num(&dir.join("pids.current")),
            limit: match limit(&dir.join("pids.max")) {
                u64::MAX => 0,
                v => v,
            },
        }),
        cpu: Some(v2::CpuStat {
            usage_usec: c("usage_usec"),
            user_usec: c("user_usec"),
            system_usec: c("system_usec"),
            nr_periods: c("nr_periods"),
            nr_throttled: c("nr_throttled"),
            throttled_usec: c("throttled_usec"),
        }),
        memory: Some(v2::MemoryStat {
            anon: g("anon"),
            file: g("file"),
            kernel_stack: g("kernel_stack"),
            slab: g("slab"),
            sock: g("sock"),
            shmem: g("shmem"),
            file_mapped: g("file_mapped"),
            file_dirty: g("file_dirty"),
            file_writeback: g("file_writeback"),
            anon_thp: g("anon_thp"),
            inactive_anon: g("inactive_anon"),
            active_anon: g("active_anon"),
            inactive_file: g("inactive_file"),
            active_file: g("active_file"),
            unevictable: g("unevictable"),
            slab_reclaimable: g("slab_reclaimable"),
            slab_unreclaimable: g("slab_unreclaimable"),
            pgfault: g("pgfault"),
            pgmajfault: g("pgmajfault"),
            workingset_refault: g("workingset_refault"),
            workingset_activate: g("workingset_activate"),
            workingset_nodereclaim: g("workingset_nodereclaim"),
            pgrefill: g("pgrefill"),
            pgscan: g("pgscan"),
            pgsteal: g("pgsteal"),
            pgactivate: g("pgactivate"),
            pgdeactivate: g("pgdeactivate"),
            pglazyfree: g("pglazyfree"),
            pglazyfreed: g("pglazyfreed"),
            thp_fault_alloc: g("thp_fault_alloc"),
            thp_collapse_alloc: g("thp_collapse_alloc"),
            usage: num(&dir.join("memory.current")),
            usage_limit: limit(&dir.join("memory.max")),
            swap_usage: num(&dir.join("memory.swap.current")),
            swap_limit: limit(&dir.join("memory.swap.max")),
        }),
        io: Some(v2::IoStat {
            usage: parse_io_stat(&read(&dir.join("io.stat"))),
        }),
        memory_events: Some(v2::MemoryEvents {
            low: e("low"),
            high: e("high"),
            max: e("max"),
            oom: e("oom"),
            oom_kill: e("oom_kill"),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines() {
        let e = parse_blkio("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 4096)
        );
    }

    #[test]
    fn io_stat_lines() {
        let e = parse_io_stat("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!((e[0].major, e[0].rbytes, e[0].wios), (259, 10, 2));
    }

    #[test]
    fn v1_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let mem = dir.path().join("memory");
        std::fs::create_dir(&mem).unwrap();
        std::fs::write(mem.join("memory.stat"), "cache 5\nrss 7\ntotal_rss 9\n").unwrap();
        std::fs::write(mem.join("memory.usage_in_bytes"), "100\n").unwrap();
        std::fs::write(mem.join("memory.limit_in_bytes"), "200\n").unwrap();
        let pids = dir.path().join("pids");
        std::fs::create_dir(&pids).unwrap();
        std::fs::write(pids.join("pids.current"), "3\n").unwrap();
        std::fs::write(pids.join("pids.max"), "max\n").unwrap();
        let dirs = HashMap::from([("memory".to_string(), mem), ("pids".to_string(), pids)]);
        let m = v1(&dirs);
        let memory = m.memory.unwrap();
        assert_eq!((memory.cache, memory.rss, memory.total_rss), (5, 7, 9));
        assert_eq!(memory.usage.unwrap().limit, 200);
        assert!(memory.swap.is_none());
        assert_eq!(m.pids.unwrap().current, 3);
    }
}
