//! `system prune` and `system events`: stopped containers, unused networks, dangling
//! (or all unused) images and, when asked, unused anonymous volumes; and the docker
//! event journal read with `--since`, `--until` and filters.

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
    // Networks take no filters yet; refuse rather than prune more than asked.
    if filters.is_empty() {
        out.networks = core.networks.prune().await.map_err(Error::from)?;
    }
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
