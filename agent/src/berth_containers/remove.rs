//! `rm` and `container prune`. A running container is refused unless forced (then it is
//! killed first). Removal takes, in order: the task, the network, containerd's record,
//! the snapshot, the volumes (anonymous ones with `-v`), the log, the runtime files,
//! and finally berth's record and name; waiters of `removed` are woken.

use std::sync::Arc;
use std::time::Duration;

use super::model::Status;
use super::{mounts, network};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::prune::PruneFilter;

/// Removes the container `input` names.
pub async fn remove(
    core: &Arc<Core>,
    ns: &str,
    input: &str,
    force: bool,
    volumes: bool,
) -> Result<()> {
    let rec = core.berth.store.resolve(ns, input)?;
    remove_by_id(core, ns, &rec.id, force, volumes).await
}

/// Removes container `id` (a full ID).
pub(super) async fn remove_by_id(
    core: &Arc<Core>,
    ns: &str,
    id: &str,
    force: bool,
    volumes: bool,
) -> Result<()> {
    let rec = core.berth.store.get(ns, id)?;
    let slot = core.berth.slot(ns, &rec);
    if matches!(rec.state.status, Status::Running | Status::Paused) {
        if !force {
            return Err(Error::FailedPrecondition(format!(
                "cannot remove container \"/{}\": container is running: stop the container \
                 before removing or force remove",
                rec.name
            )));
        }
        super::stop::kill(core, ns, id, Some("KILL"))
            .await
            .or_else(|e| match e {
                Error::FailedPrecondition(_) => Ok(()),
                e => Err(e),
            })?;
        let mut rx = slot.watch.subscribe();
        let stopped = tokio::time::timeout(
            Duration::from_secs(30),
            rx.wait_for(|w| !w.running || w.removed),
        )
        .await;
        if stopped.is_err() {
            return Err(Error::Unavailable(format!(
                "container {}: did not exit after SIGKILL",
                rec.name
            )));
        }
    }
    let _guard = slot.lock.lock().await;
    slot.cancel_restart();
    let rec = match core.berth.store.get(ns, id) {
        Ok(r) => r,
        // Removed meanwhile (--rm).
        Err(Error::Missing(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if matches!(rec.state.status, Status::Running | Status::Paused) {
        return Err(Error::FailedPrecondition(format!(
            "cannot remove container \"/{}\": it was started again meanwhile",
            rec.name
        )));
    }
    core.berth.store.update(ns, id, |r| {
        r.state.status = Status::Removing;
        Ok(())
    })?;
    if core.tasks.get(ns, id).is_ok() {
        match core.tasks.delete(ns, id).await {
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    network::teardown(core, ns, id).await;
    match core.containers.delete(ns, id) {
        Ok(()) | Err(Error::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    match core.snapshots.get(ns, &rec.snapshotter)?.remove(id).await {
        Ok(()) | Err(Error::NotFound(_)) => {}
        Err(e) => tracing::warn!(container = %id, error = %e, "remove the snapshot"),
    }
    mounts::release(
        &core.volumes,
        &super::Record::user_key(ns, id),
        &rec.mounts,
        volumes,
    );
    if let Some(dir) = rec.log_path.parent() {
        let _ = std::fs::remove_dir_all(dir);
        if let Some(nsdir) = dir.parent() {
            let _ = std::fs::remove_dir(nsdir);
        }
    }
    let state = core.berth.state_dir(ns, id);
    let _ = std::fs::remove_dir_all(&state);
    if let Some(nsdir) = state.parent() {
        let _ = std::fs::remove_dir(nsdir);
    }
    core.berth.store.remove(ns, id)?;
    slot.watch.send_modify(|w| {
        w.running = false;
        w.removed = true;
    });
    core.berth.forget(ns, id);
    tracing::info!(namespace = %ns, container = %id, name = %rec.name, "container removed");
    Ok(())
}

/// Removes every stopped container that passes the filters; returns their IDs and the
/// bytes their writable layers took.
pub async fn prune(core: &Arc<Core>, ns: &str, filters: &[String]) -> Result<(Vec<String>, u64)> {
    let passes = PruneFilter::parse(filters)?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for rec in core.berth.store.list(ns)? {
        if !matches!(
            rec.state.status,
            Status::Created | Status::Exited | Status::Dead
        ) || !passes.passes(&rec.config.labels, rec.created)
        {
            continue;
        }
        let size = match core.snapshots.get(ns, &rec.snapshotter) {
            Ok(sn) => sn
                .usage(&rec.id)
                .await
                .map(|u| u.size.max(0) as u64)
                .unwrap_or(0),
            Err(_) => 0,
        };
        match remove_by_id(core, ns, &rec.id, false, false).await {
            Ok(()) => {
                deleted.push(rec.id);
                reclaimed += size;
            }
            Err(Error::FailedPrecondition(_)) | Err(Error::Missing(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((deleted, reclaimed))
}
