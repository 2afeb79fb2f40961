//! The snapshotter conformance suite, written once and run against every implementation:
//! overlayfs, native, and (later) the gRPC client wrapped in the [`Snapshotter`] trait.
//!
//! A [`Factory`] opens a fresh snapshotter on an empty directory. Run everything with
//! [`run`], or generate one `#[tokio::test]` per case with [`snapshotter_suite!`](crate::snapshotter_suite):
//!
//! ```ignore
//! struct Overlay;
//! #[async_trait::async_trait]
//! impl berth_snapshotter::testsuite::Factory for Overlay {
//!     async fn open(&self, root: &std::path::Path) -> berth_snapshotter::Result<std::sync::Arc<dyn berth_snapshotter::Snapshotter>> {
//!         Ok(std::sync::Arc::new(berth_snapshotter::OverlaySnapshotter::open(root)?))
//!     }
//! }
//! berth_snapshotter::snapshotter_suite!(Overlay);
//! ```
//!
//! The cases mount what the snapshotter returns, so they need root. Failures panic.

mod cases;
pub mod tree;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

pub use cases::*;

use crate::error::Result;
use crate::snapshotter::Snapshotter;

/// Opens snapshotters for the suite.
#[async_trait]
pub trait Factory: Send + Sync {
    /// A snapshotter keeping its data under `root`. Called once per case on an empty
    /// directory, and again on the same directory to check persistence and recovery (the
    /// previous instance has been dropped by then).
    async fn open(&self, root: &Path) -> Result<Arc<dyn Snapshotter>>;

    /// The directory holding one subdirectory per snapshot, where the crash-recovery case
    /// plants orphans. `None` (the default) skips that case, e.g. for a remote client.
    fn snapshots_dir(&self, root: &Path) -> Option<PathBuf> {
        let _ = root;
        None
    }
}

/// Names of all cases, in the order [`run`] runs them.
pub const CASES: &[&str] = &[
    "basic",
    "chains",
    "errors",
    "update",
    "remove_rules",
    "list",
    "usage",
    "visibility",
    "deletions",
    "moves",
    "ownership",
    "view_readonly",
    "cleanup",
    "crash_recovery",
    "many_layers",
    "namespaces",
    "concurrent",
    "unpack",
];

/// Runs every case against `factory`.
pub async fn run(factory: &dyn Factory) {
    basic(factory).await;
    chains(factory).await;
    errors(factory).await;
    update(factory).await;
    remove_rules(factory).await;
    list(factory).await;
    usage(factory).await;
    visibility(factory).await;
    deletions(factory).await;
    moves(factory).await;
    ownership(factory).await;
    view_readonly(factory).await;
    cleanup(factory).await;
    crash_recovery(factory).await;
    many_layers(factory).await;
    namespaces(factory).await;
    concurrent(factory).await;
    unpack(factory).await;
}

/// Generates one multi-threaded `#[tokio::test]` per suite case for the factory expression.
#[macro_export]
macro_rules! snapshotter_suite {
    ($factory:expr) => {
        $crate::snapshotter_suite!(@cases $factory;
            basic, chains, errors, update, remove_rules, list, usage, visibility, deletions,
            moves, ownership, view_readonly, cleanup, crash_recovery, many_layers, namespaces,
            concurrent, unpack);
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::testsuite::$case(&$factory).await;
            }
        )*
    };
}
