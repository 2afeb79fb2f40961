//! `make bench`: berth against containerd + runc on this machine, in one run, printing
//! medians and berth/containerd ratios (the targets are in DESIGN.md).
//!
//! Arguments name the scenarios to run (`run`, `pull`; `make bench ARGS=pull`); none
//! runs them all.

use berth_integration::{bench, scenarios};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let rows = scenarios::selected(&wanted).await?;
    println!();
    bench::print(&rows);
    Ok(())
}
