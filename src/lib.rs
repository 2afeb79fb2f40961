//! berth's gRPC API.
//!
//! * `containerd::*`: the containerd 1.6 services and messages, wire-identical so the
//!   stock `ctr` client can drive berthd;
//! * `berth::v1`: berth's own docker-style API; `berth::shim::v1`: berthd <-> shim;
//! * [`any`]: `Any` values with the exact, bare type URLs containerd's clients expect;
//! * [`time`]: timestamps, including Go's zero time that containerd clients send as "unset";
//! * [`client`]: a channel to a daemon listening on a unix socket.

pub mod any;
pub mod client;
pub mod reflect;
pub mod shim;
pub mod time;

#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/_includes.rs"));
}

pub use generated::*;

/// The gRPC metadata key that carries the namespace of a call.
pub const NAMESPACE_HEADER: &str = "containerd-namespace";
/// The gRPC metadata key that carries the lease of a call.
pub const LEASE_HEADER: &str = "containerd-lease";
