//! berthd's core: configuration, metadata, events, and the gRPC services over them.
//! See docs/architecture.md for the picture.

pub mod berth_containers;
pub mod config;
pub mod container_tools;
pub mod content;
pub mod core;
pub mod daemon;
pub mod diff;
pub mod distribution;
pub mod error;
pub mod events;
pub mod filters;
pub mod gc;
pub mod host;
pub mod identifiers;
pub mod images;
pub mod journal;
pub mod labels;
pub mod metadata;
pub mod namespaces;
pub mod network;
pub mod objects;
pub mod observability;
pub mod plugins;
pub mod prune;
pub mod services;
pub mod snapshots;
pub mod tasks;
pub mod volumes;

/// berth's version, as reported by the Version service.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The source revision berthd was built from, when the build knew it.
pub const REVISION: &str = match option_env!("BERTH_REVISION") {
    Some(r) => r,
    None => "unknown",
};
pub mod containers;
