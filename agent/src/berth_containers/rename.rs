//! `rename`: a new name, free in the namespace.

use std::sync::Arc;

use super::names;
use crate::core::Core;
use crate::error::Result;

/// Renames the container `input` names to `new`.
pub fn rename(core: &Arc<Core>, ns: &str, input: &str, new: &str) -> Result<()> {
    let new = names::validate(new)?;
    let rec = core.berth.store.resolve(ns, input)?;
    core.berth.store.rename(ns, &rec.id, &new)?;
    tracing::info!(namespace = %ns, container = %rec.id, from = %rec.name, to = %new, "container renamed");
    Ok(())
}
