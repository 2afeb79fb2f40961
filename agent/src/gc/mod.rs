//! Garbage collection: mark everything reachable from the roots, sweep the rest.
//!
//! The collector knows no resource itself. Each owner plugs in a [`Participant`] that
//! answers, inside one metadata write transaction:
//!
//! * `roots`: what must be kept outright (images' targets, unexpired leases and what
//!   they hold, `containerd.io/gc.root` content, fresh or busy ingests; later containers'
//!   snapshots and `gc.root` snapshots);
//! * `references`: for a node of a kind it owns, the nodes it keeps alive (content's
//!   `containerd.io/gc.ref.content.*` and `containerd.io/gc.ref.snapshot.<snapshotter>`
//!   labels, an ingest's expected blob; later a snapshot's parent and labels);
//! * `scan` and `remove`: every node of its kinds, and the removal of an unmarked one's
//!   record;
//! * `cleanup`: after the transaction committed, removal of the backing storage
//!   (blob files, ingest and snapshot directories) nothing refers to any more.
//!
//! Because mark and sweep run in one write transaction, no record can appear or
//! change between them. A collection runs soon after a delete ([`Trigger::schedule`]),
//! synchronously when a client asks (`sync` on Images.Delete and Leases.Delete), and
//! every `[gc] interval`.
//!
//! To plug in a subsystem: implement [`Participant`] and call
//! [`Collector::register`] once at start-up (see `content::ContentGc`,
//! `images::ImagesGc`, [`LeasesGc`]). A container owner only provides roots (its
//! snapshot and label references); a snapshot owner owns [`Kind::Snapshot`] nodes, keyed
//! `<snapshotter>/<key>` as leases and `gc.ref.snapshot` labels name them.

mod labels;
mod leases;
mod mark;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

pub use labels::{GC_EXPIRE, GC_REF_CONTENT, GC_REF_SNAPSHOT, GC_ROOT, is_root, label_refs};
pub use leases::LeasesGc;

use crate::config::GcConfig;
use crate::error::{Error, Result};
use crate::metadata::{Metadata, WriteTx};

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A blob in a namespace; key: its digest.
    Content,
    /// An in-flight write; key: its ref.
    Ingest,
    /// A snapshot; key: `<snapshotter>/<snapshot key>`.
    Snapshot,
    /// A lease; key: its id.
    Lease,
}

/// One resource in the collection graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub kind: Kind,
    pub namespace: String,
    pub key: String,
}

impl Node {
    pub fn new(kind: Kind, namespace: &str, key: &str) -> Node {
        Node {
            kind,
            namespace: namespace.to_string(),
            key: key.to_string(),
        }
    }

    pub fn content(namespace: &str, digest: &str) -> Node {
        Node::new(Kind::Content, namespace, digest)
    }

    pub fn ingest(namespace: &str, reference: &str) -> Node {
        Node::new(Kind::Ingest, namespace, reference)
    }

    pub fn lease(namespace: &str, id: &str) -> Node {
        Node::new(Kind::Lease, namespace, id)
    }

    pub fn snapshot(namespace: &str, snapshotter: &str, key: &str) -> Node {
        Node {
            kind: Kind::Snapshot,
            namespace: namespace.to_string(),
            key: format!("{snapshotter}/{key}"),
        }
    }
}

/// The context of one collection.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    /// The time leases' `containerd.io/gc.expire` and ingests' ages are compared to.
    pub now: SystemTime,
}

/// Where nodes found by a participant go.
pub type Emit<'a> = &'a mut dyn FnMut(Node);

/// A subsystem taking part in garbage collection. Every method but `cleanup` runs
/// inside the collection's write transaction and must not open another one.
pub trait Participant: Send + Sync {
    /// A name for logs.
    fn name(&self) -> &'static str;

    /// The node kinds this participant answers `references`, `scan` and `remove` for.
    fn owns(&self) -> &'static [Kind] {
        &[]
    }

    /// Emits the nodes that must be kept whatever refers to them.
    fn roots(&self, tx: &WriteTx, pass: &Pass, emit: Emit<'_>) -> Result<()>;

    /// Emits the nodes `node` (of an owned kind) keeps alive.
    fn references(&self, _tx: &WriteTx, _node: &Node, _emit: Emit<'_>) -> Result<()> {
        Ok(())
    }

    /// Emits every node of the owned kinds.
    fn scan(&self, _tx: &WriteTx, _emit: Emit<'_>) -> Result<()> {
        Ok(())
    }

    /// Removes the record of an unreachable node of an owned kind.
    fn remove(&self, _tx: &WriteTx, _node: &Node) -> Result<()> {
        Ok(())
    }

    /// After the transaction committed: removes backing storage no record needs any
    /// more. `removed` lists the nodes this participant just removed.
    fn cleanup(&self, _removed: &[Node]) -> Result<()> {
        Ok(())
    }
}

/// What one collection did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Reachable nodes.
    pub marked: usize,
    /// Records removed.
    pub removed: Vec<Node>,
    pub elapsed: Duration,
}

/// Asks for a collection soon; cheap to clone and call.
#[derive(Clone, Default)]
pub struct Trigger(Arc<TriggerState>);

#[derive(Default)]
struct TriggerState {
    notify: Notify,
    pending: AtomicBool,
}

impl Trigger {
    /// Schedules a collection after `[gc] schedule_delay`.
    pub fn schedule(&self) {
        self.0.pending.store(true, Ordering::SeqCst);
        self.0.notify.notify_one();
    }

    /// Whether a collection was asked for since the last one started.
    pub fn pending(&self) -> bool {
        self.0.pending.load(Ordering::SeqCst)
    }
}

/// The garbage collector of one berthd.
pub struct Collector {
    md: Arc<Metadata>,
    config: GcConfig,
    trigger: Trigger,
    participants: RwLock<Vec<Arc<dyn Participant>>>,
    running: tokio::sync::Mutex<()>,
}

impl Collector {
    pub fn new(md: Arc<Metadata>, config: GcConfig, trigger: Trigger) -> Arc<Collector> {
        Arc::new(Collector {
            md,
            config,
            trigger,
            participants: RwLock::new(Vec::new()),
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// Adds a participant; every later collection consults it.
    pub fn register(&self, p: Arc<dyn Participant>) {
        self.participants
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(p);
    }

    /// The handle that schedules collections.
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    pub fn config(&self) -> &GcConfig {
        &self.config
    }

    /// Collects now and returns when done (what `sync` deletes use).
    pub async fn collect(self: &Arc<Self>) -> Result<Report> {
        let _one = self.running.lock().await;
        self.trigger.0.pending.store(false, Ordering::SeqCst);
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.collect_blocking(SystemTime::now()))
            .await
            .map_err(|e| Error::Internal(format!("garbage collection task: {e}")))?
    }

    /// One collection at time `now`, on the calling thread (blocking).
    pub fn collect_blocking(&self, now: SystemTime) -> Result<Report> {
        let started = Instant::now();
        let parts: Vec<Arc<dyn Participant>> = self
            .participants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let pass = Pass { now };
        let outcome = self.md.write(|tx| mark::run(tx, &parts, &pass))?;
        let mut removed = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let mine: Vec<Node> = outcome
                .removed
                .iter()
                .filter(|(owner, _)| *owner == i)
                .map(|(_, n)| n.clone())
                .collect();
            if let Err(e) = p.cleanup(&mine) {
                tracing::warn!(participant = p.name(), error = %e, "garbage collection cleanup failed");
            }
            removed.extend(mine);
        }
        let report = Report {
            marked: outcome.marked,
            removed,
            elapsed: started.elapsed(),
        };
        tracing::debug!(
            marked = report.marked,
            removed = report.removed.len(),
            elapsed = ?report.elapsed,
            "garbage collected"
        );
        for n in &report.removed {
            tracing::debug!(kind = ?n.kind, namespace = %n.namespace, key = %n.key, "removed");
        }
        Ok(report)
    }

    /// Starts the background scheduler: a collection shortly after start, after every
    /// [`Trigger::schedule`] (once `schedule_delay` has passed), and every `interval`.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        me.trigger.schedule();
        tokio::spawn(async move {
            let interval = me.config.interval;
            let mut next = (!interval.is_zero()).then(|| tokio::time::Instant::now() + interval);
            loop {
                let periodic = async {
                    match next {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = me.trigger.0.notify.notified() => {
                        tokio::time::sleep(me.config.schedule_delay).await;
                    }
                    _ = periodic => {}
                }
                if let Err(e) = me.collect().await {
                    tracing::error!(error = %e, "garbage collection failed");
                }
                if !interval.is_zero() {
                    next = Some(tokio::time::Instant::now() + interval);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
