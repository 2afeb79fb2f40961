//! Leases in garbage collection: an unexpired lease keeps everything it holds; an
//! expired one is removed.

use std::time::SystemTime;

use super::{Emit, GC_EXPIRE, Kind, Node, Participant, Pass};
use crate::error::Result;
use crate::metadata::{Lease, LeaseResource, WriteTx};

/// The leases participant.
pub struct LeasesGc;

/// Whether `lease` has expired at `now`. A lease without `containerd.io/gc.expire`
/// never expires; an unreadable value is ignored (the lease is kept), as containerd does.
pub fn expired(lease: &Lease, now: SystemTime) -> bool {
    let Some(v) = lease.labels.get(GC_EXPIRE) else {
        return false;
    };
    match chrono::DateTime::parse_from_rfc3339(v) {
        Ok(t) => SystemTime::from(t) < now,
        Err(e) => {
            tracing::info!(lease = %lease.id, value = %v, error = %e, "ignoring unreadable lease expiry");
            false
        }
    }
}

/// The node a lease resource names.
fn resource_node(ns: &str, r: &LeaseResource) -> Option<Node> {
    match r.kind.as_str() {
        "content" => Some(Node::content(ns, &r.id)),
        "ingests" => Some(Node::ingest(ns, &r.id)),
        k => k
            .strip_prefix("snapshots/")
            .map(|snapshotter| Node::snapshot(ns, snapshotter, &r.id)),
    }
}

impl Participant for LeasesGc {
    fn name(&self) -> &'static str {
        "leases"
    }

    fn owns(&self) -> &'static [Kind] {
        &[Kind::Lease]
    }

    fn roots(&self, tx: &WriteTx, pass: &Pass, emit: Emit<'_>) -> Result<()> {
        for (ns, lease) in tx.all_leases()? {
            if expired(&lease, pass.now) {
                continue;
            }
            emit(Node::lease(&ns, &lease.id));
            for r in tx.lease_resources_of(&ns, &lease.id)? {
                if let Some(n) = resource_node(&ns, &r) {
                    emit(n);
                }
            }
        }
        Ok(())
    }

    fn scan(&self, tx: &WriteTx, emit: Emit<'_>) -> Result<()> {
        for (ns, lease) in tx.all_leases()? {
            emit(Node::lease(&ns, &lease.id));
        }
        Ok(())
    }

    fn remove(&self, tx: &WriteTx, node: &Node) -> Result<()> {
        tx.lease_remove(&node.namespace, &node.key)?;
        Ok(())
    }
}
