//! The berthd <-> berth-shim protocol: the frame codec both sides share ([`frame`]) and
//! berthd's async client ([`client`], with Attach output in [`output`]). The messages are `crate::berth::shim::v1`;
//! docs/shim-protocol.md describes the wire.

pub mod client;
pub mod frame;
pub mod output;

pub use client::{ClientError, EventStream, ShimClient};
pub use frame::{Frame, FrameBody, FrameError, Method};
pub use output::{OutputEvent, OutputStream};
