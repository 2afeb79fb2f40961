//! Snapshotters: filled by the snapshotter work.
