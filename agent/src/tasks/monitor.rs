//! Watching one shim: its events become berthd's task events, and a shim that goes
//! away without its task being deleted is noticed, reported and cleaned up after.

use std::sync::Arc;

use berth_api::berth::shim::v1::event::Kind as Ev;
use berth_api::containerd::events as ce;
use berth_api::shim::EventStream;

use super::{Task, Tasks, shim};

fn ts(t: Option<prost_types::Timestamp>) -> Option<prost_types::Timestamp> {
    t.or_else(|| Some(berth_api::time::now()))
}

impl Tasks {
    /// Forwards the shim's events until it is gone.
    pub(super) fn monitor(&self, task: Arc<Task>, mut events: EventStream) {
        let tasks = self.clone();
        tokio::spawn(async move {
            loop {
                while let Some(ev) = events.recv().await {
                    if tasks.forward(&task, ev) {
                        // The init process was deleted: the shim exits now.
                        return;
                    }
                }
                if task.is_deleted() {
                    return;
                }
                // The connection ended without a delete: reconnect, or the shim died.
                match shim::connect(&task.socket).await {
                    Ok(client) => match client.subscribe().await {
                        Ok(stream) => {
                            task.set_client(client).await;
                            events = stream;
                        }
                        Err(_) => {
                            tasks.shim_died(&task).await;
                            return;
                        }
                    },
                    Err(_) => {
                        if !task.is_deleted() {
                            tasks.shim_died(&task).await;
                        }
                        return;
                    }
                }
            }
        });
    }

    /// Publishes one shim event; true when it says the task itself was deleted.
    fn forward(&self, task: &Task, ev: berth_api::berth::shim::v1::Event) -> bool {
        let (ns, cid) = (task.ns.as_str(), task.id.clone());
        let Some(kind) = ev.kind else { return false };
        match kind {
            Ev::Started(s) if s.exec_id.is_empty() => self.events.publish(
                ns,
                "/tasks/start",
                &ce::TaskStart {
                    container_id: cid,
                    pid: s.pid,
                },
            ),
            Ev::Started(s) => self.events.publish(
                ns,
                "/tasks/exec-started",
                &ce::TaskExecStarted {
                    container_id: cid,
                    exec_id: s.exec_id,
                    pid: s.pid,
                },
            ),
            Ev::Exited(x) => {
                let id = if x.exec_id.is_empty() {
                    cid.clone()
                } else {
                    x.exec_id
                };
                self.events.publish(
                    ns,
                    "/tasks/exit",
                    &ce::TaskExit {
                        container_id: cid,
                        id,
                        pid: x.pid,
                        exit_status: x.exit_status,
                        exited_at: ts(x.exited_at),
                    },
                );
            }
            Ev::Oom(_) => self
                .events
                .publish(ns, "/tasks/oom", &ce::TaskOom { container_id: cid }),
            Ev::ExecAdded(a) => self.events.publish(
                ns,
                "/tasks/exec-added",
                &ce::TaskExecAdded {
                    container_id: cid,
                    exec_id: a.exec_id,
                },
            ),
            Ev::Paused(_) => {
                self.events
                    .publish(ns, "/tasks/paused", &ce::TaskPaused { container_id: cid })
            }
            Ev::Resumed(_) => {
                self.events
                    .publish(ns, "/tasks/resumed", &ce::TaskResumed { container_id: cid })
            }
            Ev::Deleted(d) => {
                let init = d.exec_id.is_empty();
                let id = if init { cid.clone() } else { d.exec_id };
                self.events.publish(
                    ns,
                    "/tasks/delete",
                    &ce::TaskDelete {
                        container_id: cid,
                        pid: d.pid,
                        exit_status: d.exit_status,
                        exited_at: ts(d.exited_at),
                        id,
                    },
                );
                if init {
                    task.mark_deleted();
                    return true;
                }
            }
        }
        false
    }
}
