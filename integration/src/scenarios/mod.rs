//! Benchmark scenarios: each measures one client-visible operation on berthd and on
//! containerd + runc in the same run and returns report rows (see [`crate::bench`]).

pub mod big_image;
pub mod calls;
pub mod pull;
pub mod run;

use crate::bench::Row;
use crate::{Ctr, Daemon, Registry, fixtures};

/// Both daemons, each with the busybox fixture pulled into one namespace.
pub struct Pair {
    pub berth: Daemon,
    pub containerd: Daemon,
    pub berth_ctr: Ctr,
    pub containerd_ctr: Ctr,
    pub image: String,
    _registry: Registry,
}

impl Pair {
    /// Starts both daemons and a registry, and pulls busybox into both.
    pub async fn start() -> anyhow::Result<Pair> {
        let registry = Registry::start()?;
        registry.push(fixtures::busybox(), "busybox:bench")?;
        let image = registry.reference("busybox:bench");
        let berth = Daemon::start().await?;
        let containerd = crate::containerd::start().await?;
        let berth_ctr = berth.ctr(&berth.namespace());
        let containerd_ctr = containerd.ctr(&containerd.namespace());
        for ctr in [&berth_ctr, &containerd_ctr] {
            ctr.ok_async(["images", "pull", "--plain-http", &image])
                .await;
        }
        Ok(Pair {
            berth,
            containerd,
            berth_ctr,
            containerd_ctr,
            image,
            _registry: registry,
        })
    }
}

/// Resident and proportional memory of a process, in MiB, from smaps_rollup.
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("Rss:"), field("Pss:"))
}

/// The names [`selected`] knows: `run` (client round trip, `ctr run --rm`, a detached
/// fleet) and `pull` (cold pull + unpack of a big image).
pub const NAMES: [&str; 2] = ["run", "pull"];

/// Every scenario, in report order.
pub async fn all() -> anyhow::Result<Vec<Row>> {
    selected(&[]).await
}

/// The scenarios named in `names` (see [`NAMES`]; empty: all), in report order. The
/// `run` scenarios are followed by berthd's per-call summary ([`calls`]); with
/// `BERTH_BENCH_LOG=<path>` berthd's whole debug log is kept there.
pub async fn selected(names: &[String]) -> anyhow::Result<Vec<Row>> {
    if let Some(bad) = names.iter().find(|n| !NAMES.contains(&n.as_str())) {
        anyhow::bail!("unknown scenario {bad:?} (known: {})", NAMES.join(", "));
    }
    let wanted = |name: &str| names.is_empty() || names.iter().any(|n| n == name);
    let mut rows = Vec::new();
    if wanted("run") {
        let pair = Pair::start().await?;
        rows.extend(run::client_round_trip(&pair).await?);
        rows.extend(run::run_rm(&pair).await?);
        rows.extend(run::detached_fleet(&pair, 50).await?);
        let log = pair.berth.log();
        if let Some(path) = std::env::var_os("BERTH_BENCH_LOG") {
            std::fs::write(&path, &log)?;
        }
        calls::print(&calls::summarise(&log));
    }
    if wanted("pull") {
        rows.extend(pull::cold_pull(5).await?);
    }
    Ok(rows)
}
