//! Containers in garbage collection: each container keeps its snapshot and whatever its
//! `containerd.io/gc.ref.*` labels name.

use super::{CONTAINERS, Container};
use crate::error::Result;
use crate::gc::{Emit, Node, Participant, Pass, label_refs};
use crate::metadata::WriteTx;

/// The container records' roots.
pub struct ContainersGc;

impl Participant for ContainersGc {
    fn name(&self) -> &'static str {
        "containers"
    }

    fn roots(&self, tx: &WriteTx, _pass: &Pass, emit: Emit<'_>) -> Result<()> {
        for (key, c) in tx.scan::<Container>(CONTAINERS, "")? {
            let Some((ns, _)) = key.split_once('\0') else {
                continue;
            };
            if !c.snapshot_key.is_empty() {
                emit(Node::snapshot(ns, &c.snapshotter, &c.snapshot_key));
            }
            label_refs(ns, &c.labels, emit);
        }
        Ok(())
    }
}
