//! The test kit that drives berth's real binaries, and the end-to-end tests built on it.
#![doc = include_str!("../README.md")]

pub mod bench;
pub mod containerd;
pub mod ctr;
pub mod daemon;
pub mod error;
pub mod fixtures;
pub mod names;
pub mod ports;
pub mod procs;
pub mod registry;
pub mod scenarios;
pub mod world;

pub use ctr::{Ctr, CtrChild, CtrOutput};
pub use daemon::{Daemon, DaemonOptions};
pub use error::Error;
pub use fixtures::{Fixture, Image, Index};
pub use names::TestNames;
pub use registry::Registry;
