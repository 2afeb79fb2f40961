//! What happens when a container's process exits: the exit is recorded (code, time,
//! OOM), the task deleted, the network released, waiters woken; then `--rm` removes
//! the container, or the restart policy schedules a start after docker's back-off
//! (100 ms doubling to 1 min, back to 100 ms after a run of 10 s or more).

use std::sync::Arc;
use std::time::Duration;

use super::model::{Policy, Record, Status};
use super::{Slot, network, remove, start};
use crate::core::Core;
use crate::error::Error;
use crate::tasks::Exit;

const FIRST_BACKOFF_MS: u64 = 100;
const MAX_BACKOFF_MS: u64 = 60_000;
/// A run at least this long resets the back-off.
const STABLE_RUN: Duration = Duration::from_secs(10);

/// Watches the task of a running container until it exits, then handles the exit.
pub(super) fn watch(core: Arc<Core>, ns: String, id: String) {
    tokio::spawn(async move {
        let exit = loop {
            match core.tasks.wait(&ns, &id, "").await {
                Ok(exit) => break exit,
                // The task went away without us (`ctr tasks delete`): it is not running.
                Err(Error::NotFound(_)) => {
                    break Exit {
                        pid: 0,
                        status: crate::tasks::SHIM_DIED_STATUS,
                        at: super::now(),
                    };
                }
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "wait for the task; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        handle(&core, &ns, &id, exit).await;
    });
}

/// Records an exit and applies `--rm` or the restart policy.
pub(super) async fn handle(core: &Arc<Core>, ns: &str, id: &str, exit: Exit) {
    let Ok(rec) = core.berth.store.get(ns, id) else {
        return;
    };
    let slot = core.berth.slot(ns, &rec);
    let guard = slot.lock.lock().await;
    match core.tasks.delete(ns, id).await {
        Ok(_) | Err(Error::NotFound(_)) => {}
        Err(e) => tracing::warn!(container = %id, error = %e, "delete the exited task"),
    }
    network::teardown(core, ns, id).await;
    let code = exit.status as i32;
    let rec = match core.berth.store.update(ns, id, |r| {
        r.state.status = Status::Exited;
        r.state.exit_code = code;
        r.state.finished_at = exit.at;
        r.state.pid = 0;
        Ok(())
    }) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "record the exit");
            return;
        }
    };
    tracing::info!(namespace = %ns, container = %id, name = %rec.name, code, oom = rec.state.oom_killed, "container exited");
    if rec.host_config.auto_remove {
        notify(&slot, code, false);
        drop(guard);
        if let Err(e) = remove::remove_by_id(core, ns, id, false, true).await {
            tracing::warn!(container = %id, error = %e, "remove the container (--rm)");
        }
        return;
    }
    let restart = should_restart(&rec, false);
    notify(&slot, code, restart);
    if restart {
        schedule(core, ns, &rec, &slot);
    }
    drop(guard);
}

fn notify(slot: &Slot, code: i32, restarting: bool) {
    slot.watch.send_modify(|w| {
        w.running = restarting;
        w.exits += 1;
        w.exit_code = code;
    });
}

/// Whether the restart policy restarts the container after its last exit. `at_boot`:
/// berthd just started (then `always` ignores a manual stop, as docker does).
pub(super) fn should_restart(rec: &Record, at_boot: bool) -> bool {
    if !rec.has_been_started {
        return false;
    }
    match rec.host_config.restart_policy.policy() {
        Policy::No => false,
        Policy::Always => at_boot || !rec.manually_stopped,
        Policy::UnlessStopped => !rec.manually_stopped,
        Policy::OnFailure(max) => {
            !rec.manually_stopped
                && rec.state.exit_code != 0
                && (max == 0 || (rec.restart_count as i64) < max as i64)
        }
    }
}

fn next_backoff(slot: &Slot, ran: Duration) -> u64 {
    let mut b = slot.backoff_ms.lock().unwrap_or_else(|e| e.into_inner());
    *b = if *b == 0 || ran >= STABLE_RUN {
        FIRST_BACKOFF_MS
    } else {
        (*b * 2).min(MAX_BACKOFF_MS)
    };
    *b
}

/// Marks the container restarting and starts it after the back-off. The caller holds
/// the slot lock.
pub(super) fn schedule(core: &Arc<Core>, ns: &str, rec: &Record, slot: &Arc<Slot>) {
    let ran = Duration::from_nanos((rec.state.finished_at - rec.state.started_at).max(0) as u64);
    let delay = next_backoff(slot, ran);
    if let Err(e) = core.berth.store.update(ns, &rec.id, |r| {
        r.state.status = Status::Restarting;
        r.restart_count += 1;
        Ok(())
    }) {
        tracing::warn!(container = %rec.id, error = %e, "record the restart");
        return;
    }
    tracing::info!(namespace = %ns, container = %rec.id, delay_ms = delay, "restarting by policy");
    let (core2, ns2, id2, slot2) = (core.clone(), ns.to_string(), rec.id.clone(), slot.clone());
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let _guard = slot2.lock.lock().await;
        // This task is running: it is no longer pending.
        slot2
            .pending_restart
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match core2.berth.store.get(&ns2, &id2) {
            Ok(r) if r.state.status == Status::Restarting => {}
            _ => return,
        }
        if let Err(e) = start::start_locked(&core2, &ns2, &id2, &slot2, false).await {
            tracing::warn!(container = %id2, error = %e, "restart by policy failed");
        }
    });
    *slot
        .pending_restart
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::berth_containers::model::RestartPolicy;

    fn rec(policy: &str, code: i32, count: u32, manual: bool) -> Record {
        let mut r = Record {
            has_been_started: true,
            restart_count: count,
            manually_stopped: manual,
            ..Default::default()
        };
        r.host_config.restart_policy = RestartPolicy::parse(policy, 0).unwrap();
        r.state.exit_code = code;
        r
    }

    #[test]
    fn policies() {
        assert!(!should_restart(&rec("no", 1, 0, false), false));
        assert!(should_restart(&rec("always", 0, 5, false), false));
        assert!(!should_restart(&rec("always", 0, 0, true), false));
        assert!(should_restart(&rec("always", 0, 0, true), true));
        assert!(should_restart(&rec("unless-stopped", 0, 0, false), true));
        assert!(!should_restart(&rec("unless-stopped", 0, 0, true), true));
        assert!(should_restart(&rec("on-failure", 1, 100, false), false));
        assert!(!should_restart(&rec("on-failure", 0, 0, false), false));
        assert!(should_restart(&rec("on-failure:2", 1, 1, false), false));
        assert!(!should_restart(&rec("on-failure:2", 1, 2, false), false));
        let mut never = rec("always", 0, 0, false);
        never.has_been_started = false;
        assert!(!should_restart(&never, true));
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let slot = Slot {
            lock: tokio::sync::Mutex::new(()),
            watch: tokio::sync::watch::Sender::new(Default::default()),
            pending_restart: Default::default(),
            backoff_ms: Default::default(),
            hub: Default::default(),
        };
        let quick = Duration::from_millis(10);
        assert_eq!(next_backoff(&slot, quick), 100);
        assert_eq!(next_backoff(&slot, quick), 200);
        assert_eq!(next_backoff(&slot, quick), 400);
        assert_eq!(next_backoff(&slot, Duration::from_secs(11)), 100);
        for _ in 0..20 {
            next_backoff(&slot, quick);
        }
        assert_eq!(next_backoff(&slot, quick), 60_000);
    }
}
