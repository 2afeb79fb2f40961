//! berth's end-to-end test kit: everything a test needs to drive the real binaries.
//!
//! * [`daemon`]: starts the real `berthd` on a temporary root, state dir and socket, and
//!   stops it (and whatever it started) when dropped;
//! * [`containerd`]: the same harness running Debian's containerd, the reference;
//! * [`ctr`]: runs Debian's real `ctr` against a socket, with a timeout;
//! * [`fixtures`]: deterministic OCI / Docker images built from Debian's `busybox-static`,
//!   written as OCI layouts, OCI archives and docker archives;
//! * [`registry`]: Debian's `docker-registry` on a free loopback port, and pushing fixtures;
//! * [`names`], [`ports`]: unique names and free loopback ports per test;
//! * [`procs`]: running and stopping processes by PID, and cleaning up after them.

pub mod containerd;
pub mod ctr;
pub mod daemon;
pub mod error;
pub mod fixtures;
pub mod names;
pub mod ports;
pub mod procs;
pub mod registry;

pub use ctr::{Ctr, CtrChild, CtrOutput};
pub use daemon::{Daemon, DaemonOptions};
pub use error::Error;
pub use fixtures::{Fixture, Image, Index};
pub use names::TestNames;
pub use registry::Registry;
