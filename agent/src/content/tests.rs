use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::*;
use crate::events::Exchange;
use crate::gc::Trigger;
use crate::metadata::Metadata;

pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub md: Arc<Metadata>,
    pub events: Exchange,
    pub trigger: Trigger,
    pub store: Arc<ContentStore>,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let md = Arc::new(Metadata::open(&dir.path().join("meta.redb")).unwrap());
    let events = Exchange::new();
    let trigger = Trigger::default();
    let store =
        ContentStore::open(dir.path(), md.clone(), events.clone(), trigger.clone()).unwrap();
    Fixture {
        dir,
        md,
        events,
        trigger,
        store,
    }
}

/// Writes and commits `data` in `ns` under a ref derived from its digest.
pub(crate) async fn put(
    store: &Arc<ContentStore>,
    ns: &str,
    data: &[u8],
    labels: Labels,
) -> Digest {
    let d = Digest::of(data);
    let mut w = store
        .writer(
            ns,
            &format!("ref-{d}"),
            data.len() as i64,
            Some(d.clone()),
            None,
        )
        .await
        .unwrap();
    w.write_at(0, Bytes::copy_from_slice(data)).await.unwrap();
    w.commit(data.len() as i64, Some(d.clone()), labels)
        .await
        .unwrap();
    d
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn write_commit_read() {
    let f = fixture();
    let data = b"hello content".repeat(1000);
    let d = Digest::of(&data);
    let mut w = f.store.writer("ns", "r1", 0, None, None).await.unwrap();
    assert_eq!(w.offset(), 0);
    let mid = 5000;
    assert_eq!(
        w.write_at(0, Bytes::copy_from_slice(&data[..mid]))
            .await
            .unwrap(),
        mid as i64
    );
    w.write_at(mid as i64, Bytes::copy_from_slice(&data[mid..]))
        .await
        .unwrap();
    assert_eq!(w.digest(), d);
    assert_eq!(w.commit(0, None, labels(&[("a", "1")])).await.unwrap(), d);

    let info = f.store.info("ns", &d).unwrap();
    assert_eq!(info.size, data.len() as i64);
    assert_eq!(info.labels, labels(&[("a", "1")]));
    assert!(info.created_at > 0);
    let path = f.store.blob_path(&d);
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert!(
        std::fs::metadata(&path).unwrap().permissions().readonly(),
        "committed blobs are read-only"
    );
    assert!(
        std::fs::read_dir(f.dir.path().join("content/ingest"))
            .unwrap()
            .next()
            .is_none(),
        "ingest removed after commit"
    );
    assert!(matches!(
        f.store.status("ns", "r1"),
        Err(Error::NotFound(_))
    ));

    let r = f.store.reader("ns", &d).unwrap();
    let mut buf = vec![0u8; 10];
    assert_eq!(r.read_at(&mut buf, 6).unwrap(), 10);
    assert_eq!(&buf, &data[6..16]);
    assert_eq!(r.read_at(&mut buf, data.len() as u64 - 3).unwrap(), 3);
    let mut rest = Vec::new();
    r.into_async_read(100)
        .unwrap()
        .read_to_end(&mut rest)
        .await
        .unwrap();
    assert_eq!(rest, &data[100..]);
    assert_eq!(f.store.read_all("ns", &d, 1 << 20).await.unwrap(), data);
    assert!(matches!(
        f.store.read_all("ns", &d, 10).await,
        Err(Error::FailedPrecondition(_))
    ));

    // Another namespace does not see it.
    assert!(matches!(f.store.info("other", &d), Err(Error::NotFound(_))));
    assert!(matches!(
        f.store.reader("other", &d),
        Err(Error::NotFound(_))
    ));
    assert!(!f.store.exists("other", &d).unwrap());
    // The namespace exists implicitly now.
    assert!(f.md.namespace_get("ns").is_ok());
}

#[tokio::test]
async fn chunks_honour_offset_and_size() {
    let f = fixture();
    let data: Vec<u8> = (0..(CHUNK_SIZE * 2 + 10))
        .map(|i| (i % 251) as u8)
        .collect();
    let d = put(&f.store, "ns", &data, Labels::new()).await;
    let collect = |offset: i64, len: i64| {
        let r = f.store.reader("ns", &d).unwrap();
        async move {
            let mut rx = r.into_chunks(offset, len).unwrap();
            let mut out = Vec::new();
            let mut sizes = Vec::new();
            while let Some(c) = rx.recv().await {
                let (at, bytes) = c.unwrap();
                assert_eq!(at as usize, offset.max(0) as usize + out.len());
                sizes.push(bytes.len());
                out.extend(bytes);
            }
            (out, sizes)
        }
    };
    let (all, sizes) = collect(0, 0).await;
    assert_eq!(all, data);
    assert_eq!(sizes, vec![CHUNK_SIZE, CHUNK_SIZE, 10]);
    let (part, _) = collect(7, 20).await;
    assert_eq!(part, &data[7..27]);
    let (tail, _) = collect(CHUNK_SIZE as i64 + 5, 1 << 40).await;
    assert_eq!(tail, &data[CHUNK_SIZE + 5..]);
    let (none, _) = collect(data.len() as i64, 0).await;
    assert!(none.is_empty());
    let r = f.store.reader("ns", &d).unwrap();
    assert!(matches!(
        r.into_chunks(data.len() as i64 + 1, 0),
        Err(Error::OutOfRange(_))
    ));
}

#[tokio::test]
async fn resume_and_truncate() {
    let f = fixture();
    let data = b"0123456789abcdef".repeat(100);
    let d = Digest::of(&data);
    let mut w = f
        .store
        .writer("ns", "resume", data.len() as i64, Some(d.clone()), None)
        .await
        .unwrap();
    w.write_at(0, Bytes::copy_from_slice(&data[..700]))
        .await
        .unwrap();
    drop(w);

    let s = f.store.status("ns", "resume").unwrap();
    assert_eq!((s.offset, s.total), (700, data.len() as i64));
    assert_eq!(s.expected.as_ref(), Some(&d));
    assert!(s.started_at > 0 && s.updated_at >= s.started_at);

    // Resume where it stopped; a write elsewhere is refused.
    let mut w = f
        .store
        .writer("ns", "resume", data.len() as i64, Some(d.clone()), None)
        .await
        .unwrap();
    assert_eq!(w.offset(), 700);
    assert_eq!(w.digest(), Digest::of(&data[..700]));
    assert!(matches!(
        w.write_at(10, Bytes::from_static(b"x")).await,
        Err(Error::OutOfRange(_))
    ));
    // Offset 0 starts over.
    w.write_at(0, Bytes::from_static(b"garbage")).await.unwrap();
    assert_eq!(w.offset(), 7);
    w.write_at(0, Bytes::copy_from_slice(&data)).await.unwrap();
    assert_eq!(w.offset(), data.len() as i64);
    w.commit(data.len() as i64, Some(d.clone()), Labels::new())
        .await
        .unwrap();
    assert_eq!(f.store.info("ns", &d).unwrap().size, data.len() as i64);
}

#[tokio::test]
async fn changed_total_restarts_the_ingest() {
    let f = fixture();
    let mut w = f.store.writer("ns", "t", 100, None, None).await.unwrap();
    w.write_at(0, Bytes::from_static(b"abc")).await.unwrap();
    drop(w);
    let w = f.store.writer("ns", "t", 200, None, None).await.unwrap();
    assert_eq!(w.offset(), 0);
    assert_eq!(w.total(), 200);
}

#[tokio::test]
async fn one_writer_per_ref() {
    let f = fixture();
    let w = f.store.writer("ns", "locked", 0, None, None).await.unwrap();
    let err = f
        .store
        .writer("ns", "locked", 0, None, None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("ref locked is locked"), "{err}");
    // Abort is refused too while the writer lives.
    assert!(matches!(
        f.store.abort("ns", "locked"),
        Err(Error::Unavailable(_))
    ));
    // The same ref in another namespace is another ingest.
    let other = f
        .store
        .writer("ns2", "locked", 0, None, None)
        .await
        .unwrap();
    drop(other);
    drop(w);
    f.store.writer("ns", "locked", 0, None, None).await.unwrap();
}

#[tokio::test]
async fn mismatches_commit_nothing() {
    let f = fixture();
    let data = b"some bytes";
    let d = Digest::of(data);
    let wrong = Digest::of(b"other bytes");

    let mut w = f.store.writer("ns", "size", 0, None, None).await.unwrap();
    w.write_at(0, Bytes::from_static(data)).await.unwrap();
    let err = w.commit(99, None, Labels::new()).await.unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("10 bytes") && msg.contains("99"), "{msg}");
    assert!(msg.contains("nothing was committed"), "{msg}");

    let mut w = f.store.writer("ns", "digest", 0, None, None).await.unwrap();
    w.write_at(0, Bytes::from_static(data)).await.unwrap();
    let err = w
        .commit(0, Some(wrong.clone()), Labels::new())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{msg}");
    assert!(
        msg.contains(d.as_str()) && msg.contains(wrong.as_str()),
        "{msg}"
    );

    assert!(matches!(f.store.info("ns", &d), Err(Error::NotFound(_))));
    assert!(!f.store.blob_path(&d).exists());
    // The ingest stays for the client to retry or abort.
    assert_eq!(f.store.status("ns", "digest").unwrap().offset, 10);
    f.store.abort("ns", "digest").unwrap();
    assert!(matches!(
        f.store.status("ns", "digest"),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        f.store.abort("ns", "digest"),
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn already_exists() {
    let f = fixture();
    let d = put(&f.store, "ns", b"blob", Labels::new()).await;
    // Expected digest already there: refused at open.
    let err = f
        .store
        .writer("ns", "again", 4, Some(d.clone()), None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    // Without an expected digest the data is written, and commit says so.
    let mut w = f.store.writer("ns", "again", 0, None, None).await.unwrap();
    w.write_at(0, Bytes::from_static(b"blob")).await.unwrap();
    let err = w.commit(4, None, Labels::new()).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err}");
    // ... and the ingest is consumed either way.
    assert!(matches!(
        f.store.status("ns", "again"),
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn blobs_are_shared_across_namespaces() {
    let f = fixture();
    let data = b"shared bytes";
    let d = put(&f.store, "a", data, Labels::new()).await;
    let w = f
        .store
        .writer("b", "s", 0, Some(d.clone()), None)
        .await
        .unwrap();
    assert!(w.is_complete());
    assert_eq!(w.offset(), data.len() as i64);
    assert_eq!(w.digest(), d);
    let s = f.store.status("b", "s").unwrap();
    assert_eq!((s.offset, s.total), (12, 12));
    w.commit(12, Some(d.clone()), labels(&[("b", "yes")]))
        .await
        .unwrap();
    let info = f.store.info("b", &d).unwrap();
    assert_eq!(info.labels, labels(&[("b", "yes")]));
    assert!(f.store.info("a", &d).unwrap().labels.is_empty());

    // A client that rewrites anyway gets a real ingest.
    let mut w = f
        .store
        .writer("c", "s", 0, Some(d.clone()), None)
        .await
        .unwrap();
    w.write_at(0, Bytes::from_static(data)).await.unwrap();
    assert!(!w.is_complete());
    w.commit(12, None, Labels::new()).await.unwrap();
    assert!(f.store.exists("c", &d).unwrap());
}

#[tokio::test]
async fn update_labels_with_masks() {
    let f = fixture();
    let d = put(&f.store, "ns", b"x", labels(&[("a", "1"), ("b", "2")])).await;
    let upd = labels(&[("a", "9"), ("c", "3"), ("b", "")]);
    let i = f
        .store
        .update("ns", &d, &upd, &["labels.a".into(), "labels.b".into()])
        .unwrap();
    assert_eq!(i.labels, labels(&[("a", "9")]));
    let i = f.store.update("ns", &d, &upd, &["labels".into()]).unwrap();
    assert_eq!(i.labels, labels(&[("a", "9"), ("c", "3")]));
    let i = f
        .store
        .update("ns", &d, &labels(&[("z", "0")]), &[])
        .unwrap();
    assert_eq!(i.labels, labels(&[("z", "0")]));
    assert!(i.updated_at >= i.created_at);
    assert!(matches!(
        f.store.update("ns", &d, &upd, &["size".into()]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        f.store.update("other", &d, &upd, &[]),
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn list_and_delete() {
    let f = fixture();
    let d1 = put(&f.store, "ns", b"one", labels(&[("kind", "x")])).await;
    let d2 = put(&f.store, "ns", b"two", labels(&[("kind", "y")])).await;
    put(&f.store, "other", b"three", Labels::new()).await;
    let all = f.store.list("ns", &Filter::default()).unwrap();
    assert_eq!(all.len(), 2);
    let f1 = Filter::parse("labels.kind==x").unwrap();
    let got = f.store.list("ns", &f1).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].digest, d1);
    let f2 = Filter::parse(&format!("digest=={d2}")).unwrap();
    assert_eq!(f.store.list("ns", &f2).unwrap()[0].digest, d2);
    let f3 = Filter::parse("size==3,labels.kind").unwrap();
    assert_eq!(f.store.list("ns", &f3).unwrap().len(), 2);

    let mut sub = f.events.subscribe();
    f.store.delete("ns", &d1, None).unwrap();
    let ev = sub.next(&Filter::default()).await.unwrap();
    assert_eq!(ev.topic, "/content/delete");
    assert_eq!(ev.fields.get("digest"), Some(&d1.to_string()));
    assert!(f.trigger.pending(), "a delete schedules garbage collection");
    assert!(matches!(f.store.info("ns", &d1), Err(Error::NotFound(_))));
    assert!(matches!(
        f.store.delete("ns", &d1, None),
        Err(Error::NotFound(_))
    ));
    // The bytes stay until garbage collection.
    assert!(f.store.blob_path(&d1).exists());
}

#[tokio::test]
async fn statuses_filter_by_ref() {
    let f = fixture();
    let w1 = f
        .store
        .writer("ns", "layer-1", 10, None, None)
        .await
        .unwrap();
    let w2 = f
        .store
        .writer("ns", "config-1", 0, None, None)
        .await
        .unwrap();
    f.store
        .writer("other", "layer-2", 0, None, None)
        .await
        .unwrap();
    let all = f
        .store
        .list_statuses("ns", &Filter::parse_all(&[""]).unwrap())
        .unwrap();
    let refs: Vec<_> = all.iter().map(|s| s.reference.as_str()).collect();
    assert_eq!(refs, vec!["config-1", "layer-1"]);
    let only = f
        .store
        .list_statuses("ns", &Filter::parse("ref~=^layer").unwrap())
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].total, 10);
    drop((w1, w2));
}

#[tokio::test]
async fn leases_hold_ingests_and_blobs() {
    let f = fixture();
    let l = f.md.lease_create("ns", "l1", Labels::new()).unwrap();
    let data = b"leased";
    let d = Digest::of(data);
    let mut w = f
        .store
        .writer("ns", "lr", 0, Some(d.clone()), Some(&l.id))
        .await
        .unwrap();
    let res = f.md.lease_resources("ns", &l.id).unwrap();
    assert_eq!(res.len(), 1);
    assert_eq!(
        (res[0].kind.as_str(), res[0].id.as_str()),
        ("ingests", "lr")
    );
    w.write_at(0, Bytes::from_static(data)).await.unwrap();
    w.commit(0, None, Labels::new()).await.unwrap();
    let res = f.md.lease_resources("ns", &l.id).unwrap();
    assert_eq!(res.len(), 1);
    assert_eq!(
        (res[0].kind.as_str(), res[0].id.as_str()),
        ("content", d.as_str())
    );

    // A second lease asking for existing content gets it too, with AlreadyExists.
    let l2 = f.md.lease_create("ns", "l2", Labels::new()).unwrap();
    assert!(matches!(
        f.store
            .writer("ns", "lr", 0, Some(d.clone()), Some(&l2.id))
            .await,
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(f.md.lease_resources("ns", &l2.id).unwrap().len(), 1);
    // An unknown lease is refused.
    assert!(matches!(
        f.store.writer("ns", "x", 0, None, Some("nope")).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn write_blob_verifies() {
    let f = fixture();
    let data: Vec<u8> = (0..3 * CHUNK_SIZE + 17)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let d = Digest::of(&data);
    let out = f
        .store
        .write_blob(
            "ns",
            "wb",
            &data[..],
            data.len() as i64,
            &d,
            Labels::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out, WriteOutcome::Committed);
    assert_eq!(std::fs::read(f.store.blob_path(&d)).unwrap(), data);
    let again = f
        .store
        .write_blob(
            "ns",
            "wb",
            &data[..],
            data.len() as i64,
            &d,
            Labels::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(again, WriteOutcome::AlreadyExists);

    let bad = Digest::of(b"not it");
    let err = f
        .store
        .write_blob("ns", "bad", &data[..], 0, &bad, Labels::new(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(bad.as_str()), "{err}");
    assert!(!f.store.blob_path(&bad).exists());
    assert!(matches!(
        f.store.status("ns", "bad"),
        Err(Error::NotFound(_))
    ));

    // A short body fails the size check.
    let d2 = Digest::of(b"abc");
    let err = f
        .store
        .write_blob("ns", "short", &b"ab"[..], 3, &d2, Labels::new(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
}

#[tokio::test]
async fn bad_input_is_refused() {
    let f = fixture();
    assert!(matches!(
        f.store.writer("ns", "", 0, None, None).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        f.store.writer("ns", "a\0b", 0, None, None).await,
        Err(Error::InvalidArgument(_))
    ));
    let sha512 = Digest::parse(&format!("sha512:{}", "a".repeat(128))).unwrap();
    assert!(matches!(
        f.store.writer("ns", "x", 0, Some(sha512), None).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        f.store.writer("bad/ns", "x", 0, None, None).await,
        Err(Error::InvalidArgument(_))
    ));
}
