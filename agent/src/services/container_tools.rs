//! berth.v1.ContainerTools: converts and delegates to `container_tools` (`top`, `stats`,
//! `port`, `cp`, `diff`, `commit`, `export`, `import`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use berth_api::berth::v1::{self as pb, container_tools_server};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::namespace;
use crate::container_tools as ct;
use crate::core::Core;
use crate::error::Error;
use crate::images::stream::ChannelReader;

type Stream_<T> = tonic::codegen::BoxStream<T>;

pub struct ContainerTools {
    core: Arc<Core>,
}

impl ContainerTools {
    pub fn new(core: Arc<Core>) -> Self {
        ContainerTools { core }
    }
}

fn stat_out(s: ct::PathStat) -> pb::PathStat {
    pb::PathStat {
        name: s.name,
        size: s.size,
        mode: s.mode,
        mtime: Some(berth_api::time::from_unix_nanos(s.mtime)),
        link_target: s.link_target,
    }
}

fn stats_out(s: ct::Stats) -> pb::ContainerStats {
    let m = s.sample;
    pb::ContainerStats {
        id: m.id,
        name: m.name,
        running: m.running,
        cpu_percent: s.cpu_percent,
        memory_usage: m.memory_usage,
        memory_limit: m.memory_limit,
        memory_percent: s.memory_percent,
        net_rx: m.net_rx,
        net_tx: m.net_tx,
        block_read: m.block_read,
        block_write: m.block_write,
        pids: m.pids,
        read: Some(berth_api::time::from_unix_nanos(m.read)),
    }
}

/// A tar channel of the tools as a stream of chunks.
fn chunks(
    rx: mpsc::Receiver<crate::error::Result<Bytes>>,
    first: Option<pb::ArchiveChunk>,
) -> Stream_<pb::ArchiveChunk> {
    let rest = ReceiverStream::new(rx).map(|r| {
        r.map(|data| pb::ArchiveChunk {
            data: data.to_vec(),
            stat: None,
        })
        .map_err(Status::from)
    });
    match first {
        Some(f) => Box::pin(futures::stream::once(async { Ok(f) }).chain(rest)),
        None => Box::pin(rest),
    }
}

/// The data messages of a client stream as a reader; `data` picks the bytes out of a
/// message (None: a message out of place).
fn upload_reader<T: Send + 'static>(
    mut s: Streaming<T>,
    data: fn(T) -> Option<Vec<u8>>,
) -> ChannelReader {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::spawn(async move {
        loop {
            let r = match s.message().await {
                Ok(Some(m)) => match data(m) {
                    Some(d) if d.is_empty() => continue,
                    Some(d) => Ok(Bytes::from(d)),
                    None => Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "options may only come in the first message",
                    )),
                },
                Ok(None) => return,
                Err(e) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the upload stopped: {}", e.message()),
                )),
            };
            let stop = r.is_err();
            if tx.send(r).await.is_err() || stop {
                return;
            }
        }
    });
    ChannelReader::new(rx)
}

#[tonic::async_trait]
impl container_tools_server::ContainerTools for ContainerTools {
    async fn top(&self, req: Request<pb::TopRequest>) -> Result<Response<pb::TopResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let t = ct::top(&self.core, &ns, &r.id, &r.ps_args).await?;
        Ok(Response::new(pb::TopResponse {
            titles: t.titles,
            processes: t
                .processes
                .into_iter()
                .map(|columns| pb::TopRow { columns })
                .collect(),
        }))
    }

    async fn stats(
        &self,
        req: Request<pb::StatsRequest>,
    ) -> Result<Response<Stream_<pb::StatsResponse>>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let interval = Duration::from_millis(if r.interval_ms == 0 {
            1000
        } else {
            r.interval_ms.into()
        });
        let rx = ct::stats(&self.core, &ns, &r.ids, r.all, r.stream, interval)?;
        let s = ReceiverStream::new(rx).map(|batch| {
            batch
                .map(|b| pb::StatsResponse {
                    stats: b.into_iter().map(stats_out).collect(),
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(s)))
    }

    async fn port(
        &self,
        req: Request<pb::PortRequest>,
    ) -> Result<Response<pb::PortResponse>, Status> {
        let ns = namespace(&req)?;
        let ports = ct::ports(&self.core, &ns, &req.get_ref().id)?;
        Ok(Response::new(pb::PortResponse {
            ports: ports
                .into_iter()
                .map(|p| pb::ContainerPort {
                    ip: p.host_ip.to_string(),
                    private_port: p.container_port.into(),
                    public_port: p.host_port.into(),
                    r#type: p.proto.to_string(),
                })
                .collect(),
        }))
    }

    async fn stat_path(
        &self,
        req: Request<pb::StatPathRequest>,
    ) -> Result<Response<pb::StatPathResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let s = ct::stat_path(&self.core, &ns, &r.id, &r.path, false).await?;
        Ok(Response::new(pb::StatPathResponse {
            stat: Some(stat_out(s)),
        }))
    }

    async fn copy_from(
        &self,
        req: Request<pb::CopyFromRequest>,
    ) -> Result<Response<Stream_<pb::ArchiveChunk>>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let out = ct::copy_from(&self.core, &ns, &r.id, &r.path, r.follow_link).await?;
        let first = pb::ArchiveChunk {
            data: Vec::new(),
            stat: Some(stat_out(out.stat)),
        };
        Ok(Response::new(chunks(out.data, Some(first))))
    }

    async fn copy_to(
        &self,
        req: Request<Streaming<pb::CopyToInput>>,
    ) -> Result<Response<pb::CopyToResponse>, Status> {
        let ns = namespace(&req)?;
        let mut s = req.into_inner();
        let opts = match s.message().await?.and_then(|m| m.input) {
            Some(pb::copy_to_input::Input::Options(o)) => o,
            _ => {
                return Err(Error::InvalidArgument(
                    "the first message of CopyTo must carry the options".into(),
                )
                .into());
            }
        };
        let reader = upload_reader(s, |m: pb::CopyToInput| match m.input {
            Some(pb::copy_to_input::Input::Data(d)) => Some(d),
            Some(pb::copy_to_input::Input::Options(_)) => None,
            None => Some(Vec::new()),
        });
        ct::copy_to(&self.core, &ns, &opts.id, &opts.path, reader).await?;
        Ok(Response::new(pb::CopyToResponse {}))
    }

    async fn changes(
        &self,
        req: Request<pb::ChangesRequest>,
    ) -> Result<Response<pb::ChangesResponse>, Status> {
        let ns = namespace(&req)?;
        let changes = ct::changes(&self.core, &ns, &req.get_ref().id).await?;
        Ok(Response::new(pb::ChangesResponse {
            changes: changes
                .into_iter()
                .map(|c| pb::Change {
                    path: c.path,
                    kind: c.kind as i32,
                })
                .collect(),
        }))
    }

    async fn commit(
        &self,
        req: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let built = ct::commit(
            &self.core,
            &ns,
            ct::CommitRequest {
                container: r.id,
                reference: r.reference,
                author: r.author,
                message: r.message,
                changes: r.changes,
                pause: r.pause.unwrap_or(true),
            },
        )
        .await?;
        Ok(Response::new(pb::CommitResponse {
            image_id: built.id,
            name: built.name.unwrap_or_default(),
        }))
    }

    async fn export(
        &self,
        req: Request<pb::ExportRequest>,
    ) -> Result<Response<Stream_<pb::ArchiveChunk>>, Status> {
        let ns = namespace(&req)?;
        let rx = ct::export(&self.core, &ns, &req.get_ref().id).await?;
        Ok(Response::new(chunks(rx, None)))
    }

    async fn import(
        &self,
        req: Request<Streaming<pb::ImportInput>>,
    ) -> Result<Response<pb::ImportResponse>, Status> {
        let ns = namespace(&req)?;
        let mut s = req.into_inner();
        let opts = match s.message().await?.and_then(|m| m.input) {
            Some(pb::import_input::Input::Options(o)) => o,
            _ => {
                return Err(Error::InvalidArgument(
                    "the first message of Import must carry the options".into(),
                )
                .into());
            }
        };
        let reader = opts.source_url.is_empty().then(|| {
            upload_reader(s, |m: pb::ImportInput| match m.input {
                Some(pb::import_input::Input::Data(d)) => Some(d),
                Some(pb::import_input::Input::Options(_)) => None,
                None => Some(Vec::new()),
            })
        });
        let built = ct::import(
            &self.core,
            &ns,
            ct::ImportRequest {
                source_url: opts.source_url,
                reference: opts.reference,
                message: opts.message,
                changes: opts.changes,
                platform: opts.platform,
            },
            reader,
        )
        .await?;
        Ok(Response::new(pb::ImportResponse {
            image_id: built.id,
            name: built.name.unwrap_or_default(),
        }))
    }
}
