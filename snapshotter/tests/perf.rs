//! Unpack throughput, for manual runs only (never a timing assertion):
//! `BERTH_PERF_LAYER=layer.tar.gz cargo test --release -p berth-snapshotter --test perf -- --ignored --nocapture`

use std::time::Instant;

use berth_snapshotter::apply::{ApplyMode, ApplyOptions, apply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "manual benchmark; set BERTH_PERF_LAYER"]
async fn unpack_throughput() {
    let Ok(layer) = std::env::var("BERTH_PERF_LAYER") else {
        eprintln!("BERTH_PERF_LAYER not set");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = tokio::fs::File::open(&layer).await.unwrap();
    let start = Instant::now();
    let opts = ApplyOptions {
        sync: std::env::var_os("BERTH_PERF_NOSYNC").is_none(),
        ..Default::default()
    };
    let out = apply(tmp.path(), &ApplyMode::Directory, file, &opts)
        .await
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "applied {} ({} MB uncompressed) in {secs:.2}s: {:.0} MB/s",
        out.digest,
        out.size / 1_000_000,
        out.size as f64 / 1e6 / secs
    );
}
