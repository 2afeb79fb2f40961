//! `make bench`: berth against containerd + runc on this machine, in one run, printing
//! medians and berth/containerd ratios (the targets are in DESIGN.md).

use berth_integration::{bench, scenarios};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rows = scenarios::all().await?;
    println!();
    bench::print(&rows);
    Ok(())
}
