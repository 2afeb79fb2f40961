//! `stop` (the stop signal, a grace period, then SIGKILL), `kill` (one signal) and
//! `restart`. A stop or kill from a client counts as a manual stop: the restart policy
//! leaves the container alone (until berthd restarts, for `always`). Waiting happens
//! on the container's exit watch, outside its lock, so the exit handler can run.

use std::sync::Arc;
use std::time::Duration;

use super::model::{Record, Status};
use super::signal::parse_signal;
use super::{Slot, start};
use crate::core::Core;
use crate::error::{Error, Result};

const SIGKILL: u32 = 9;
const SIGTERM: u32 = 15;

/// The signal `stop` sends: the request's, else the container's, else SIGTERM.
fn stop_signal(rec: &Record, requested: Option<&str>) -> Result<u32> {
    match requested.filter(|s| !s.is_empty()) {
        Some(s) => parse_signal(s),
        None if !rec.config.stop_signal.is_empty() => parse_signal(&rec.config.stop_signal),
        None => Ok(SIGTERM),
    }
}

/// Waits until the exit count passes `after`; false on timeout.
async fn wait_exit(slot: &Slot, after: u64, timeout: Option<Duration>) -> bool {
    let mut rx = slot.watch.subscribe();
    let done = rx.wait_for(|w| w.exits > after || w.removed);
    match timeout {
        Some(t) => matches!(tokio::time::timeout(t, done).await, Ok(Ok(_))),
        None => done.await.is_ok(),
    }
}

/// Signals the task; a paused one is thawed after the signal so it can act on it.
async fn signal(core: &Arc<Core>, ns: &str, rec: &Record, sig: u32, all: bool) -> Result<()> {
    core.tasks.kill(ns, &rec.id, "", sig, all).await?;
    if rec.state.status == Status::Paused && sig != SIGKILL {
        core.tasks.resume(ns, &rec.id).await?;
        core.berth.store.update(ns, &rec.id, |r| {
            r.state.status = Status::Running;
            Ok(())
        })?;
    }
    Ok(())
}

/// Marks a manual stop; cancels a pending restart. Returns the record and whether a
/// task runs (false: nothing to signal).
async fn mark_stopped(
    core: &Arc<Core>,
    ns: &str,
    rec: &Record,
    slot: &Slot,
) -> Result<(Record, bool)> {
    let _guard = slot.lock.lock().await;
    let cancelled = slot.cancel_restart();
    let rec = core.berth.store.update(ns, &rec.id, |r| {
        r.manually_stopped = true;
        if r.state.status == Status::Restarting {
            r.state.status = Status::Exited;
        }
        Ok(())
    })?;
    if cancelled {
        slot.watch.send_modify(|w| w.running = false);
    }
    let active = matches!(rec.state.status, Status::Running | Status::Paused);
    Ok((rec, active))
}

/// Stops a container: its stop signal, `timeout` seconds (the container's, else the
/// daemon's default; negative: forever), then SIGKILL. A stopped container is fine.
pub async fn stop(
    core: &Arc<Core>,
    ns: &str,
    input: &str,
    timeout: Option<i32>,
    requested_signal: Option<&str>,
) -> Result<()> {
    let rec = core.berth.store.resolve(ns, input)?;
    let sig = stop_signal(&rec, requested_signal)?;
    let slot = core.berth.slot(ns, &rec);
    let exits = slot.watch.borrow().exits;
    let (rec, active) = mark_stopped(core, ns, &rec, &slot).await?;
    if !active {
        return Ok(());
    }
    let secs = timeout
        .or(rec.config.stop_timeout)
        .unwrap_or(core.berth.config.stop_timeout as i32);
    match signal(core, ns, &rec, sig, false).await {
        Ok(()) => {}
        // Exited meanwhile.
        Err(Error::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let grace = (secs >= 0).then(|| Duration::from_secs(secs as u64));
    if wait_exit(&slot, exits, grace).await {
        return Ok(());
    }
    tracing::info!(container = %rec.id, timeout = secs, "container did not stop in time; killing it");
    match core.tasks.kill(ns, &rec.id, "", SIGKILL, true).await {
        Ok(()) | Err(Error::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    wait_exit(&slot, exits, None).await;
    Ok(())
}

/// Sends a signal (default SIGKILL) to a running container's main process.
pub async fn kill(core: &Arc<Core>, ns: &str, input: &str, requested: Option<&str>) -> Result<()> {
    let rec = core.berth.store.resolve(ns, input)?;
    let sig = match requested.filter(|s| !s.is_empty()) {
        Some(s) => parse_signal(s)?,
        None => SIGKILL,
    };
    if !matches!(rec.state.status, Status::Running | Status::Paused) {
        return Err(Error::FailedPrecondition(format!(
            "cannot kill container {}: container {} is not running",
            input, rec.id
        )));
    }
    let slot = core.berth.slot(ns, &rec);
    let stops = sig == SIGKILL || sig == stop_signal(&rec, None)?;
    let rec = if stops {
        mark_stopped(core, ns, &rec, &slot).await?.0
    } else {
        rec
    };
    signal(core, ns, &rec, sig, sig == SIGKILL)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::FailedPrecondition(format!(
                "cannot kill container {input}: container {} is not running",
                rec.id
            )),
            e => e,
        })
}

/// Stops (if it runs) and starts a container.
pub async fn restart(core: &Arc<Core>, ns: &str, input: &str, timeout: Option<i32>) -> Result<()> {
    let rec = core.berth.store.resolve(ns, input)?;
    stop(core, ns, &rec.id, timeout, None).await?;
    start::start(core, ns, &rec.id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signal_order() {
        let mut r = Record::default();
        assert_eq!(stop_signal(&r, None).unwrap(), 15);
        r.config.stop_signal = "SIGQUIT".into();
        assert_eq!(stop_signal(&r, None).unwrap(), 3);
        assert_eq!(stop_signal(&r, Some("INT")).unwrap(), 2);
        assert_eq!(stop_signal(&r, Some("")).unwrap(), 3);
    }
}
