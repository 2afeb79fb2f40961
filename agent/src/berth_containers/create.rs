//! `create`: a new container from an image. The flags are checked first, the image's
//! config merged in, mounts resolved (volumes created and marked in use), the snapshot
//! prepared on the image's top layer (unpacking it first when needed), then the
//! containerd record (with a first spec) and berth's record are written. Whatever was
//! made is undone when a later step fails.

use std::sync::Arc;

use super::image::{self, command, merge};
use super::model::{ContainerConfig, HostConfig, Record, State};
use super::spec::{self, NetNs, SpecInput};
use super::user::ExecUser;
use super::{mounts, names, network, now, userns};
use crate::containers::{Container, Runtime};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::images::lease::OpLease;
use crate::images::progress::Progress;
use crate::images::unpack;
use crate::metadata::AnyRecord;

/// The runtime name containerd's record carries (what `ctr` shows).
pub const RUNTIME: &str = "io.containerd.runc.v2";

/// Smallest memory limit docker accepts.
const MIN_MEMORY: i64 = 6 << 20;

/// What `create` is asked for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Empty: a generated name.
    pub name: String,
    /// As given; the image's config is merged in.
    pub config: ContainerConfig,
    /// The request gave an entrypoint (possibly empty).
    pub entrypoint_set: bool,
    pub host_config: HostConfig,
}

/// A created container.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

/// Whether the host accounts swap, so `--memory-swap` can be applied.
pub fn swap_accounting() -> bool {
    match crate::host::cgroup_version() {
        "v2" => true,
        _ => std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists(),
    }
}

fn check_host_config(hc: &HostConfig, warnings: &mut Vec<String>) -> Result<()> {
    if hc.auto_remove && !matches!(hc.restart_policy.name.as_str(), "" | "no") {
        return Err(Error::InvalidArgument(
            "conflicting options: --restart and --rm".into(),
        ));
    }
    if hc.init {
        return Err(Error::Unimplemented(
            "--init: berth has no init process to add yet".into(),
        ));
    }
    for (k, v) in &hc.log_config.config {
        match k.as_str() {
            "max-size" => {
                crate::config::parse_bytes(v)
                    .map_err(|e| Error::InvalidArgument(format!("--log-opt max-size: {e}")))?;
            }
            "max-file" => {
                if !v.parse::<u32>().is_ok_and(|n| n >= 1) {
                    return Err(Error::InvalidArgument(format!(
                        "--log-opt max-file={v}: expected a number of files, at least 1"
                    )));
                }
            }
            other => {
                return Err(Error::Unimplemented(format!(
                    "log option {other:?}: berth's json log takes max-size and max-file"
                )));
            }
        }
    }
    if hc.memory != 0 && hc.memory < MIN_MEMORY {
        return Err(Error::InvalidArgument(
            "minimum memory limit allowed is 6MB".into(),
        ));
    }
    if hc.memory_swap > 0 && hc.memory > 0 && hc.memory_swap < hc.memory {
        return Err(Error::InvalidArgument(
            "minimum memoryswap limit should be larger than memory limit, see usage".into(),
        ));
    }
    if hc.memory_swap != 0 && hc.memory == 0 {
        return Err(Error::InvalidArgument(
            "you should always set the memory limit when using memoryswap limit, see usage".into(),
        ));
    }
    if hc.nano_cpus < 0 || hc.cpu_shares < 0 {
        return Err(Error::InvalidArgument(
            "--cpus and --cpu-shares must not be negative".into(),
        ));
    }
    if hc.memory > 0 && !swap_accounting() {
        warnings.push(
            "Your kernel does not support swap limit capabilities or the cgroup is not mounted. \
             Memory limited without swap."
                .into(),
        );
    }
    spec::security_options(hc)?;
    Ok(())
}

/// Creates a container.
pub async fn create(core: &Arc<Core>, ns: &str, req: CreateRequest) -> Result<Created> {
    crate::identifiers::validate("namespace", ns)?;
    let berth = &core.berth;
    let name = if req.name.is_empty() {
        names::generate(&berth.store, ns)?
    } else {
        names::validate(&req.name)?
    };
    if berth.store.name_taken(ns, &name)? {
        let holder = berth.store.resolve(ns, &name)?;
        return Err(Error::AlreadyExists(format!(
            "container name \"/{name}\" is already in use by container \"{}\"; remove (or rename) \
             that container to be able to reuse that name",
            holder.id
        )));
    }
    let mut warnings = Vec::new();
    let mut hc = req.host_config;
    if hc.restart_policy.name.is_empty() {
        hc.restart_policy.name = "no".into();
    }
    if hc.log_config.kind.is_empty() {
        hc.log_config.kind = "json-file".into();
    }
    check_host_config(&hc, &mut warnings)?;

    let found = image::find(core, ns, &req.config.image).await?;
    let mut config = req.config;
    if let Some(run) = &found.image.config.config {
        merge(&mut config, run, req.entrypoint_set);
    }
    let (path, args) = command(&config)?;
    let exposed: Vec<String> = config.exposed_ports.keys().cloned().collect();
    warnings.extend(network::validate(core, ns, &hc, &exposed)?);
    if !matches!(hc.userns_mode.as_str(), "" | "host") {
        return Err(Error::InvalidArgument(format!(
            "--userns={}: the only user namespace mode is \"host\"",
            hc.userns_mode
        )));
    }
    if berth.userns_for(&hc).is_some() {
        if hc.privileged {
            return Err(Error::InvalidArgument(
                "--privileged is incompatible with user namespaces (berthd runs with userns_remap)"
                    .into(),
            ));
        }
        if network::mode(&hc) == crate::network::HOST {
            return Err(Error::InvalidArgument(
                "cannot share the host's network namespace when user namespaces are enabled \
                 (berthd runs with userns_remap)"
                    .into(),
            ));
        }
    }

    let id = names::new_id();
    if config.hostname.is_empty() {
        config.hostname = match network::joined(&hc) {
            Some(target) => berth.store.resolve(ns, target)?.config.hostname,
            None if network::mode(&hc) == crate::network::HOST => nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            None => id[..12].to_string(),
        };
    }
    let user_key = Record::user_key(ns, &id);
    let image_volumes: Vec<String> = config.volumes.keys().cloned().collect();
    let vols = core.volumes.clone();
    let (binds, tmpfs, uk) = (hc.binds.clone(), hc.tmpfs.clone(), user_key.clone());
    let mount_points = tokio::task::spawn_blocking(move || {
        mounts::resolve(&vols, &uk, &binds, &image_volumes, &tmpfs)
    })
    .await
    .map_err(|e| Error::Internal(format!("resolve mounts: {e}")))??;

    let snapshotter = crate::snapshots::DEFAULT.to_string();
    let rec = Record {
        id: id.clone(),
        name,
        created: now(),
        path,
        args,
        config,
        host_config: hc,
        image_id: found.id.clone(),
        image_name: found.record_name.clone(),
        state: State::default(),
        restart_count: 0,
        manually_stopped: false,
        has_been_started: false,
        log_path: berth.log_path(ns, &id),
        snapshotter: snapshotter.clone(),
        mounts: mount_points,
        connected: Vec::new(),
        mode_disconnected: false,
    };
    let undo_mounts =
        |core: &Arc<Core>| mounts::release(&core.volumes, &user_key, &rec.mounts, true);

    // The first spec, for containerd's record; start rewrites it.
    let first_spec = spec::build(&SpecInput {
        record: &rec,
        user: &ExecUser {
            home: "/".into(),
            ..Default::default()
        },
        cgroups_path: berth.cgroups_path(ns, &id),
        netns: match network::mode(&rec.host_config) {
            crate::network::HOST => NetNs::Host,
            _ => NetNs::Path(berth.netns_path(ns, &id)),
        },
        files: None,
        swap_accounting: swap_accounting(),
        cgroup_ns: crate::host::cgroup_version() == "v2",
        userns: berth.userns_for(&rec.host_config),
    });
    let first_spec = match first_spec {
        Ok(s) => s,
        Err(e) => {
            undo_mounts(core);
            return Err(e);
        }
    };

    let userns = berth.userns_for(&rec.host_config);
    let lease = OpLease::create(core, ns)?;
    let prepared = async {
        if !unpack::is_unpacked(core, ns, &found.image, &snapshotter).await? {
            unpack::unpack_image(core, ns, &found.image, &snapshotter, Progress::none()).await?;
        }
        let parent = found.image.chain_ids().pop();
        let sn = core.snapshots.get(ns, &snapshotter)?;
        let Some(ranges) = userns else {
            return sn
                .prepare(&id, parent.as_deref(), Default::default(), Some(lease.id()))
                .await;
        };
        let parent = match parent {
            Some(p) => Some(
                userns::shifted_parent(
                    core,
                    ns,
                    &snapshotter,
                    &p,
                    ranges,
                    lease.id(),
                    &berth.state_dir(ns, &id),
                )
                .await?,
            ),
            None => None,
        };
        let mounts = sn
            .prepare(&id, parent.as_deref(), Default::default(), Some(lease.id()))
            .await?;
        userns::own_upper(&mounts, &ranges.0, &ranges.1)?;
        Ok(mounts)
    }
    .await;
    if let Err(e) = prepared {
        undo_mounts(core);
        return Err(e);
    }
    let record = Container {
        id: id.clone(),
        labels: rec.config.labels.clone(),
        image: found.record_name.clone(),
        runtime: Runtime {
            name: RUNTIME.into(),
            options: None,
        },
        spec: Some(AnyRecord {
            type_url: berth_api::any::SPEC.into(),
            value: first_spec,
        }),
        snapshotter: snapshotter.clone(),
        snapshot_key: id.clone(),
        ..Default::default()
    };
    let written = match core.containers.create(ns, record) {
        Ok(_) => berth.store.insert(ns, &rec).inspect_err(|_| {
            let _ = core.containers.delete(ns, &id);
        }),
        Err(e) => Err(e),
    };
    drop(lease);
    if let Err(e) = written {
        if let Ok(sn) = core.snapshots.get(ns, &snapshotter)
            && let Err(rm) = sn.remove(&id).await
        {
            tracing::warn!(container = %id, error = %rm, "remove the snapshot of a failed create");
        }
        undo_mounts(core);
        return Err(e);
    }
    tracing::info!(namespace = %ns, container = %id, name = %rec.name, image = %rec.config.image, "container created");
    Ok(Created { id, warnings })
}
