use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::*;
use crate::config::GcConfig;
use crate::content::tests::{Fixture, fixture, put};
use crate::content::{ContentGc, Descriptor, Digest};
use crate::images::{Image, Images, ImagesGc};
use crate::labels::Labels;

/// A participant over an in-memory graph, standing in for a snapshot owner.
struct FakeSnapshots {
    roots: BTreeSet<String>,
    /// key -> parent
    parents: BTreeMap<String, String>,
    live: Mutex<BTreeSet<String>>,
    cleaned: Mutex<Vec<Node>>,
}

impl FakeSnapshots {
    fn new(keys: &[&str], parents: &[(&str, &str)], roots: &[&str]) -> Self {
        FakeSnapshots {
            roots: roots.iter().map(|s| s.to_string()).collect(),
            parents: parents
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            live: Mutex::new(keys.iter().map(|s| s.to_string()).collect()),
            cleaned: Mutex::new(Vec::new()),
        }
    }

    fn live(&self) -> Vec<String> {
        self.live.lock().unwrap().iter().cloned().collect()
    }
}

impl Participant for FakeSnapshots {
    fn name(&self) -> &'static str {
        "fake-snapshots"
    }

    fn owns(&self) -> &'static [Kind] {
        &[Kind::Snapshot]
    }

    fn roots(&self, _tx: &WriteTx, _pass: &Pass, emit: Emit<'_>) -> Result<()> {
        for r in &self.roots {
            emit(Node::snapshot("ns", "fake", r));
        }
        Ok(())
    }

    fn references(&self, _tx: &WriteTx, node: &Node, emit: Emit<'_>) -> Result<()> {
        let key = node.key.strip_prefix("fake/").unwrap_or_default();
        if let Some(p) = self.parents.get(key) {
            emit(Node::snapshot(&node.namespace, "fake", p));
        }
        Ok(())
    }

    fn scan(&self, _tx: &WriteTx, emit: Emit<'_>) -> Result<()> {
        for k in self.live.lock().unwrap().iter() {
            emit(Node::snapshot("ns", "fake", k));
        }
        Ok(())
    }

    fn remove(&self, _tx: &WriteTx, node: &Node) -> Result<()> {
        let key = node.key.strip_prefix("fake/").unwrap_or_default();
        self.live.lock().unwrap().remove(key);
        Ok(())
    }

    fn cleanup(&self, removed: &[Node]) -> Result<()> {
        self.cleaned.lock().unwrap().extend_from_slice(removed);
        Ok(())
    }
}

struct Env {
    f: Fixture,
    gc: Arc<Collector>,
    images: Images,
}

fn env() -> Env {
    let f = fixture();
    let gc = Collector::new(f.md.clone(), GcConfig::default(), f.trigger.clone());
    gc.register(Arc::new(LeasesGc));
    gc.register(Arc::new(ImagesGc));
    gc.register(Arc::new(ContentGc::new(
        f.store.clone(),
        Duration::from_secs(24 * 3600),
    )));
    let images = Images::new(f.md.clone(), f.events.clone(), gc.clone());
    Env { f, gc, images }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn image(name: &str, target: &Digest, size: i64) -> Image {
    Image {
        name: name.into(),
        labels: Labels::new(),
        target: Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: target.clone(),
            size,
            annotations: Labels::new(),
        },
        created_at: 0,
        updated_at: 0,
    }
}

impl Env {
    fn collect_at(&self, now: SystemTime) -> Report {
        self.gc.collect_blocking(now).unwrap()
    }

    fn collect(&self) -> Report {
        self.collect_at(SystemTime::now())
    }

    fn has(&self, ns: &str, d: &Digest) -> bool {
        self.f.store.exists(ns, d).unwrap()
    }

    fn on_disk(&self, d: &Digest) -> bool {
        self.f.store.blob_path(d).exists()
    }
}

#[tokio::test]
async fn images_keep_their_tree_and_the_rest_goes() {
    let e = env();
    let s = &e.f.store;
    let layer = put(s, "ns", b"layer", Labels::new()).await;
    let config = put(s, "ns", b"config", Labels::new()).await;
    let manifest = put(
        s,
        "ns",
        b"manifest",
        labels(&[
            ("containerd.io/gc.ref.content.config", config.as_str()),
            ("containerd.io/gc.ref.content.l.0", layer.as_str()),
        ]),
    )
    .await;
    let orphan = put(s, "ns", b"orphan", Labels::new()).await;
    let rooted = put(s, "ns", b"rooted", labels(&[(GC_ROOT, "now")])).await;
    e.images
        .create("ns", image("docker.io/library/x:1", &manifest, 8))
        .unwrap();

    let r = e.collect();
    assert_eq!(r.removed, vec![Node::content("ns", orphan.as_str())]);
    for d in [&layer, &config, &manifest, &rooted] {
        assert!(e.has("ns", d) && e.on_disk(d), "{d} kept");
    }
    assert!(!e.has("ns", &orphan));
    assert!(!e.on_disk(&orphan), "unreferenced blob file removed");

    // Deleting the image (sync) takes its whole tree.
    e.images
        .delete("ns", "docker.io/library/x:1", true)
        .await
        .unwrap();
    for d in [&layer, &config, &manifest] {
        assert!(!e.has("ns", d) && !e.on_disk(d), "{d} collected");
    }
    assert!(e.on_disk(&rooted));
}

#[tokio::test]
async fn leases_hold_until_deleted_or_expired() {
    let e = env();
    let md = &e.f.md;
    let forever = md.lease_create("ns", "forever", Labels::new()).unwrap();
    let later = md
        .lease_create(
            "ns",
            "later",
            labels(&[(GC_EXPIRE, "2999-01-01T00:00:00Z")]),
        )
        .unwrap();
    let gone = md
        .lease_create("ns", "gone", labels(&[(GC_EXPIRE, "2001-01-01T00:00:00Z")]))
        .unwrap();
    let mut held = Vec::new();
    for (lease, data) in [(&forever, b"a"), (&later, b"b"), (&gone, b"c")] {
        let d = Digest::of(data);
        let mut w =
            e.f.store
                .writer("ns", &format!("r{d}"), 1, Some(d.clone()), Some(&lease.id))
                .await
                .unwrap();
        w.write_at(0, Bytes::copy_from_slice(data)).await.unwrap();
        w.commit(1, None, Labels::new()).await.unwrap();
        held.push(d);
    }
    let r = e.collect();
    assert!(r.removed.contains(&Node::lease("ns", "gone")));
    assert!(r.removed.contains(&Node::content("ns", held[2].as_str())));
    assert!(e.has("ns", &held[0]) && e.has("ns", &held[1]));
    assert!(!e.on_disk(&held[2]));
    let ids: Vec<_> = md
        .lease_list("ns")
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, vec!["forever", "later"]);

    // Once "later" has expired (collect as if in 3000) only the unexpiring lease holds.
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(32_503_680_000);
    e.collect_at(far);
    assert!(e.has("ns", &held[0]));
    assert!(!e.has("ns", &held[1]));
    md.lease_delete("ns", "forever").unwrap();
    e.collect();
    assert!(!e.has("ns", &held[0]) && !e.on_disk(&held[0]));
}

#[tokio::test]
async fn shared_blob_file_outlives_one_namespace() {
    let e = env();
    let d = put(&e.f.store, "a", b"shared", labels(&[(GC_ROOT, "x")])).await;
    put(&e.f.store, "b", b"shared", labels(&[(GC_ROOT, "x")])).await;
    e.f.store.delete("a", &d, None).unwrap();
    e.collect();
    assert!(e.on_disk(&d), "namespace b still has it");
    e.f.store.delete("b", &d, None).unwrap();
    e.collect();
    assert!(!e.on_disk(&d));
}

#[tokio::test]
async fn ingests_expire_unless_held() {
    let e = env();
    let s = &e.f.store;
    let md = &e.f.md;
    let lease = md.lease_create("ns", "l", Labels::new()).unwrap();
    for (r, l) in [("stale", None), ("leased", Some(lease.id.as_str()))] {
        let mut w = s.writer("ns", r, 0, None, l).await.unwrap();
        w.write_at(0, Bytes::from_static(b"partial")).await.unwrap();
    }
    let busy = s.writer("ns", "busy", 0, None, None).await.unwrap();

    // Fresh ingests stay.
    assert!(e.collect().removed.is_empty());
    let refs = |e: &Env| -> Vec<String> {
        e.f.store
            .list_statuses("ns", &crate::filters::Filter::default())
            .unwrap()
            .into_iter()
            .map(|s| s.reference)
            .collect()
    };
    assert_eq!(refs(&e), vec!["busy", "leased", "stale"]);

    // A day later only the stale one goes, directory and all.
    let later = SystemTime::now() + Duration::from_secs(25 * 3600);
    let r = e.collect_at(later);
    assert_eq!(r.removed, vec![Node::ingest("ns", "stale")]);
    assert_eq!(refs(&e), vec!["busy", "leased"]);
    let dirs = std::fs::read_dir(e.f.dir.path().join("content/ingest"))
        .unwrap()
        .count();
    assert_eq!(dirs, 2);
    drop(busy);
}

#[tokio::test]
async fn snapshot_hook_marks_through_labels_and_parents() {
    let e = env();
    let snaps = Arc::new(FakeSnapshots::new(
        &["base", "top", "unused", "rooted", "rooted-parent"],
        &[("top", "base"), ("rooted", "rooted-parent")],
        &["rooted"],
    ));
    e.gc.register(snaps.clone());
    let config = put(
        &e.f.store,
        "ns",
        b"config",
        labels(&[("containerd.io/gc.ref.snapshot.fake", "top")]),
    )
    .await;
    e.images.create("ns", image("img:1", &config, 6)).unwrap();
    let r = e.collect();
    assert_eq!(r.removed, vec![Node::snapshot("ns", "fake", "unused")]);
    assert_eq!(snaps.live(), vec!["base", "rooted", "rooted-parent", "top"]);
    assert_eq!(
        *snaps.cleaned.lock().unwrap(),
        vec![Node::snapshot("ns", "fake", "unused")]
    );

    // A lease can hold a snapshot too.
    let l = e.f.md.lease_create("ns", "l", Labels::new()).unwrap();
    e.f.md
        .lease_add_resource(
            "ns",
            &l.id,
            &crate::metadata::LeaseResource {
                kind: "snapshots/fake".into(),
                id: "top".into(),
            },
        )
        .unwrap();
    e.images.delete("ns", "img:1", false).await.unwrap();
    e.collect();
    assert_eq!(snaps.live(), vec!["base", "rooted", "rooted-parent", "top"]);
    e.f.md.lease_delete("ns", &l.id).unwrap();
    e.collect();
    assert_eq!(snaps.live(), vec!["rooted", "rooted-parent"]);
}

#[tokio::test]
async fn scheduler_runs_after_a_trigger() {
    let mut e = env();
    let cfg = GcConfig {
        schedule_delay: Duration::from_millis(10),
        ..Default::default()
    };
    e.gc = Collector::new(e.f.md.clone(), cfg, e.f.trigger.clone());
    e.gc.register(Arc::new(ContentGc::new(
        e.f.store.clone(),
        Duration::from_secs(3600),
    )));
    let d = put(&e.f.store, "ns", b"soon gone", Labels::new()).await;
    let task = e.gc.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while e.on_disk(&d) {
        assert!(std::time::Instant::now() < deadline, "collection never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
}
