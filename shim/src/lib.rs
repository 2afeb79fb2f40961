//! berth-shim as a library: the shim's own modules (used by the `berth-shim` binary),
//! and the parts berthd calls directly: [`spec_defaults`] (the default hardening of
//! berth's containers and the docker-style security options), [`caps`] (capability
//! names and numbers), [`idshift`] (user-namespace ownership of a snapshot) and
//! [`sealed_exe`] (a sealed in-memory copy of the shim binary to start shims from).
#![doc = include_str!("../README.md")]

pub mod caps;
pub mod idshift;
pub mod sealed_exe;
pub mod spec_defaults;

#[doc(hidden)]
pub mod delete;
#[doc(hidden)]
pub mod error;
#[doc(hidden)]
pub mod io;
#[doc(hidden)]
pub mod observability;
#[doc(hidden)]
pub mod run;
#[doc(hidden)]
pub mod runtime;
#[doc(hidden)]
pub mod server;
#[doc(hidden)]
pub mod service;
#[doc(hidden)]
pub mod start;
#[doc(hidden)]
pub mod sys;
#[doc(hidden)]
pub mod task;

use std::path::PathBuf;

use clap::Args;

/// Options shared by the commands.
#[derive(Args, Clone, Debug)]
pub struct ShimArgs {
    /// Container id.
    #[arg(long)]
    pub id: String,
    /// containerd namespace of the container.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Bundle directory (config.json, rootfs).
    #[arg(long)]
    pub bundle: PathBuf,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    pub log_level: String,
}
