//! The labels garbage collection reads: roots, references to content and snapshots,
//! and lease expiry.

use super::{Emit, Node};
use crate::labels::Labels;

/// Present on content (or a snapshot): keep it whatever refers to it.
pub const GC_ROOT: &str = "containerd.io/gc.root";
/// `containerd.io/gc.ref.content[.<name>|/<name>] = <digest>`: keeps that blob.
pub const GC_REF_CONTENT: &str = "containerd.io/gc.ref.content";
/// `containerd.io/gc.ref.snapshot.<snapshotter>[/<name>] = <key>`: keeps that snapshot.
pub const GC_REF_SNAPSHOT: &str = "containerd.io/gc.ref.snapshot.";
/// On a lease: an RFC 3339 time after which the lease no longer holds anything.
pub const GC_EXPIRE: &str = "containerd.io/gc.expire";

/// Whether the labels make their object a root.
pub fn is_root(labels: &Labels) -> bool {
    labels.contains_key(GC_ROOT)
}

/// Emits the content and snapshots the labels of an object in `namespace` refer to.
pub fn label_refs(namespace: &str, labels: &Labels, emit: Emit<'_>) {
    for (k, v) in labels.range(GC_REF_CONTENT.to_string()..) {
        let Some(rest) = k.strip_prefix(GC_REF_CONTENT) else {
            break;
        };
        if (rest.is_empty() || rest.starts_with('.') || rest.starts_with('/')) && !v.is_empty() {
            emit(Node::content(namespace, v));
        }
    }
    for (k, v) in labels.range(GC_REF_SNAPSHOT.to_string()..) {
        let Some(rest) = k.strip_prefix(GC_REF_SNAPSHOT) else {
            break;
        };
        let snapshotter = rest.split('/').next().unwrap_or_default();
        if !snapshotter.is_empty() && !v.is_empty() {
            emit(Node::snapshot(namespace, snapshotter, v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_from_labels() {
        let labels: Labels = [
            ("containerd.io/gc.ref.content.config", "sha256:c"),
            ("containerd.io/gc.ref.content.l.0", "sha256:l0"),
            ("containerd.io/gc.ref.content/m", "sha256:m"),
            ("containerd.io/gc.ref.content", "sha256:bare"),
            ("containerd.io/gc.ref.contentx", "sha256:not"),
            ("containerd.io/gc.ref.snapshot.overlayfs", "chain"),
            ("containerd.io/gc.ref.snapshot.native/x", "k2"),
            ("containerd.io/gc.ref.snapshot.", "empty-snapshotter"),
            ("other", "sha256:no"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut got = Vec::new();
        label_refs("n", &labels, &mut |n| got.push(n));
        got.sort();
        let mut want = vec![
            Node::content("n", "sha256:c"),
            Node::content("n", "sha256:l0"),
            Node::content("n", "sha256:m"),
            Node::content("n", "sha256:bare"),
            Node::snapshot("n", "overlayfs", "chain"),
            Node::snapshot("n", "native", "k2"),
        ];
        want.sort();
        assert_eq!(got, want);
        assert!(!is_root(&labels));
    }
}
