//! The event exchange: every subsystem publishes here; subscribers (the Events service,
//! `berthctl events`, `ctr events`) receive what their filters select.

mod fields;

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_api::containerd::services::events::v1::Envelope as WireEnvelope;
use prost_types::{Any, Timestamp};
use tokio::sync::broadcast;

pub use fields::EventFields;

use crate::error::{Error, Result};
use crate::filters::{Adaptor, Filter};
use crate::identifiers;

/// How many events a slow subscriber may fall behind before it misses some.
const BACKLOG: usize = 4096;

/// One published event with the fields filters can select on.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub timestamp: Timestamp,
    pub namespace: String,
    pub topic: String,
    pub event: Option<Any>,
    /// Fields of the event payload, by dotted path below `event.`.
    pub fields: BTreeMap<String, String>,
}

impl Envelope {
    pub fn to_wire(&self) -> WireEnvelope {
        WireEnvelope {
            timestamp: Some(self.timestamp),
            namespace: self.namespace.clone(),
            topic: self.topic.clone(),
            event: self.event.clone(),
        }
    }
}

impl Adaptor for Envelope {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "namespace" => Some(self.namespace.clone()).filter(|s| !s.is_empty()),
            "topic" => Some(self.topic.clone()).filter(|s| !s.is_empty()),
            "event" => self.fields.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

/// Broadcasts events to subscribers.
#[derive(Clone)]
pub struct Exchange {
    tx: broadcast::Sender<Arc<Envelope>>,
    /// Set when the daemon shuts down, so subscriptions end and let it stop.
    closed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Exchange {
    fn default() -> Self {
        Self::new()
    }
}

impl Exchange {
    pub fn new() -> Self {
        Exchange {
            tx: broadcast::channel(BACKLOG).0,
            closed: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Publishes a daemon event in `namespace`.
    pub fn publish<E: prost::Name + EventFields>(&self, namespace: &str, topic: &str, event: &E) {
        let mut fields = BTreeMap::new();
        event.fields(&mut fields);
        self.send(Envelope {
            timestamp: berth_api::time::now(),
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event: Some(berth_api::any::pack(event)),
            fields,
        });
    }

    /// Publishes a client's event (Events.Publish) after checking the topic.
    pub fn publish_any(&self, namespace: &str, topic: &str, event: Option<Any>) -> Result<()> {
        identifiers::validate("namespace", namespace)?;
        validate_topic(topic)?;
        self.send(Envelope {
            timestamp: berth_api::time::now(),
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event,
            fields: BTreeMap::new(),
        });
        Ok(())
    }

    /// Re-publishes an envelope from elsewhere (Events.Forward) as it is.
    pub fn forward(&self, env: WireEnvelope) -> Result<()> {
        identifiers::validate("namespace", &env.namespace)?;
        validate_topic(&env.topic)?;
        self.send(Envelope {
            timestamp: env.timestamp.unwrap_or_else(berth_api::time::now),
            namespace: env.namespace,
            topic: env.topic,
            event: env.event,
            fields: BTreeMap::new(),
        });
        Ok(())
    }

    fn send(&self, env: Envelope) {
        tracing::debug!(namespace = %env.namespace, topic = %env.topic, "event");
        // No subscriber is not an error.
        let _ = self.tx.send(Arc::new(env));
    }

    /// A receiver of every event from now on; callers apply their filter.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
            closed: self.closed.subscribe(),
        }
    }

    /// Ends every subscription (daemon shutdown).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }
}

/// A live subscription.
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Envelope>>,
    closed: tokio::sync::watch::Receiver<bool>,
}

impl Subscription {
    /// The next event passing `filter`; `None` once the exchange is closed.
    pub async fn next(&mut self, filter: &Filter) -> Option<Arc<Envelope>> {
        loop {
            if *self.closed.borrow() {
                return None;
            }
            let received = tokio::select! {
                r = self.rx.recv() => r,
                _ = self.closed.changed() => return None,
            };
            match received {
                Ok(env) if filter.matches(env.as_ref()) => return Some(env),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event subscriber fell behind; events dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// Topics are absolute paths of identifier components, like `/tasks/exit`.
pub fn validate_topic(topic: &str) -> Result<()> {
    let Some(rest) = topic.strip_prefix('/') else {
        return Err(Error::InvalidArgument(format!(
            "topic {topic:?} must start with '/'"
        )));
    };
    if rest.is_empty() {
        return Err(Error::InvalidArgument("topic must not be just '/'".into()));
    }
    for part in rest.split('/') {
        identifiers::validate("topic component", part)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use berth_api::containerd::events::NamespaceCreate;

    use super::*;

    #[tokio::test]
    async fn filtered_subscription() {
        let ex = Exchange::new();
        let mut sub = ex.subscribe();
        let filter = Filter::parse("topic==\"/namespaces/create\",event.name==b").unwrap();
        let ev = |n: &str| NamespaceCreate {
            name: n.into(),
            labels: Default::default(),
        };
        ex.publish("a", "/namespaces/create", &ev("a"));
        ex.publish("b", "/namespaces/delete", &ev("b"));
        ex.publish("b", "/namespaces/create", &ev("b"));
        let got = sub.next(&filter).await.unwrap();
        assert_eq!(got.namespace, "b");
        assert_eq!(got.topic, "/namespaces/create");
        assert_eq!(
            got.event.as_ref().unwrap().type_url,
            "containerd.events.NamespaceCreate"
        );
        ex.close();
        assert!(
            sub.next(&filter).await.is_none(),
            "closed exchange ends subscriptions"
        );
    }

    #[test]
    fn topics() {
        validate_topic("/tasks/exit").unwrap();
        for bad in ["tasks", "/", "/a//b", "/a b", "/a/"] {
            assert!(validate_topic(bad).is_err(), "{bad}");
        }
    }
}
