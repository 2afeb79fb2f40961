//! berthd's start: bringing berth's records in line with the tasks that survived
//! (the tasks subsystem has reconnected to their shims already), letting the network
//! subsystem remove what dead containers left, finishing interrupted removals,
//! handling exits that happened while berthd was down, restarting containers whose
//! policy says so, and watching OOM events.

use std::sync::Arc;

use super::exit::{self, should_restart};
use super::model::Status;
use super::{remove, start};
use crate::core::Core;
use crate::error::Error;
use crate::filters::Filter;
use crate::tasks::{self, Exit};

/// What a container's task looks like after the tasks subsystem recovered.
enum Found {
    Running(u32, bool),
    Exited(Exit),
    Missing,
}

async fn task_of(core: &Core, ns: &str, id: &str) -> Found {
    match core.tasks.state(ns, id, "").await {
        Ok(s) => match s.status {
            tasks::Status::Running | tasks::Status::Pausing => Found::Running(s.pid, false),
            tasks::Status::Paused => Found::Running(s.pid, true),
            tasks::Status::Stopped => Found::Exited(Exit {
                pid: s.pid,
                status: s.exit_status,
                at: s.exited_at.unwrap_or_else(super::now),
            }),
            // Created but never started (berthd died in between) or unknown.
            _ => Found::Exited(Exit {
                pid: s.pid,
                status: 125,
                at: super::now(),
            }),
        },
        Err(_) => Found::Missing,
    }
}

/// Reconciles berth's containers after a (re)start of berthd.
pub async fn recover(core: &Arc<Core>) {
    let records = match core.berth.store.all() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "read the container records");
            return;
        }
    };
    let mut found = Vec::new();
    let mut live = Vec::new();
    for (ns, rec) in records {
        let f = task_of(core, &ns, &rec.id).await;
        if matches!(f, Found::Running(..)) {
            live.push((ns.clone(), rec.id.clone()));
        }
        found.push((ns, rec, f));
    }
    match core.networks.reconcile(&live).await {
        Ok(report) => {
            for w in report.warnings {
                tracing::warn!(warning = %w, "network reconcile");
            }
        }
        Err(e) => tracing::error!(error = %e, "network reconcile"),
    }
    for (ns, rec, f) in found {
        let id = rec.id.clone();
        if rec.state.status == Status::Removing {
            if let Err(e) = remove::remove_by_id(core, &ns, &id, true, false).await {
                tracing::warn!(container = %id, error = %e, "finish an interrupted removal");
            }
            continue;
        }
        match f {
            Found::Running(pid, paused) => {
                let _ = core.berth.store.update(&ns, &id, |r| {
                    r.state.status = if paused {
                        Status::Paused
                    } else {
                        Status::Running
                    };
                    r.state.pid = pid;
                    Ok(())
                });
                let slot = core.berth.slot(&ns, &rec);
                slot.watch.send_modify(|w| w.running = true);
                // Output from now on for clients that attach (no replay: see logs).
                match core.tasks.attach(&ns, &id, "", true, true).await {
                    Ok(out) => slot.hub.pump(out),
                    Err(e) => {
                        tracing::warn!(container = %id, error = %e, "subscribe to the output")
                    }
                }
                exit::watch(core.clone(), ns, id);
            }
            Found::Exited(e) => exit::handle(core, &ns, &id, e).await,
            Found::Missing if rec.state.status.is_active() => {
                // Lost with its shim (a reboot): docker reports 255.
                let e = Exit {
                    pid: rec.state.pid,
                    status: tasks::SHIM_DIED_STATUS,
                    at: super::now(),
                };
                exit::handle(core, &ns, &id, e).await;
            }
            Found::Missing if should_restart(&rec, true) => {
                let slot = core.berth.slot(&ns, &rec);
                let _guard = slot.lock.lock().await;
                if let Err(e) = start::start_locked(core, &ns, &id, &slot, false).await {
                    tracing::warn!(container = %id, error = %e, "restart at berthd start");
                }
            }
            Found::Missing => {}
        }
    }
    watch_oom(core.clone());
}

/// Marks containers the kernel's OOM killer hit (the shim reports it as an event).
fn watch_oom(core: Arc<Core>) {
    let mut sub = core.events.subscribe();
    tokio::spawn(async move {
        let filter = match Filter::parse("topic==\"/tasks/oom\"") {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "oom filter");
                return;
            }
        };
        while let Some(env) = sub.next(&filter).await {
            let Some(id) = env.fields.get("container_id") else {
                continue;
            };
            match core.berth.store.update(&env.namespace, id, |r| {
                r.state.oom_killed = true;
                Ok(())
            }) {
                Ok(_) => tracing::info!(container = %id, "container hit its memory limit"),
                Err(Error::Missing(_)) => {}
                Err(e) => tracing::warn!(container = %id, error = %e, "record an OOM kill"),
            }
        }
    });
}
