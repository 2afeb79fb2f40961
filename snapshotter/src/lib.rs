#![doc = include_str!("../README.md")]

pub mod apply;
pub mod diff;
mod digest;
mod error;
pub mod fsutil;
mod metastore;
pub mod mount;
mod namespaced;
mod native;
mod overlay;
mod snapshotter;
mod store;
pub mod testsuite;
mod trash;
mod types;

pub use digest::Digested;
pub use error::{Error, ErrorKind, Result};
pub use namespaced::Namespaced;
pub use native::NativeSnapshotter;
pub use overlay::OverlaySnapshotter;
pub use snapshotter::Snapshotter;
pub use types::{Info, Kind, Labels, Mount, Usage};
