//! The snapshotter conformance suite (written once in `berth_snapshotter::testsuite`)
//! run against berthd's Snapshots service through a gRPC client wrapped in the same
//! `Snapshotter` trait: what the in-process overlayfs snapshotter passes, the served one
//! must pass too, including persistence across a berthd restart on the same root.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use berth_api::client::WithNamespace;
use berth_api::containerd::services::leases::v1::{CreateRequest, leases_client::LeasesClient};
use berth_api::containerd::services::snapshots::v1::{
    self as pb, CleanupRequest, CommitSnapshotRequest, ListSnapshotsRequest, MountsRequest,
    PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest, UpdateSnapshotRequest,
    UsageRequest, ViewSnapshotRequest, snapshots_client::SnapshotsClient,
};
use berth_integration::daemon;
use berth_snapshotter::testsuite::Factory;
use berth_snapshotter::{Error, Info, Kind, Labels, Mount, Result, Snapshotter, Usage};
use tonic::service::interceptor::InterceptedService;

const SNAPSHOTTER: &str = "overlayfs";
const NAMESPACE: &str = "conformance";

/// A berthd on a given root, stopped (SIGTERM) when dropped.
struct Berthd {
    child: Child,
}

impl Berthd {
    fn start(root: &Path) -> Berthd {
        let child = Command::new(daemon::binary("berthd").unwrap())
            .arg("--root")
            .arg(root.join("root"))
            .arg("--state")
            .arg(root.join("state"))
            .arg("--address")
            .arg(root.join("b.sock"))
            .args(["--log-level", "warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start berthd");
        Berthd { child }
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        berth_integration::procs::terminate(&mut self.child, Duration::from_secs(10)).ok();
    }
}

/// Adds the namespace and the lease to every call.
#[derive(Clone)]
struct WithLease {
    lease: String,
}

impl tonic::service::Interceptor for WithLease {
    fn call(
        &mut self,
        mut req: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        let md = req.metadata_mut();
        md.insert(berth_api::NAMESPACE_HEADER, NAMESPACE.parse().unwrap());
        md.insert(berth_api::LEASE_HEADER, self.lease.parse().unwrap());
        Ok(req)
    }
}

type LeasedChannel = InterceptedService<tonic::transport::Channel, WithLease>;

/// The gRPC Snapshots service as a `Snapshotter`.
struct Remote {
    client: SnapshotsClient<LeasedChannel>,
    _daemon: Berthd,
}

fn err(s: tonic::Status) -> Error {
    let msg = s.message().to_string();
    match s.code() {
        tonic::Code::NotFound => Error::NotFound(msg),
        tonic::Code::AlreadyExists => Error::AlreadyExists(msg),
        tonic::Code::FailedPrecondition => Error::FailedPrecondition(msg),
        tonic::Code::InvalidArgument => Error::InvalidArgument(msg),
        tonic::Code::Unimplemented => Error::NotImplemented(msg),
        _ => Error::Io {
            context: msg,
            source: std::io::Error::other(format!("{:?}", s.code())),
        },
    }
}

fn mounts_in(m: Vec<berth_api::containerd::types::Mount>) -> Vec<Mount> {
    m.into_iter()
        .map(|m| Mount {
            kind: m.r#type,
            source: m.source,
            options: m.options,
        })
        .collect()
}

fn labels_out(l: Labels) -> HashMap<String, String> {
    l.into_iter().collect()
}

fn info_in(i: pb::Info) -> Info {
    let t = |ts: Option<prost_types::Timestamp>| {
        berth_api::time::to_system(ts.as_ref()).unwrap_or(std::time::UNIX_EPOCH)
    };
    Info {
        name: i.name,
        parent: Some(i.parent).filter(|p| !p.is_empty()),
        kind: match pb::Kind::try_from(i.kind) {
            Ok(pb::Kind::View) => Kind::View,
            Ok(pb::Kind::Committed) => Kind::Committed,
            _ => Kind::Active,
        },
        labels: i.labels.into_iter().collect(),
        created_at: t(i.created_at),
        updated_at: t(i.updated_at),
    }
}

fn info_out(i: Info) -> pb::Info {
    pb::Info {
        name: i.name,
        parent: i.parent.unwrap_or_default(),
        kind: match i.kind {
            Kind::View => pb::Kind::View,
            Kind::Active => pb::Kind::Active,
            Kind::Committed => pb::Kind::Committed,
        } as i32,
        created_at: Some(berth_api::time::from_system(i.created_at)),
        updated_at: Some(berth_api::time::from_system(i.updated_at)),
        labels: labels_out(i.labels),
    }
}

#[async_trait]
impl Snapshotter for Remote {
    async fn stat(&self, key: &str) -> Result<Info> {
        let r = self
            .client
            .clone()
            .stat(StatSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.into(),
            })
            .await
            .map_err(err)?;
        Ok(info_in(r.into_inner().info.unwrap_or_default()))
    }

    async fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        let r = self
            .client
            .clone()
            .update(UpdateSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                info: Some(info_out(info)),
                update_mask: Some(prost_types::FieldMask {
                    paths: fieldpaths.to_vec(),
                }),
            })
            .await
            .map_err(err)?;
        Ok(info_in(r.into_inner().info.unwrap_or_default()))
    }

    async fn usage(&self, key: &str) -> Result<Usage> {
        let r = self
            .client
            .clone()
            .usage(UsageRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.into(),
            })
            .await
            .map_err(err)?
            .into_inner();
        Ok(Usage {
            size: r.size,
            inodes: r.inodes,
        })
    }

    async fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let r = self
            .client
            .clone()
            .mounts(MountsRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.into(),
            })
            .await
            .map_err(err)?;
        Ok(mounts_in(r.into_inner().mounts))
    }

    async fn prepare(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        let r = self
            .client
            .clone()
            .prepare(PrepareSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.into(),
                parent: parent.unwrap_or_default().into(),
                labels: labels_out(labels),
            })
            .await
            .map_err(err)?;
        Ok(mounts_in(r.into_inner().mounts))
    }

    async fn view(&self, key: &str, parent: Option<&str>, labels: Labels) -> Result<Vec<Mount>> {
        let r = self
            .client
            .clone()
            .view(ViewSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.into(),
                parent: parent.unwrap_or_default().into(),
                labels: labels_out(labels),
            })
            .await
            .map_err(err)?;
        Ok(mounts_in(r.into_inner().mounts))
    }

    async fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()> {
        self.client
            .clone()
            .commit(CommitSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                name: name.into(),
                key: key.into(),
                labels: labels_out(labels),
            })
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.client
            .clone()
            .remove(RemoveSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.into(),
            })
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Info>> {
        let mut stream = self
            .client
            .clone()
            .list(ListSnapshotsRequest {
                snapshotter: SNAPSHOTTER.into(),
                filters: vec![],
            })
            .await
            .map_err(err)?
            .into_inner();
        let mut out = Vec::new();
        while let Some(batch) = stream.message().await.map_err(err)? {
            out.extend(batch.info.into_iter().map(info_in));
        }
        Ok(out)
    }

    async fn cleanup(&self) -> Result<()> {
        self.client
            .clone()
            .cleanup(CleanupRequest {
                snapshotter: SNAPSHOTTER.into(),
            })
            .await
            .map_err(err)?;
        Ok(())
    }
}

struct Served;

#[async_trait]
impl Factory for Served {
    async fn open(&self, root: &Path) -> Result<Arc<dyn Snapshotter>> {
        let daemon = Berthd::start(root);
        let socket = root.join("b.sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        let channel = loop {
            if let Ok(c) = berth_api::client::connect(&socket.display().to_string()).await {
                let mut v = berth_api::containerd::services::version::v1::version_client::VersionClient::new(c.clone());
                if v.version(()).await.is_ok() {
                    break c;
                }
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not answer on {}",
                socket.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // As every client does, hold what it creates in a lease: the daemon's garbage
        // collector removes unreferenced snapshots.
        let ns = WithNamespace::new(NAMESPACE).unwrap();
        let mut leases = LeasesClient::new(InterceptedService::new(channel.clone(), ns));
        let lease = match leases
            .create(CreateRequest {
                id: "conformance".into(),
                ..Default::default()
            })
            .await
        {
            Ok(_) => "conformance".to_string(),
            Err(s) if s.code() == tonic::Code::AlreadyExists => "conformance".to_string(),
            Err(s) => panic!("create lease: {s}"),
        };
        let client = SnapshotsClient::new(InterceptedService::new(channel, WithLease { lease }));
        Ok(Arc::new(Remote {
            client,
            _daemon: daemon,
        }))
    }

    fn snapshots_dir(&self, _root: &Path) -> Option<PathBuf> {
        None
    }
}

berth_snapshotter::snapshotter_suite!(Served);
