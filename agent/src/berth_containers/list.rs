//! `ps`: container summaries, newest first, with docker's filters (`id`, `name`,
//! `label`, `status`, `ancestor`, `exited`, `before`, `since`, `volume`, `network`),
//! `-a`, `-n`, `-l` and `-s`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::model::{MountPoint, Record, Status};
use super::{image, network, now, status};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::images::list::{Filters, labels_match};

/// What `ps` asks for.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    /// The newest N (0: all of them); implies `all`.
    pub limit: i32,
    /// Only the newest; implies `all`.
    pub latest: bool,
    pub size: bool,
    pub filters: Vec<String>,
}

/// A port of a container: published (public port set) or only exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub ip: String,
    pub private_port: u16,
    pub public_port: u16,
    pub proto: String,
}

/// One line of `ps`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub state: String,
    pub status: String,
    pub ports: Vec<Port>,
    pub labels: BTreeMap<String, String>,
    pub size_rw: i64,
    pub size_root_fs: i64,
    pub networks: Vec<String>,
    pub mounts: Vec<MountPoint>,
}

const FILTERS: &[&str] = &[
    "id", "name", "label", "status", "ancestor", "exited", "before", "since", "volume", "network",
];

fn name_matches(pattern: &str, name: &str) -> bool {
    match regex::Regex::new(pattern) {
        Ok(re) => re.is_match(name),
        Err(_) => name.contains(pattern),
    }
}

/// Image IDs an `ancestor=` value stands for.
async fn ancestors(core: &Arc<Core>, ns: &str, values: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for v in values {
        if let Ok(found) = image::find(core, ns, v).await {
            ids.push(found.id);
        }
    }
    ids
}

/// The ports `ps` shows: what is published, then exposed ports not published.
pub fn ports(core: &Core, ns: &str, rec: &Record) -> Vec<Port> {
    let mut out: Vec<Port> = Vec::new();
    if rec.state.status.is_active() {
        for m in core.networks.ports(ns, &rec.id).unwrap_or_default() {
            out.push(Port {
                ip: m.host_ip.to_string(),
                private_port: m.container_port,
                public_port: m.host_port,
                proto: m.proto.as_str().to_string(),
            });
        }
    }
    for e in rec.config.exposed_ports.keys() {
        for (port, proto) in crate::network::parse_exposed(e).unwrap_or_default() {
            if !out
                .iter()
                .any(|p| p.private_port == port && p.proto == proto.as_str())
            {
                out.push(Port {
                    ip: String::new(),
                    private_port: port,
                    public_port: 0,
                    proto: proto.as_str().to_string(),
                });
            }
        }
    }
    out
}

/// Bytes the container wrote (its snapshot) and its whole filesystem (plus the image).
pub async fn sizes(core: &Arc<Core>, ns: &str, rec: &Record) -> (i64, i64) {
    let Ok(sn) = core.snapshots.get(ns, &rec.snapshotter) else {
        return (0, 0);
    };
    let rw = sn.usage(&rec.id).await.map(|u| u.size).unwrap_or(0);
    let mut base = 0;
    if let Ok(found) = image::find(core, ns, &rec.image_id).await {
        for chain in found.image.chain_ids() {
            base += sn.usage(&chain).await.map(|u| u.size).unwrap_or(0);
        }
    }
    (rw, rw + base)
}

/// The containers of `ns` that `opts` selects.
pub async fn list(core: &Arc<Core>, ns: &str, opts: &ListOptions) -> Result<Vec<Summary>> {
    let f = Filters::parse(&opts.filters, FILTERS)?;
    for s in f.get("status") {
        if Status::parse(s).is_none() {
            return Err(Error::InvalidArgument(format!(
                "invalid filter 'status={s}': expected created, restarting, running, removing, \
                 paused, exited or dead"
            )));
        }
    }
    let exited: Vec<i32> = f
        .get("exited")
        .iter()
        .map(|v| {
            v.parse()
                .map_err(|_| Error::InvalidArgument(format!("invalid filter 'exited={v}'")))
        })
        .collect::<Result<_>>()?;
    let store = &core.berth.store;
    let mut before = None;
    for b in f.get("before") {
        before = Some(store.resolve(ns, b)?.created);
    }
    let mut since = None;
    for s in f.get("since") {
        since = Some(store.resolve(ns, s)?.created);
    }
    let ancestor_ids = ancestors(core, ns, f.get("ancestor")).await;
    let all = opts.all || opts.limit > 0 || opts.latest || f.has("status") || f.has("exited");

    let mut recs = store.list(ns)?;
    recs.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    if opts.latest {
        recs.truncate(1);
    } else if opts.limit > 0 {
        recs.truncate(opts.limit as usize);
    }
    let t = now();
    let mut out = Vec::new();
    for rec in recs {
        let st = rec.state.status;
        if !all && !matches!(st, Status::Running | Status::Paused | Status::Restarting) {
            continue;
        }
        let keep = (f.get("id").is_empty()
            || f.get("id").iter().any(|p| rec.id.starts_with(p.as_str())))
            && (f.get("name").is_empty()
                || f.get("name").iter().any(|p| name_matches(p, &rec.name)))
            && labels_match(&rec.config.labels, f.get("label"), false)
            && (f.get("status").is_empty() || f.get("status").iter().any(|s| s == st.as_str()))
            && (exited.is_empty()
                || (st == Status::Exited && exited.contains(&rec.state.exit_code)))
            && (f.get("ancestor").is_empty()
                || ancestor_ids.contains(&rec.image_id)
                || f.get("ancestor")
                    .iter()
                    .any(|a| *a == rec.config.image || *a == rec.image_name))
            && before.is_none_or(|b| rec.created < b)
            && since.is_none_or(|s| rec.created > s)
            && (f.get("volume").is_empty()
                || rec.mounts.iter().any(|m| {
                    f.get("volume")
                        .iter()
                        .any(|v| *v == m.name || *v == m.destination)
                }))
            && (f.get("network").is_empty()
                || f.get("network")
                    .iter()
                    .any(|n| n == network::mode(&rec.host_config)));
        if !keep {
            continue;
        }
        let (size_rw, size_root_fs) = if opts.size {
            sizes(core, ns, &rec).await
        } else {
            (0, 0)
        };
        let mut command = vec![rec.path.clone()];
        command.extend(rec.args.iter().cloned());
        out.push(Summary {
            id: rec.id.clone(),
            name: rec.name.clone(),
            image: rec.config.image.clone(),
            image_id: rec.image_id.clone(),
            command: command.join(" "),
            created: rec.created,
            state: st.as_str().to_string(),
            status: status::text(&rec, t),
            ports: ports(core, ns, &rec),
            labels: rec.config.labels.clone(),
            size_rw,
            size_root_fs,
            networks: vec![network::mode(&rec.host_config).to_string()],
            mounts: rec.mounts.clone(),
        });
    }
    Ok(out)
}
