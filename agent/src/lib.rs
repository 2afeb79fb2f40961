//! berthd's core. See docs/architecture.md.
pub mod config;
pub mod error;
pub mod filters;
pub mod identifiers;
pub mod observability;
