//! The fields of berthd's own events that subscribers can filter on
//! (`event.<field>`), one impl per event message.

use std::collections::BTreeMap;

use berth_api::containerd::events as ev;
use berth_api::containerd::services::images::v1 as img;

/// Exposes an event's filterable fields.
pub trait EventFields {
    fn fields(&self, out: &mut BTreeMap<String, String>);
}

fn put(out: &mut BTreeMap<String, String>, k: &str, v: &str) {
    if !v.is_empty() {
        out.insert(k.to_string(), v.to_string());
    }
}

fn put_labels(
    out: &mut BTreeMap<String, String>,
    labels: &std::collections::HashMap<String, String>,
) {
    for (k, v) in labels {
        out.insert(format!("labels.{k}"), v.clone());
    }
}

macro_rules! fields {
    ($t:ty, |$e:ident, $o:ident| $body:block) => {
        impl EventFields for $t {
            fn fields(&self, $o: &mut BTreeMap<String, String>) {
                let $e = self;
                $body
            }
        }
    };
}

fields!(ev::NamespaceCreate, |e, o| {
    put(o, "name", &e.name);
    put_labels(o, &e.labels);
});
fields!(ev::NamespaceUpdate, |e, o| {
    put(o, "name", &e.name);
    put_labels(o, &e.labels);
});
fields!(ev::NamespaceDelete, |e, o| {
    put(o, "name", &e.name);
});
fields!(ev::ContentDelete, |e, o| {
    put(o, "digest", &e.digest);
});
fields!(ev::SnapshotPrepare, |e, o| {
    put(o, "key", &e.key);
    put(o, "parent", &e.parent);
});
fields!(ev::SnapshotCommit, |e, o| {
    put(o, "key", &e.key);
    put(o, "name", &e.name);
});
fields!(ev::SnapshotRemove, |e, o| {
    put(o, "key", &e.key);
});
fields!(ev::ContainerCreate, |e, o| {
    put(o, "id", &e.id);
    put(o, "image", &e.image);
    if let Some(r) = &e.runtime {
        put(o, "runtime.name", &r.name);
    }
});
fields!(ev::ContainerUpdate, |e, o| {
    put(o, "id", &e.id);
    put(o, "image", &e.image);
    put(o, "snapshot_key", &e.snapshot_key);
    put_labels(o, &e.labels);
});
fields!(ev::ContainerDelete, |e, o| {
    put(o, "id", &e.id);
});
fields!(ev::TaskCreate, |e, o| {
    put(o, "container_id", &e.container_id);
    put(o, "bundle", &e.bundle);
    put(o, "checkpoint", &e.checkpoint);
});
fields!(ev::TaskStart, |e, o| {
    put(o, "container_id", &e.container_id);
});
fields!(ev::TaskDelete, |e, o| {
    put(o, "container_id", &e.container_id);
    put(o, "id", &e.id);
});
fields!(ev::TaskExit, |e, o| {
    put(o, "container_id", &e.container_id);
    put(o, "id", &e.id);
});
fields!(ev::TaskOom, |e, o| {
    put(o, "container_id", &e.container_id);
});
fields!(ev::TaskExecAdded, |e, o| {
    put(o, "container_id", &e.container_id);
    put(o, "exec_id", &e.exec_id);
});
fields!(ev::TaskExecStarted, |e, o| {
    put(o, "container_id", &e.container_id);
    put(o, "exec_id", &e.exec_id);
});
fields!(ev::TaskPaused, |e, o| {
    put(o, "container_id", &e.container_id);
});
fields!(ev::TaskResumed, |e, o| {
    put(o, "container_id", &e.container_id);
});
fields!(img::ImageCreate, |e, o| {
    put(o, "name", &e.name);
    put_labels(o, &e.labels);
});
fields!(img::ImageUpdate, |e, o| {
    put(o, "name", &e.name);
    put_labels(o, &e.labels);
});
fields!(img::ImageDelete, |e, o| {
    put(o, "name", &e.name);
});
