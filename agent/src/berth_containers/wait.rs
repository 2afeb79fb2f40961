//! `wait`: the exit code of a container's next (or current) exit, or its removal.
//! [`wait`] registers the wait and returns a future, so a client can be told that it is
//! waiting before the container is started.

use std::future::Future;
use std::sync::Arc;

use super::model::Status;
use crate::core::Core;
use crate::error::{Error, Result};

/// docker's wait conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// At once when the container does not run, else at its exit.
    NotRunning,
    /// The next exit.
    NextExit,
    /// The removal.
    Removed,
}

/// What a wait ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitResult {
    pub exit_code: i32,
    /// Why the container could not run, when it could not.
    pub error: String,
}

/// Registers a wait on the container `input` names; the returned future resolves when
/// the condition is met.
pub fn wait(
    core: &Arc<Core>,
    ns: &str,
    input: &str,
    condition: WaitCondition,
) -> Result<impl Future<Output = Result<WaitResult>> + Send + 'static> {
    let rec = core.berth.store.resolve(ns, input)?;
    let slot = core.berth.slot(ns, &rec);
    let mut rx = slot.watch.subscribe();
    let start = rx.borrow().clone();
    let not_running = !matches!(
        rec.state.status,
        Status::Running | Status::Paused | Status::Restarting
    );
    let id = rec.id.clone();
    Ok(async move {
        let done = match condition {
            WaitCondition::NotRunning if not_running && !start.running => {
                return Ok(WaitResult {
                    exit_code: start.exit_code,
                    error: start.error,
                });
            }
            WaitCondition::NotRunning | WaitCondition::NextExit => {
                rx.wait_for(|w| w.exits > start.exits || w.removed).await
            }
            WaitCondition::Removed => rx.wait_for(|w| w.removed).await,
        };
        let w =
            done.map_err(|_| Error::Unavailable(format!("container {id}: berthd is stopping")))?;
        Ok(WaitResult {
            exit_code: w.exit_code,
            error: w.error.clone(),
        })
    })
}
