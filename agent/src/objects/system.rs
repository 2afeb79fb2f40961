//! `system prune`, `system events` and `system df`: stopped containers, unused networks, dangling
//! (or all unused) images and, when asked, unused anonymous volumes; and the docker
//! event journal read with `--since`, `--until` and filters; disk usage.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;

use crate::core::Core;
use crate::error::{Error, Result};
use crate::images::remove::{self, Removed};
use crate::journal::{Event, EventFilter};

/// What `system prune` removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub images: Vec<Removed>,
    pub volumes: Vec<String>,
    pub reclaimed: u64,
}

/// Prunes in docker's order: containers first, so what they held becomes unused.
pub async fn prune(
    core: &Arc<Core>,
    ns: &str,
    all: bool,
    volumes: bool,
    filters: &[String],
) -> Result<Pruned> {
    let mut out = Pruned::default();
    let (containers, bytes) = crate::berth_containers::prune(core, ns, filters).await?;
    out.containers = containers;
    out.reclaimed += bytes;
    let filter = crate::prune::PruneFilter::parse(filters)?;
    out.networks = core
        .networks
        .prune(|n| filter.passes(&n.labels, n.created_at))
        .await
        .map_err(Error::from)?;
    let images = remove::prune(core, ns, all, filters).await?;
    out.images = images.removed;
    out.reclaimed += images.reclaimed;
    if volumes {
        let label_only: Vec<String> = filters
            .iter()
            .filter(|f| f.starts_with("label"))
            .cloned()
            .collect();
        let (names, bytes) = super::volumes::prune(core, false, &label_only)?;
        out.volumes = names;
        out.reclaimed += bytes;
    }
    Ok(out)
}

/// The events of namespace `ns` passing `filters`: those remembered at or after
/// `since`, then live ones, until `until` (Unix nanoseconds) when given.
pub fn events(
    core: &Arc<Core>,
    ns: &str,
    since: Option<i64>,
    until: Option<i64>,
    filters: &[String],
) -> Result<impl Stream<Item = Arc<Event>> + Send + 'static> {
    let filter = EventFilter::parse(filters)?;
    let (past, mut sub) = core.journal.subscribe(since);
    let ns = ns.to_string();
    let wanted = move |e: &Event| {
        e.visible_in(&ns) && filter.matches(e) && until.is_none_or(|u| e.time <= u)
    };
    Ok(async_stream::stream! {
        for e in past {
            if wanted(&e) {
                yield e;
            }
        }
        let now = berth_api::time::to_unix_nanos(std::time::SystemTime::now());
        let left = match until {
            Some(u) if u <= now => return,
            Some(u) => Some(Duration::from_nanos((u - now) as u64)),
            None => None,
        };
        let deadline = left.map(|d| tokio::time::Instant::now() + d);
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, sub.next()).await {
                    Ok(n) => n,
                    Err(_) => return,
                },
                None => sub.next().await,
            };
            let Some(e) = next else { return };
            if wanted(&e) {
                yield e;
            }
        }
    })
}

/// One line of `system df`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Usage {
    pub total: i64,
    pub active: i64,
    pub size: i64,
    pub reclaimable: i64,
}

/// What `system df` reports; the lists are filled only when `verbose`.
#[derive(Debug, Default)]
pub struct Df {
    pub images: Usage,
    pub containers: Usage,
    pub volumes: Usage,
    pub image_list: Vec<ImageUsage>,
    pub container_list: Vec<crate::berth_containers::Summary>,
    /// (volume, containers using it, bytes).
    pub volume_list: Vec<(String, i64, i64)>,
}

/// One image of `system df -v`: its size, and the part of it in layers other images
/// use too (docker's SHARED SIZE; UNIQUE SIZE is the rest).
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub summary: crate::images::list::Summary,
    pub shared: i64,
    pub unique: i64,
}

/// Each image with its shared and unique bytes, and the totals: every layer counted
/// once, and what removing the images no container uses would free.
fn image_usage(images: Vec<crate::images::list::Summary>) -> (Usage, Vec<ImageUsage>) {
    use std::collections::{HashMap, HashSet};
    let mut users: HashMap<&str, (i64, usize)> = HashMap::new();
    for i in &images {
        for (chain, size) in &i.layers {
            users.entry(chain).or_insert((*size, 0)).1 += 1;
        }
    }
    let used: HashSet<&str> = images
        .iter()
        .filter(|i| i.containers > 0)
        .flat_map(|i| i.layers.iter().map(|(c, _)| c.as_str()))
        .collect();
    let mut usage = Usage::default();
    for i in &images {
        usage.total += 1;
        if i.containers > 0 {
            usage.active += 1;
        }
        // An image not unpacked has no layers: its content size stands alone.
        if i.layers.is_empty() {
            usage.size += i.size;
            if i.containers == 0 {
                usage.reclaimable += i.size;
            }
        }
    }
    for (chain, (size, _)) in &users {
        usage.size += size;
        if !used.contains(chain) {
            usage.reclaimable += size;
        }
    }
    let list = images
        .iter()
        .map(|i| {
            let shared: i64 = i
                .layers
                .iter()
                .filter(|(c, _)| users.get(c.as_str()).is_some_and(|u| u.1 > 1))
                .map(|(_, s)| s)
                .sum();
            ImageUsage {
                summary: i.clone(),
                shared,
                unique: i.size - shared,
            }
        })
        .collect();
    (usage, list)
}

/// Disk usage of the namespace's images and containers and of every volume. A layer
/// several images share counts once in the images' total.
pub async fn df(core: &Arc<Core>, ns: &str, verbose: bool) -> Result<Df> {
    let mut out = Df::default();
    let (image_totals, images) = image_usage(crate::images::list::list(core, ns, true, &[]).await?);
    out.images = image_totals;
    let containers = crate::berth_containers::list(
        core,
        ns,
        &crate::berth_containers::ListOptions {
            all: true,
            size: true,
            ..Default::default()
        },
    )
    .await?;
    for c in &containers {
        out.containers.total += 1;
        out.containers.size += c.size_rw.max(0);
        if c.state == "running" || c.state == "paused" {
            out.containers.active += 1;
        } else {
            out.containers.reclaimable += c.size_rw.max(0);
        }
    }
    let core2 = core.clone();
    let volumes = tokio::task::spawn_blocking(move || {
        core2.volumes.list().map(|vs| {
            vs.into_iter()
                .map(|v| {
                    let size = core2.volumes.usage(&v.name).map(|s| s as i64).unwrap_or(0);
                    (v.name, v.users.len() as i64, size)
                })
                .collect::<Vec<_>>()
        })
    })
    .await
    .map_err(|e| Error::Internal(format!("volume usage task: {e}")))??;
    for (_, users, size) in &volumes {
        out.volumes.total += 1;
        out.volumes.size += size;
        if *users > 0 {
            out.volumes.active += 1;
        } else {
            out.volumes.reclaimable += size;
        }
    }
    if verbose {
        out.image_list = images;
        out.container_list = containers;
        out.volume_list = volumes;
    }
    Ok(out)
}
