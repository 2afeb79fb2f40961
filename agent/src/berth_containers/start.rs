//! `start`: runs a created or exited container. The root is mounted read-only for a
//! moment to resolve the user from the image's passwd and group files and to fill empty
//! volumes from the image; the network namespace is pinned and attached; the spec is
//! rewritten into containerd's record; the task is created with the json log and
//! started; an exit watcher takes over. A failure leaves the container exited with
//! docker's code (125, 126 or 127) and its error.

use std::sync::Arc;

use berth_snapshotter::mount::{TempMount, read_only};

use super::model::{Record, Status};
use super::spec::{self, SpecInput};
use super::user::{self, ExecUser};
use super::userns;
use super::{Slot, create, exit, network, now, rootpath, start_failure_code};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::tasks::{CreateTask, Stdio};

/// Starts the container `input` names (a no-op when it runs).
pub async fn start(core: &Arc<Core>, ns: &str, input: &str) -> Result<()> {
    let rec = core.berth.store.resolve(ns, input)?;
    let slot = core.berth.slot(ns, &rec);
    let guard = slot.lock.lock().await;
    let started = start_locked(core, ns, &rec.id, &slot, true).await;
    drop(guard);
    if started.is_err()
        && rec.host_config.auto_remove
        && let Err(e) = super::remove::remove_by_id(core, ns, &rec.id, false, true).await
    {
        tracing::warn!(container = %rec.id, error = %e, "remove a container that failed to start (--rm)");
    }
    started
}

/// Starts a container whose slot lock the caller holds. `by_user`: a start asked for
/// by a client (resets the restart count and back-off), not by the restart policy.
pub(super) async fn start_locked(
    core: &Arc<Core>,
    ns: &str,
    id: &str,
    slot: &Arc<Slot>,
    by_user: bool,
) -> Result<()> {
    let rec = core.berth.store.get(ns, id)?;
    match rec.state.status {
        Status::Running => return Ok(()),
        Status::Paused => {
            return Err(Error::FailedPrecondition(format!(
                "cannot start a paused container {}, try unpause instead",
                rec.name
            )));
        }
        Status::Removing | Status::Dead => {
            return Err(Error::FailedPrecondition(format!(
                "container {} is {}: it cannot be started",
                rec.name,
                rec.state.status.as_str()
            )));
        }
        Status::Created | Status::Exited | Status::Restarting => {}
    }
    slot.cancel_restart();
    if by_user {
        *slot.backoff_ms.lock().unwrap_or_else(|e| e.into_inner()) = 0;
    }
    // A task an earlier run left (exited, not deleted).
    if core.tasks.get(ns, id).is_ok()
        && let Err(e) = core.tasks.delete(ns, id).await
    {
        tracing::warn!(container = %id, error = %e, "delete the previous task");
    }
    match launch(core, ns, &rec, slot).await {
        Ok(pid) => {
            let started = core.berth.store.update(ns, id, |r| {
                r.state.status = Status::Running;
                r.state.pid = pid;
                r.state.started_at = now();
                r.state.finished_at = 0;
                r.state.exit_code = 0;
                r.state.error.clear();
                r.state.oom_killed = false;
                r.has_been_started = true;
                r.manually_stopped = false;
                if by_user {
                    r.restart_count = 0;
                }
                Ok(())
            })?;
            slot.watch.send_modify(|w| {
                w.running = true;
                w.error.clear();
            });
            tracing::info!(namespace = %ns, container = %id, name = %started.name, pid, "container started");
            exit::watch(core.clone(), ns.to_string(), id.to_string());
            Ok(())
        }
        Err(e) => {
            let message = e.to_string();
            let code = start_failure_code(&message);
            let _ = core.berth.store.update(ns, id, |r| {
                if r.state.status == Status::Restarting || r.has_been_started {
                    r.state.status = Status::Exited;
                }
                r.state.exit_code = code;
                r.state.error = message.clone();
                r.state.pid = 0;
                r.state.finished_at = now();
                Ok(())
            });
            slot.watch.send_modify(|w| {
                w.running = false;
                w.exits += 1;
                w.exit_code = code;
                w.error = message;
            });
            Err(e)
        }
    }
}

/// Reads the user and fills empty volumes, with the root mounted read-only.
async fn prepare_root(core: &Arc<Core>, ns: &str, rec: &Record) -> Result<ExecUser> {
    let mounts = core
        .snapshots
        .get(ns, &rec.snapshotter)?
        .mounts(&rec.id)
        .await?;
    let scratch = core.berth.state_dir(ns, &rec.id);
    let vols = core.volumes.clone();
    let userns = core.berth.userns_for(&rec.host_config);
    let rec = rec.clone();
    tokio::task::spawn_blocking(move || -> Result<ExecUser> {
        std::fs::create_dir_all(&scratch)
            .map_err(|e| Error::io(format!("create {}", scratch.display()), e))?;
        let root = TempMount::new(&read_only(&mounts), Some(&scratch))?;
        let user = user::resolve_in_root(root.path(), &rec.config.user, &rec.host_config.group_add)
            .map_err(|e| Error::InvalidArgument(format!("container {}: {e}", rec.name)));
        for m in rec
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" && !m.options.split(',').any(|o| o == "nocopy"))
        {
            let source = rootpath::resolve(root.path(), &m.destination)
                .map_err(|e| Error::io(format!("resolve {} in the image", m.destination), e))?;
            vols.populate(&m.name, &source)?;
        }
        if let Some((uids, gids)) = userns {
            for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
                userns::own_volume(std::path::Path::new(&m.source), &uids, &gids)?;
            }
        }
        root.close()?;
        user
    })
    .await
    .map_err(|e| Error::Internal(format!("prepare the root of a container: {e}")))?
}

/// Network, spec, task: returns the pid of the started process.
async fn launch(core: &Arc<Core>, ns: &str, rec: &Record, slot: &Slot) -> Result<u32> {
    let user = prepare_root(core, ns, rec).await?;
    let net = network::setup(core, ns, rec).await?;
    let (log_max_size, log_max_files) = core.berth.log_rotation(rec);
    let run = async {
        let spec = spec::build(&SpecInput {
            record: rec,
            user: &user,
            cgroups_path: core.berth.cgroups_path(ns, &rec.id),
            netns: net.netns.clone(),
            files: Some(&net.files),
            swap_accounting: create::swap_accounting(),
            cgroup_ns: crate::host::cgroup_version() == "v2",
            userns: core.berth.userns_for(&rec.host_config),
        })?;
        let mut c = core.containers.get(ns, &rec.id)?;
        if let Some(s) = c.spec.as_mut() {
            s.value = spec;
        }
        core.containers.update(ns, c, &["spec".to_string()])?;
        core.tasks
            .create(
                ns,
                CreateTask {
                    container_id: rec.id.clone(),
                    rootfs: Vec::new(),
                    stdio: Stdio {
                        terminal: rec.config.tty,
                        stdin_stream: rec.config.open_stdin,
                        output_stream: true,
                        ..Default::default()
                    },
                    no_pivot: false,
                    log_path: Some(rec.log_path.clone()),
                    log_max_size,
                    log_max_files,
                },
            )
            .await?;
        // Subscribe before the process runs: attached clients see its first byte.
        match core.tasks.attach(ns, &rec.id, "", true, true).await {
            Ok(out) => slot.hub.pump(out),
            Err(e) => {
                let _ = core.tasks.delete(ns, &rec.id).await;
                return Err(e);
            }
        }
        match core.tasks.start(ns, &rec.id, "").await {
            Ok(pid) => Ok(pid),
            Err(e) => {
                if let Err(d) = core.tasks.delete(ns, &rec.id).await {
                    tracing::warn!(container = %rec.id, error = %d, "delete a task that failed to start");
                }
                Err(e)
            }
        }
    }
    .await;
    if run.is_err() {
        network::teardown(core, ns, &rec.id).await;
    }
    run
}
