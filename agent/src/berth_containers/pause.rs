//! `pause` and `unpause`: the task's cgroup freezer.

use std::sync::Arc;

use super::model::Status;
use crate::core::Core;
use crate::error::{Error, Result};

/// Freezes every process of a running container.
pub async fn pause(core: &Arc<Core>, ns: &str, input: &str) -> Result<()> {
    let rec = core.berth.store.resolve(ns, input)?;
    let slot = core.berth.slot(ns, &rec);
    let _guard = slot.lock.lock().await;
    let rec = core.berth.store.get(ns, &rec.id)?;
    match rec.state.status {
        Status::Running => {}
        Status::Paused => {
            return Err(Error::FailedPrecondition(format!(
                "container {} is already paused",
                rec.name
            )));
        }
        _ => {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                rec.name
            )));
        }
    }
    core.tasks.pause(ns, &rec.id).await?;
    core.berth.store.update(ns, &rec.id, |r| {
        r.state.status = Status::Paused;
        Ok(())
    })?;
    Ok(())
}

/// Thaws a paused container.
pub async fn unpause(core: &Arc<Core>, ns: &str, input: &str) -> Result<()> {
    let rec = core.berth.store.resolve(ns, input)?;
    let slot = core.berth.slot(ns, &rec);
    let _guard = slot.lock.lock().await;
    let rec = core.berth.store.get(ns, &rec.id)?;
    if rec.state.status != Status::Paused {
        return Err(Error::FailedPrecondition(format!(
            "container {} is not paused",
            rec.name
        )));
    }
    core.tasks.resume(ns, &rec.id).await?;
    core.berth.store.update(ns, &rec.id, |r| {
        r.state.status = Status::Running;
        Ok(())
    })?;
    Ok(())
}
