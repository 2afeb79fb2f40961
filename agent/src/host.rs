//! Facts about the host berthd runs on (for `berthctl info`).

use std::path::Path;

/// Kernel release, as `uname -r`.
pub fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `PRETTY_NAME` of /etc/os-release.
pub fn os() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "linux".into())
}

/// Online CPUs.
pub fn cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Total memory in bytes, from /proc/meminfo.
pub fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let kb = l
                    .strip_prefix("MemTotal:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim();
                kb.parse::<u64>().ok()
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// The cgroup layout: `v2` (unified), `hybrid` (v1 with a v2 mount), or `v1`.
pub fn cgroup_version() -> &'static str {
    const CGROUP2_MAGIC: i64 = 0x6367_7270;
    let is_cgroup2 = |p: &Path| {
        nix::sys::statfs::statfs(p)
            .map(|s| s.filesystem_type().0 == CGROUP2_MAGIC)
            .unwrap_or(false)
    };
    if is_cgroup2(Path::new("/sys/fs/cgroup")) {
        "v2"
    } else if is_cgroup2(Path::new("/sys/fs/cgroup/unified")) {
        "hybrid"
    } else {
        "v1"
    }
}
