//! The mark and sweep over the participants, inside one write transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Kind, Node, Participant, Pass};
use crate::error::Result;
use crate::metadata::WriteTx;

/// What the transaction part of a collection did.
pub(super) struct Outcome {
    pub marked: usize,
    /// Removed nodes with the index of the participant that owned them.
    pub removed: Vec<(usize, Node)>,
}

/// Marks from every participant's roots, following references through the owner of
/// each node's kind, then removes every owned node that was not marked.
pub(super) fn run(tx: &WriteTx, parts: &[Arc<dyn Participant>], pass: &Pass) -> Result<Outcome> {
    let mut owner: HashMap<Kind, usize> = HashMap::new();
    for (i, p) in parts.iter().enumerate() {
        for k in p.owns() {
            if let Some(prev) = owner.insert(*k, i) {
                tracing::warn!(
                    kind = ?k,
                    first = parts[prev].name(),
                    second = p.name(),
                    "two garbage collection participants own one kind; the later wins"
                );
            }
        }
    }

    let mut marked: HashSet<Node> = HashSet::new();
    let mut queue: Vec<Node> = Vec::new();
    {
        let mut emit = |n: Node| {
            if marked.insert(n.clone()) {
                queue.push(n);
            }
        };
        for p in parts {
            p.roots(tx, pass, &mut emit)?;
        }
    }
    while let Some(node) = queue.pop() {
        let Some(&i) = owner.get(&node.kind) else {
            continue;
        };
        let mut found = Vec::new();
        parts[i].references(tx, &node, &mut |n| found.push(n))?;
        for n in found {
            if marked.insert(n.clone()) {
                queue.push(n);
            }
        }
    }

    let mut removed = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if p.owns().is_empty() {
            continue;
        }
        let mut all = Vec::new();
        p.scan(tx, &mut |n| all.push(n))?;
        for n in all {
            if owner.get(&n.kind) == Some(&i) && !marked.contains(&n) {
                p.remove(tx, &n)?;
                removed.push((i, n));
            }
        }
    }
    Ok(Outcome {
        marked: marked.len(),
        removed,
    })
}
