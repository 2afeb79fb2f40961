//! containerd events as docker events. A task follows the exchange and records, for each
//! containerd event that docker would report, its docker form with docker's attributes
//! (a container's name, image and labels from berth's record; an image's ID from its
//! config). What the records no longer say (a removed container's name, a deleted
//! name's image) comes from what this task remembers of earlier events.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use berth_api::containerd::events as ce;
use berth_api::containerd::services::images::v1 as img;
use prost::Name;

use super::{Event, Kind, attrs};
use crate::core::Core;
use crate::distribution::Reference;
use crate::events::{Envelope, Subscription};
use crate::filters::Filter;
use crate::images::DANGLING_PREFIX;

/// Starts translating: the subscription is taken now, so nothing published after this
/// call is missed. The task ends (closing the journal) when the exchange closes.
pub fn start(core: &Arc<Core>) -> tokio::task::JoinHandle<()> {
    let sub = core.events.subscribe();
    let core = core.clone();
    tokio::spawn(async move {
        let mut t = Translator {
            core,
            containers: HashMap::new(),
            images: HashMap::new(),
        };
        t.prime_images().await;
        t.run(sub).await;
        t.core.journal.close();
    })
}

/// What docker events say about a container.
#[derive(Debug, Clone, Default)]
struct Actor {
    name: String,
    image: String,
    labels: BTreeMap<String, String>,
}

struct Translator {
    core: Arc<Core>,
    /// (namespace, container ID) -> what it was last seen as.
    containers: HashMap<(String, String), Actor>,
    /// (namespace, image record name) -> image ID.
    images: HashMap<(String, String), String>,
}

fn unpack<M: Name + Default>(env: &Envelope) -> Option<M> {
    env.event
        .as_ref()
        .and_then(|a| berth_api::any::unpack::<M>(a).ok())
}

fn familiar(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_string())
}

impl Translator {
    async fn run(&mut self, mut sub: Subscription) {
        let all = Filter::default();
        while let Some(env) = sub.next(&all).await {
            self.handle(&env).await;
        }
    }

    /// Learns the image IDs of every existing name, so deleting one can say which
    /// image it was.
    async fn prime_images(&mut self) {
        let Ok(namespaces) = self.core.namespaces.list() else {
            return;
        };
        for ns in namespaces {
            let Ok(entries) = crate::images::catalog::entries(&self.core, &ns.name).await else {
                continue;
            };
            for e in entries {
                self.images
                    .insert((ns.name.clone(), e.record.name.clone()), e.id().to_string());
            }
        }
    }

    fn record(
        &self,
        env: &Envelope,
        kind: Kind,
        action: &str,
        actor: &str,
        a: BTreeMap<String, String>,
    ) {
        let time = berth_api::time::wire_to_unix_nanos(Some(&env.timestamp))
            .unwrap_or_else(|| berth_api::time::to_unix_nanos(std::time::SystemTime::now()));
        self.core.journal.record(Event {
            time,
            namespace: env.namespace.clone(),
            kind,
            action: action.to_string(),
            actor: actor.to_string(),
            attributes: a,
        });
    }

    async fn handle(&mut self, env: &Envelope) {
        match env.topic.as_str() {
            "/containers/create" => {
                if let Some(e) = unpack::<ce::ContainerCreate>(env) {
                    // berth writes its record right after containerd's: give it a moment.
                    for _ in 0..10 {
                        if self.core.berth.store.get(&env.namespace, &e.id).is_ok() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let a = self.container(&env.namespace, &e.id, &e.image);
                    self.record(env, Kind::Container, "create", &e.id, a);
                }
            }
            "/containers/delete" => {
                if let Some(e) = unpack::<ce::ContainerDelete>(env) {
                    let a = self.container(&env.namespace, &e.id, "");
                    self.containers
                        .remove(&(env.namespace.clone(), e.id.clone()));
                    self.record(env, Kind::Container, "destroy", &e.id, a);
                }
            }
            "/tasks/start" => {
                if let Some(e) = unpack::<ce::TaskStart>(env) {
                    let a = self.container(&env.namespace, &e.container_id, "");
                    self.record(env, Kind::Container, "start", &e.container_id, a);
                }
            }
            "/tasks/exit" => {
                if let Some(e) = unpack::<ce::TaskExit>(env) {
                    let mut a = self.container(&env.namespace, &e.container_id, "");
                    a.insert("exitCode".into(), e.exit_status.to_string());
                    if e.id == e.container_id || e.id.is_empty() {
                        self.record(env, Kind::Container, "die", &e.container_id, a);
                    } else {
                        a.insert("execID".into(), e.id.clone());
                        self.record(env, Kind::Container, "exec_die", &e.container_id, a);
                    }
                }
            }
            "/tasks/exec-added" => {
                if let Some(e) = unpack::<ce::TaskExecAdded>(env) {
                    let mut a = self.container(&env.namespace, &e.container_id, "");
                    a.insert("execID".into(), e.exec_id.clone());
                    self.record(env, Kind::Container, "exec_create", &e.container_id, a);
                }
            }
            "/tasks/exec-started" => {
                if let Some(e) = unpack::<ce::TaskExecStarted>(env) {
                    let mut a = self.container(&env.namespace, &e.container_id, "");
                    a.insert("execID".into(), e.exec_id.clone());
                    self.record(env, Kind::Container, "exec_start", &e.container_id, a);
                }
            }
            "/tasks/paused" => {
                if let Some(e) = unpack::<ce::TaskPaused>(env) {
                    let a = self.container(&env.namespace, &e.container_id, "");
                    self.record(env, Kind::Container, "pause", &e.container_id, a);
                }
            }
            "/tasks/resumed" => {
                if let Some(e) = unpack::<ce::TaskResumed>(env) {
                    let a = self.container(&env.namespace, &e.container_id, "");
                    self.record(env, Kind::Container, "unpause", &e.container_id, a);
                }
            }
            "/tasks/oom" => {
                if let Some(e) = unpack::<ce::TaskOom>(env) {
                    let a = self.container(&env.namespace, &e.container_id, "");
                    self.record(env, Kind::Container, "oom", &e.container_id, a);
                }
            }
            "/images/create" => {
                if let Some(e) = unpack::<img::ImageCreate>(env) {
                    self.image_named(env, &e.name, true).await;
                }
            }
            "/images/update" => {
                if let Some(e) = unpack::<img::ImageUpdate>(env) {
                    self.image_named(env, &e.name, false).await;
                }
            }
            "/images/delete" => {
                if let Some(e) = unpack::<img::ImageDelete>(env) {
                    self.image_deleted(env, &e.name);
                }
            }
            _ => {}
        }
    }

    /// The attributes of a container: from berth's record when there is one (and
    /// remembered), else what was remembered, else the containerd event's image.
    fn container(&mut self, ns: &str, id: &str, image: &str) -> BTreeMap<String, String> {
        let key = (ns.to_string(), id.to_string());
        if let Ok(rec) = self.core.berth.store.get(ns, id) {
            self.containers.insert(
                key.clone(),
                Actor {
                    name: rec.name.clone(),
                    image: rec.config.image.clone(),
                    labels: rec.config.labels.clone(),
                },
            );
        }
        let actor = self.containers.get(&key).cloned().unwrap_or_else(|| Actor {
            image: image.to_string(),
            ..Default::default()
        });
        let mut a = actor.labels;
        if !actor.image.is_empty() {
            a.insert("image".into(), actor.image);
        }
        if !actor.name.is_empty() {
            a.insert("name".into(), actor.name);
        }
        a
    }

    /// A name now points at an image: docker's `tag` (unless an update left the image
    /// the same, or the name is berth's record of an untagged image).
    async fn image_named(&mut self, env: &Envelope, name: &str, created: bool) {
        let ns = env.namespace.clone();
        let id = match self.core.images.get(&ns, name) {
            Ok(record) => {
                match crate::images::content::resolve(&self.core.content, &ns, &record.target, None)
                    .await
                {
                    Ok(pi) => pi.id().to_string(),
                    Err(_) => record.target.digest.to_string(),
                }
            }
            Err(_) => return,
        };
        let previous = self.images.insert((ns, name.to_string()), id.clone());
        if name.starts_with(DANGLING_PREFIX) || (!created && previous.as_deref() == Some(&id)) {
            return;
        }
        self.record(
            env,
            Kind::Image,
            "tag",
            &id,
            attrs([("name", &familiar(name))]),
        );
    }

    /// A name is gone: docker's `untag`, and `delete` when no name (not even berth's
    /// record of an untagged image) keeps the image any more.
    fn image_deleted(&mut self, env: &Envelope, name: &str) {
        let ns = env.namespace.clone();
        let id = self.images.remove(&(ns.clone(), name.to_string()));
        let actor = id.clone().unwrap_or_else(|| familiar(name));
        if !name.starts_with(DANGLING_PREFIX) {
            self.record(
                env,
                Kind::Image,
                "untag",
                &actor,
                attrs([("name", &familiar(name))]),
            );
        }
        if let Some(id) = id {
            let still = self
                .images
                .iter()
                .any(|((n, _), other)| *n == ns && *other == id);
            if !still {
                self.record(
                    env,
                    Kind::Image,
                    "delete",
                    &id,
                    attrs([("name", &familiar(name))]),
                );
            }
        }
    }
}
