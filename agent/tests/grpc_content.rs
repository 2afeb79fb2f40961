//! The content, images and leases services through a real gRPC connection: berthd's
//! router on a temporary unix socket inside the test, driven by berth-api's clients.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_agent::config::Config;
use berth_agent::core::Core;
use berth_api::client::{NsChannel, WithNamespace};
use berth_api::containerd::services::content::v1::{
    self as cpb, WriteAction, WriteContentRequest, WriteContentResponse,
    content_client::ContentClient,
};
use berth_api::containerd::services::events::v1::{SubscribeRequest, events_client::EventsClient};
use berth_api::containerd::services::images::v1::{self as ipb, images_client::ImagesClient};
use berth_api::containerd::services::leases::v1::{self as lpb, leases_client::LeasesClient};
use berth_api::containerd::types::Descriptor;
use prost_types::FieldMask;
use sha2::Digest as _;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::{Code, Request, Status, Streaming};

const MIB: usize = 1 << 20;

struct Server {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    core: Arc<Core>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("berthd.sock");
    let mut config = Config {
        root: dir.path().join("root"),
        state: dir.path().join("state"),
        ..Default::default()
    };
    config.grpc.address = sock.display().to_string();
    std::fs::create_dir_all(&config.root).unwrap();
    // The scheduler is not started: collections run only when a test asks (`sync`),
    // so none races the assertions.
    let core = Core::open(config).unwrap();
    let listener = UnixListener::bind(&sock).unwrap();
    let router = berth_agent::services::router(core.clone());
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming(UnixListenerStream::new(listener))
            .await
            .unwrap();
    });
    Server {
        _dir: dir,
        sock,
        core,
        task,
    }
}

impl Server {
    async fn channel(&self, ns: &str) -> NsChannel {
        let ch = berth_api::client::connect(self.sock.to_str().unwrap())
            .await
            .unwrap();
        tonic::service::interceptor::InterceptedService::new(ch, WithNamespace::new(ns).unwrap())
    }

    async fn content(&self, ns: &str) -> ContentClient<NsChannel> {
        ContentClient::new(self.channel(ns).await)
            .max_decoding_message_size(16 * MIB)
            .max_encoding_message_size(16 * MIB)
    }

    async fn images(&self, ns: &str) -> ImagesClient<NsChannel> {
        ImagesClient::new(self.channel(ns).await)
    }

    async fn leases(&self, ns: &str) -> LeasesClient<NsChannel> {
        LeasesClient::new(self.channel(ns).await)
    }
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn with_lease<T>(msg: T, lease: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert(berth_api::LEASE_HEADER, lease.parse().unwrap());
    r
}

/// One Write stream, driven message by message.
struct Writer {
    tx: mpsc::Sender<WriteContentRequest>,
    rx: Streaming<WriteContentResponse>,
}

impl Writer {
    async fn open(c: &mut ContentClient<NsChannel>, lease: Option<&str>) -> Writer {
        let (tx, rx) = mpsc::channel(4);
        let stream = ReceiverStream::new(rx);
        let req = match lease {
            Some(l) => with_lease(stream, l),
            None => Request::new(stream),
        };
        let rx = c.write(req).await.unwrap().into_inner();
        Writer { tx, rx }
    }

    async fn send(&mut self, req: WriteContentRequest) -> Result<WriteContentResponse, Status> {
        self.tx
            .send(req)
            .await
            .map_err(|_| Status::aborted("closed"))?;
        match self.rx.message().await? {
            Some(r) => Ok(r),
            None => Err(Status::unknown("stream ended without a reply")),
        }
    }

    async fn stat(
        &mut self,
        reference: &str,
        total: i64,
        expected: &str,
    ) -> Result<WriteContentResponse, Status> {
        self.send(WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: reference.into(),
            total,
            expected: expected.into(),
            ..Default::default()
        })
        .await
    }

    async fn write(&mut self, offset: i64, data: &[u8]) -> Result<WriteContentResponse, Status> {
        self.send(WriteContentRequest {
            action: WriteAction::Write as i32,
            offset,
            data: data.to_vec(),
            ..Default::default()
        })
        .await
    }

    async fn commit(
        &mut self,
        total: i64,
        offset: i64,
        expected: &str,
        labels: &[(&str, &str)],
    ) -> Result<WriteContentResponse, Status> {
        self.send(WriteContentRequest {
            action: WriteAction::Commit as i32,
            total,
            offset,
            expected: expected.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .await
    }
}

/// Writes a whole blob the way ctr does (1 MiB chunks) and returns its digest.
async fn put(
    c: &mut ContentClient<NsChannel>,
    data: &[u8],
    labels: &[(&str, &str)],
    lease: Option<&str>,
) -> String {
    let d = digest(data);
    let mut w = Writer::open(c, lease).await;
    w.stat(&format!("put-{d}"), data.len() as i64, &d)
        .await
        .unwrap();
    let mut off = 0;
    for chunk in data.chunks(MIB) {
        let r = w.write(off, chunk).await.unwrap();
        off += chunk.len() as i64;
        assert_eq!(r.offset, off);
    }
    let r = w.commit(data.len() as i64, off, &d, labels).await.unwrap();
    assert_eq!(r.digest, d);
    d
}

async fn info(c: &mut ContentClient<NsChannel>, d: &str) -> Result<cpb::Info, Status> {
    Ok(c.info(cpb::InfoRequest { digest: d.into() })
        .await?
        .into_inner()
        .info
        .unwrap())
}

async fn read(
    c: &mut ContentClient<NsChannel>,
    d: &str,
    offset: i64,
    size: i64,
) -> Vec<(i64, usize, Vec<u8>)> {
    let mut s = c
        .read(cpb::ReadContentRequest {
            digest: d.into(),
            offset,
            size,
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        out.push((m.offset, m.data.len(), m.data));
    }
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_protocol() {
    let srv = start().await;
    let mut c = srv.content("wp").await;
    let data = pattern(2 * MIB + 123);
    let d = digest(&data);

    // New ref: offset 0; first half written, then the stream is dropped.
    let mut w = Writer::open(&mut c, None).await;
    let r = w.stat("layer-x", data.len() as i64, &d).await.unwrap();
    assert_eq!((r.offset, r.total), (0, data.len() as i64));
    assert_eq!(r.action, WriteAction::Stat as i32);
    w.write(0, &data[..MIB]).await.unwrap();

    // While it is held, another writer on the ref is Unavailable.
    let mut other = Writer::open(&mut c, None).await;
    let err = other.stat("layer-x", 0, "").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("ref layer-x is locked"), "{err}");

    // Status shows the progress.
    let st = c
        .status(cpb::StatusRequest {
            r#ref: "layer-x".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!((st.offset, st.total), (MIB as i64, data.len() as i64));
    assert_eq!(st.expected, d);
    drop(w);

    // Resume from the stored offset (once the server has seen the stream go, as ctr
    // retries Unavailable); a wrong offset is refused.
    let (mut w, r) = loop {
        let mut w = Writer::open(&mut c, None).await;
        match w.stat("layer-x", data.len() as i64, &d).await {
            Ok(r) => break (w, r),
            Err(e) if e.code() == Code::Unavailable => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(r.offset, MIB as i64);
    assert_eq!(r.digest, digest(&data[..MIB]));
    let err = w.write(5, b"x").await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err}");

    // The failed stream's writer is gone by the time its error arrives.
    let mut w = Writer::open(&mut c, None).await;
    assert_eq!(
        w.stat("layer-x", data.len() as i64, &d)
            .await
            .unwrap()
            .offset,
        MIB as i64
    );
    // A STAT without ref reads the offset again, as ctr does.
    assert_eq!(w.stat("", 0, "").await.unwrap().offset, MIB as i64);
    let r = w.write(MIB as i64, &data[MIB..]).await.unwrap();
    assert_eq!(r.offset, data.len() as i64);
    let r = w
        .commit(data.len() as i64, data.len() as i64, &d, &[("k", "v")])
        .await
        .unwrap();
    assert_eq!(
        (r.offset, r.digest.as_str()),
        (data.len() as i64, d.as_str())
    );
    let i = info(&mut c, &d).await.unwrap();
    assert_eq!(i.size, data.len() as i64);
    assert_eq!(i.labels.get("k").map(String::as_str), Some("v"));

    // The expected digest is already there: AlreadyExists on the first message.
    let mut w = Writer::open(&mut c, None).await;
    let err = w.stat("again", data.len() as i64, &d).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err}");
    // Without an expected digest (ctr import), AlreadyExists comes at COMMIT.
    let mut w = Writer::open(&mut c, None).await;
    w.stat("tar-blobs/x", 0, "").await.unwrap();
    w.write(0, &data[..10]).await.unwrap();
    w.write(10, &data[10..]).await.unwrap();
    let err = w.commit(0, data.len() as i64, "", &[]).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err}");

    // Truncate: a write at 0 after data starts over.
    let small = b"small blob";
    let mut w = Writer::open(&mut c, None).await;
    w.stat("trunc", 0, "").await.unwrap();
    w.write(0, b"junk junk junk").await.unwrap();
    let r = w.write(0, small).await.unwrap();
    assert_eq!(r.offset, small.len() as i64);
    let r = w
        .commit(small.len() as i64, small.len() as i64, "", &[])
        .await
        .unwrap();
    assert_eq!(r.digest, digest(small));

    // Mismatches commit nothing and say what differed.
    let bad = b"these bytes";
    let mut w = Writer::open(&mut c, None).await;
    w.stat("bad-digest", 0, "").await.unwrap();
    w.write(0, bad).await.unwrap();
    let wrong = digest(b"other");
    let err = w
        .commit(0, bad.len() as i64, &wrong, &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert!(
        err.message().contains(&wrong) && err.message().contains(&digest(bad)),
        "{err}"
    );
    assert_eq!(
        info(&mut c, &digest(bad)).await.unwrap_err().code(),
        Code::NotFound
    );

    let mut w = Writer::open(&mut c, None).await;
    w.stat("bad-size", 0, "").await.unwrap();
    w.write(0, bad).await.unwrap();
    let err = w.commit(999, bad.len() as i64, "", &[]).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("999"), "{err}");
    assert_eq!(
        info(&mut c, &digest(bad)).await.unwrap_err().code(),
        Code::NotFound
    );

    // ListStatuses: [""] matches all; filters on ref. Abort removes.
    let lc = c.clone();
    let list = move |filters: Vec<String>| {
        let mut c = lc.clone();
        async move {
            let mut refs: Vec<String> = c
                .list_statuses(cpb::ListStatusesRequest { filters })
                .await
                .unwrap()
                .into_inner()
                .statuses
                .into_iter()
                .map(|s| s.r#ref)
                .collect();
            refs.sort();
            refs
        }
    };
    assert_eq!(list(vec!["".into()]).await, vec!["bad-digest", "bad-size"]);
    assert_eq!(list(vec!["ref==bad-size".into()]).await, vec!["bad-size"]);
    c.abort(cpb::AbortRequest {
        r#ref: "bad-size".into(),
    })
    .await
    .unwrap();
    assert_eq!(list(vec![]).await, vec!["bad-digest"]);
    let err = c
        .abort(cpb::AbortRequest {
            r#ref: "bad-size".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // No ref on the first message.
    let mut w = Writer::open(&mut c, None).await;
    assert_eq!(
        w.stat("", 0, "").await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_in_chunks_from_offsets() {
    let srv = start().await;
    let mut c = srv.content("rd").await;
    let data = pattern(2 * MIB + MIB / 2);
    let d = put(&mut c, &data, &[], None).await;

    let all = read(&mut c, &d, 0, 0).await;
    let sizes: Vec<usize> = all.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(sizes, vec![MIB, MIB, MIB / 2]);
    let offsets: Vec<i64> = all.iter().map(|(o, _, _)| *o).collect();
    assert_eq!(offsets, vec![0, MIB as i64, 2 * MIB as i64]);
    let joined: Vec<u8> = all.into_iter().flat_map(|(_, _, b)| b).collect();
    assert_eq!(joined, data);

    // ctr export reads 32 KiB at a time.
    let part = read(&mut c, &d, 100_000, 32 * 1024).await;
    assert_eq!(part.len(), 1);
    assert_eq!(part[0].0, 100_000);
    assert_eq!(part[0].2, &data[100_000..100_000 + 32 * 1024]);
    // Past the end: up to the end.
    let tail = read(&mut c, &d, data.len() as i64 - 5, 100).await;
    assert_eq!(tail[0].2, &data[data.len() - 5..]);

    let err = c
        .read(cpb::ReadContentRequest {
            digest: d.clone(),
            offset: data.len() as i64 + 1,
            size: 0,
        })
        .await;
    let code = match err {
        Err(s) => s.code(),
        Ok(r) => r.into_inner().message().await.unwrap_err().code(),
    };
    assert_eq!(code, Code::OutOfRange);
    // Another namespace cannot read it; a malformed digest is refused.
    let mut other = srv.content("rd-other").await;
    assert_eq!(
        info(&mut other, &d).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        info(&mut c, "sha256:nothex").await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_list_and_delete() {
    let srv = start().await;
    let mut c = srv.content("ll").await;
    let d1 = put(&mut c, b"one", &[("a", "1"), ("b", "2")], None).await;
    let d2 = put(&mut c, b"two", &[("a", "9")], None).await;

    let upd = |paths: &[&str], labels: &[(&str, &str)]| cpb::UpdateRequest {
        info: Some(cpb::Info {
            digest: d1.clone(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            // Go clients send zero times; they are ignored.
            created_at: Some(prost_types::Timestamp {
                seconds: -62_135_596_800,
                nanos: 0,
            }),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|s| s.to_string()).collect(),
        }),
    };
    let sorted = |m: HashMap<String, String>| {
        let mut v: Vec<(String, String)> = m.into_iter().collect();
        v.sort();
        v
    };
    // ctr content label: set one, empty value deletes.
    let i = c
        .update(upd(&["labels.c", "labels.b"], &[("c", "3"), ("b", "")]))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(
        sorted(i.labels),
        vec![("a".into(), "1".into()), ("c".into(), "3".into())]
    );
    let i = c
        .update(upd(&["labels"], &[("only", "x")]))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(sorted(i.labels), vec![("only".into(), "x".into())]);
    let i = c
        .update(upd(&[], &[("z", "0")]))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(sorted(i.labels), vec![("z".into(), "0".into())]);
    assert!(i.created_at.unwrap().seconds > 0);
    let err = c.update(upd(&["size"], &[])).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let lc = c.clone();
    let list = move |filters: &[&str]| {
        let mut c = lc.clone();
        let filters = filters.iter().map(|s| s.to_string()).collect();
        async move {
            let mut s = c
                .list(cpb::ListContentRequest { filters })
                .await
                .unwrap()
                .into_inner();
            let mut out = Vec::new();
            while let Some(batch) = s.message().await.unwrap() {
                out.extend(batch.info.into_iter().map(|i| i.digest));
            }
            out.sort();
            out
        }
    };
    let mut both = vec![d1.clone(), d2.clone()];
    both.sort();
    assert_eq!(list(&[]).await, both);
    assert_eq!(list(&["labels.a==9"]).await, vec![d2.clone()]);
    assert_eq!(list(&[&format!("digest=={d1}")]).await, vec![d1.clone()]);
    assert_eq!(list(&["labels.z", "labels.a"]).await, both);
    let err = c
        .list(cpb::ListContentRequest {
            filters: vec!["labels.=".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Delete publishes /content/delete.
    let mut ev = EventsClient::new(srv.channel("ll").await)
        .subscribe(SubscribeRequest {
            filters: vec!["topic==\"/content/delete\"".into()],
        })
        .await
        .unwrap()
        .into_inner();
    c.delete(cpb::DeleteContentRequest { digest: d2.clone() })
        .await
        .unwrap();
    let env = ev.message().await.unwrap().unwrap();
    assert_eq!(env.namespace, "ll");
    assert_eq!(
        env.event.unwrap().type_url,
        "containerd.events.ContentDelete"
    );
    assert_eq!(list(&[]).await, vec![d1.clone()]);
    let err = c
        .delete(cpb::DeleteContentRequest { digest: d2 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

fn desc(d: &str, size: usize) -> Descriptor {
    Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: d.into(),
        size: size as i64,
        annotations: HashMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_crud_events_and_gc() {
    let srv = start().await;
    let ns = "img";
    let mut c = srv.content(ns).await;
    let mut im = srv.images(ns).await;
    let mut leases = srv.leases(ns).await;
    let mut ev = EventsClient::new(srv.channel(ns).await)
        .subscribe(SubscribeRequest {
            filters: vec!["topic~=\"^/images/\"".into()],
        })
        .await
        .unwrap()
        .into_inner();

    // A pull's worth of content inside a lease, like ctr does it.
    let lease = leases
        .create(lpb::CreateRequest {
            id: String::new(),
            labels: [(
                "containerd.io/gc.expire".to_string(),
                "2999-01-01T00:00:00Z".to_string(),
            )]
            .into(),
        })
        .await
        .unwrap()
        .into_inner()
        .lease
        .unwrap()
        .id;
    assert!(!lease.is_empty());
    let layer = put(&mut c, &pattern(MIB + 7), &[], Some(&lease)).await;
    let config = put(&mut c, b"{\"config\":1}", &[], Some(&lease)).await;
    let manifest_bytes = b"{\"manifest\":1}";
    let manifest = put(
        &mut c,
        manifest_bytes,
        &[
            ("containerd.io/gc.ref.content.config", &config),
            ("containerd.io/gc.ref.content.l.0", &layer),
        ],
        Some(&lease),
    )
    .await;
    let rooted = put(&mut c, b"rooted", &[("containerd.io/gc.root", "x")], None).await;
    let loose = put(&mut c, b"loose", &[], None).await;
    let held = put(&mut c, b"held by a lease", &[], Some(&lease)).await;
    let res = leases
        .list_resources(lpb::ListResourcesRequest { id: lease.clone() })
        .await
        .unwrap()
        .into_inner()
        .resources;
    assert_eq!(res.len(), 4, "{res:?}");

    let image = |name: &str, target: Descriptor| ipb::Image {
        name: name.into(),
        labels: [("l".to_string(), "1".to_string())].into(),
        target: Some(target),
        ..Default::default()
    };
    let created = im
        .create(ipb::CreateImageRequest {
            image: Some(image(
                "docker.io/library/app:1",
                desc(&manifest, manifest_bytes.len()),
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert!(created.created_at.unwrap().seconds > 0);
    let e = ev.message().await.unwrap().unwrap();
    assert_eq!(e.topic, "/images/create");
    assert_eq!(
        e.event.unwrap().type_url,
        "containerd.services.images.v1.ImageCreate"
    );
    let err = im
        .create(ipb::CreateImageRequest {
            image: Some(image("docker.io/library/app:1", desc(&manifest, 14))),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    for bad in [
        image("", desc(&manifest, 14)),
        image("bad name", desc(&manifest, 14)),
        ipb::Image {
            name: "no-target:1".into(),
            ..Default::default()
        },
    ] {
        let err = im
            .create(ipb::CreateImageRequest { image: Some(bad) })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    }
    // ctr images tag: Get then Create with the same target.
    let got = im
        .get(ipb::GetImageRequest {
            name: "docker.io/library/app:1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    im.create(ipb::CreateImageRequest {
        image: Some(image(
            "docker.io/library/app:2",
            got.target.clone().unwrap(),
        )),
    })
    .await
    .unwrap();
    assert_eq!(ev.message().await.unwrap().unwrap().topic, "/images/create");

    let li = im.clone();
    let names = move |filters: &[&str]| {
        let mut im = li.clone();
        let filters = filters.iter().map(|s| s.to_string()).collect();
        async move {
            im.list(ipb::ListImagesRequest { filters })
                .await
                .unwrap()
                .into_inner()
                .images
                .into_iter()
                .map(|i| i.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names(&[]).await,
        vec!["docker.io/library/app:1", "docker.io/library/app:2"]
    );
    assert_eq!(
        names(&["name==docker.io/library/app:2"]).await,
        vec!["docker.io/library/app:2"]
    );
    assert_eq!(
        names(&[&format!("target.digest=={manifest}")]).await.len(),
        2
    );
    assert_eq!(
        names(&["target.mediatype~=manifest,labels.l==1"])
            .await
            .len(),
        2
    );

    // Update with masks; empty mask replaces.
    let mut u = image("docker.io/library/app:2", desc(&config, 12));
    u.labels = [("new".to_string(), "x".to_string())].into();
    let r = im
        .update(ipb::UpdateImageRequest {
            image: Some(u.clone()),
            update_mask: Some(FieldMask {
                paths: vec!["labels.new".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert_eq!(r.labels.len(), 2);
    assert_eq!(r.target.unwrap().digest, manifest);
    assert_eq!(ev.message().await.unwrap().unwrap().topic, "/images/update");
    let r = im
        .update(ipb::UpdateImageRequest {
            image: Some(u.clone()),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .image
        .unwrap();
    assert_eq!(r.labels.len(), 1);
    assert_eq!(r.target.unwrap().digest, config);
    assert_eq!(ev.message().await.unwrap().unwrap().topic, "/images/update");
    let err = im
        .update(ipb::UpdateImageRequest {
            image: Some(image("missing:1", desc(&config, 12))),
            update_mask: Some(FieldMask {
                paths: vec!["target".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // GC while the lease lives: only the loose blob goes.
    im.delete(ipb::DeleteImageRequest {
        name: "docker.io/library/app:2".into(),
        sync: true,
    })
    .await
    .unwrap();
    let e = ev.message().await.unwrap().unwrap();
    assert_eq!(e.topic, "/images/delete");
    for d in [&layer, &config, &manifest, &rooted, &held] {
        info(&mut c, d).await.unwrap_or_else(|e| panic!("{d}: {e}"));
    }
    assert_eq!(
        info(&mut c, &loose).await.unwrap_err().code(),
        Code::NotFound
    );
    let blob = |d: &str| {
        srv.core
            .config
            .root
            .join("content/blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    assert!(!blob(&loose).exists());

    // Lease gone (sync): what only it held goes; the image keeps its tree.
    leases
        .delete(lpb::DeleteRequest {
            id: lease.clone(),
            sync: true,
        })
        .await
        .unwrap();
    assert_eq!(
        info(&mut c, &held).await.unwrap_err().code(),
        Code::NotFound
    );
    assert!(!blob(&held).exists());
    for d in [&layer, &config, &manifest, &rooted] {
        info(&mut c, d).await.unwrap();
    }

    // Last image gone: its tree goes, the gc.root blob stays.
    im.delete(ipb::DeleteImageRequest {
        name: "docker.io/library/app:1".into(),
        sync: true,
    })
    .await
    .unwrap();
    for d in [&layer, &config, &manifest] {
        assert_eq!(info(&mut c, d).await.unwrap_err().code(), Code::NotFound);
        assert!(!blob(d).exists());
    }
    info(&mut c, &rooted).await.unwrap();
    let err = im
        .delete(ipb::DeleteImageRequest {
            name: "docker.io/library/app:1".into(),
            sync: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_header_is_required() {
    let srv = start().await;
    let ch = berth_api::client::connect(srv.sock.to_str().unwrap())
        .await
        .unwrap();
    let err = ContentClient::new(ch)
        .info(cpb::InfoRequest {
            digest: digest(b"x"),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}
