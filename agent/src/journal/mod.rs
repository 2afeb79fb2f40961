//! docker-style events (`berthctl events`): what happened to containers, images, volumes
//! and networks, as docker reports it (type, action, actor, attributes). berthd keeps the
//! last [`HISTORY`] events in memory so `--since` can look back, as docker does, and
//! broadcasts new ones to live subscribers.
//!
//! Most events are translated from the containerd events every subsystem publishes on
//! the exchange ([`translate`]): container create/start/die/pause/unpause/oom/exec/
//! destroy, image tag/untag/delete. The rest are recorded where they happen: commit,
//! import, volume create/destroy, network create/destroy/connect/disconnect.

mod filter;
mod translate;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

pub use filter::EventFilter;
pub use translate::start;

/// How many events berthd remembers for `--since`.
pub const HISTORY: usize = 1000;
/// How far a slow live subscriber may fall behind before it misses events.
const BACKLOG: usize = 1024;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Container,
    Image,
    Volume,
    Network,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Volume => "volume",
            Kind::Network => "network",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "container" => Kind::Container,
            "image" => Kind::Image,
            "volume" => Kind::Volume,
            "network" => Kind::Network,
            _ => return None,
        })
    }
}

/// One docker-style event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unix nanoseconds.
    pub time: i64,
    /// The namespace of containers and images; empty for volumes and networks, which
    /// every namespace sees.
    pub namespace: String,
    pub kind: Kind,
    pub action: String,
    /// A container ID, an image ID, a volume name or a network ID.
    pub actor: String,
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event happening now.
    pub fn now(
        namespace: &str,
        kind: Kind,
        action: &str,
        actor: &str,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        Event {
            time: berth_api::time::to_unix_nanos(std::time::SystemTime::now()),
            namespace: namespace.to_string(),
            kind,
            action: action.to_string(),
            actor: actor.to_string(),
            attributes,
        }
    }

    /// Whether a subscriber in namespace `ns` sees it.
    pub fn visible_in(&self, ns: &str) -> bool {
        self.namespace.is_empty() || self.namespace == ns
    }
}

/// The recent history and the live broadcast.
pub struct Journal {
    history: Mutex<VecDeque<Arc<Event>>>,
    tx: broadcast::Sender<Arc<Event>>,
    closed: watch::Sender<bool>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal::new()
    }
}

impl Journal {
    pub fn new() -> Journal {
        Journal {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            tx: broadcast::channel(BACKLOG).0,
            closed: watch::Sender::new(false),
        }
    }

    /// Records an event: into the history (the oldest one goes when it is full) and to
    /// every live subscriber.
    pub fn record(&self, event: Event) {
        tracing::debug!(kind = event.kind.as_str(), action = %event.action, actor = %event.actor, "docker event");
        let event = Arc::new(event);
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(event.clone());
        // Sent under the lock, so a subscriber sees each event exactly once.
        let _ = self.tx.send(event);
    }

    /// Records an event happening now.
    pub fn emit(
        &self,
        namespace: &str,
        kind: Kind,
        action: &str,
        actor: &str,
        attributes: BTreeMap<String, String>,
    ) {
        self.record(Event::now(namespace, kind, action, actor, attributes));
    }

    /// The remembered events at or after `since` (Unix nanoseconds), oldest first, and a
    /// receiver of every later event: nothing is missed or seen twice in between.
    pub fn subscribe(&self, since: Option<i64>) -> (Vec<Arc<Event>>, Subscription) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let past = match since {
            Some(t) => h.iter().filter(|e| e.time >= t).cloned().collect(),
            None => Vec::new(),
        };
        let sub = Subscription {
            rx: self.tx.subscribe(),
            closed: self.closed.subscribe(),
        };
        (past, sub)
    }

    /// Ends every live subscription (berthd shuts down).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }
}

/// A live subscription.
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
    closed: watch::Receiver<bool>,
}

impl Subscription {
    /// The next event; `None` once the journal is closed.
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            if *self.closed.borrow() {
                return None;
            }
            let r = tokio::select! {
                r = self.rx.recv() => r,
                _ = self.closed.changed() => return None,
            };
            match r {
                Ok(e) => return Some(e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "docker event subscriber fell behind; events dropped"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// Attributes from pairs.
pub fn attrs<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: i64, action: &str) -> Event {
        Event {
            time: t,
            namespace: "ns".into(),
            kind: Kind::Container,
            action: action.into(),
            actor: "abc".into(),
            attributes: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn history_is_bounded_and_replayed_from_since() {
        let j = Journal::new();
        for i in 0..(HISTORY as i64 + 5) {
            j.record(ev(i, "start"));
        }
        let (past, _) = j.subscribe(Some(0));
        assert_eq!(past.len(), HISTORY);
        assert_eq!(past[0].time, 5);
        let (past, _) = j.subscribe(Some(HISTORY as i64));
        assert_eq!(past.len(), 5);
        let (past, mut sub) = j.subscribe(None);
        assert!(past.is_empty());
        j.record(ev(9999, "die"));
        assert_eq!(sub.next().await.unwrap().action, "die");
        j.close();
        assert!(sub.next().await.is_none());
    }

    #[test]
    fn global_events_are_seen_in_every_namespace() {
        let mut e = ev(1, "create");
        assert!(e.visible_in("ns") && !e.visible_in("other"));
        e.namespace.clear();
        assert!(e.visible_in("other"));
        assert_eq!(attrs([("a", "1"), ("b", "")]).len(), 1);
    }
}
