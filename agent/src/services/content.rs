//! containerd.services.content.v1.Content.

use std::sync::Arc;

use berth_api::containerd::services::content::v1::{
    self as pb, AbortRequest, DeleteContentRequest, InfoRequest, InfoResponse, ListContentRequest,
    ListContentResponse, ListStatusesRequest, ListStatusesResponse, ReadContentRequest,
    ReadContentResponse, StatusRequest, StatusResponse, UpdateRequest, UpdateResponse, WriteAction,
    WriteContentRequest, WriteContentResponse, content_server,
};
use prost::Message;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{labels_in, labels_out, mask_paths, timestamp};
use super::{lease, namespace};
use crate::content::{ContentStore, Digest, Info, Writer};
use crate::core::Core;
use crate::error::Error;
use crate::filters::Filter;

/// Largest List batch, in encoded bytes (well under the 16 MiB message limit).
const LIST_BATCH_BYTES: usize = 1 << 20;

pub struct Content {
    core: Arc<Core>,
}

impl Content {
    pub fn new(core: Arc<Core>) -> Self {
        Content { core }
    }
}

fn info_out(i: Info) -> pb::Info {
    pb::Info {
        digest: i.digest.to_string(),
        size: i.size,
        created_at: Some(timestamp(i.created_at)),
        updated_at: Some(timestamp(i.updated_at)),
        labels: labels_out(i.labels),
    }
}

fn status_out(s: crate::content::Status) -> pb::Status {
    pb::Status {
        started_at: Some(timestamp(s.started_at)),
        updated_at: Some(timestamp(s.updated_at)),
        r#ref: s.reference,
        offset: s.offset,
        total: s.total,
        expected: s.expected.map(|d| d.to_string()).unwrap_or_default(),
    }
}

fn digest_in(s: &str) -> Result<Digest, Status> {
    Ok(Digest::parse(s)?)
}

fn optional_digest(s: &str) -> Result<Option<Digest>, Status> {
    if s.is_empty() {
        Ok(None)
    } else {
        digest_in(s).map(Some)
    }
}

#[tonic::async_trait]
impl content_server::Content for Content {
    async fn info(&self, req: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let ns = namespace(&req)?;
        let d = digest_in(&req.into_inner().digest)?;
        let info = self.core.content.info(&ns, &d)?;
        Ok(Response::new(InfoResponse {
            info: Some(info_out(info)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let info = req
            .info
            .ok_or_else(|| Status::invalid_argument("info is missing from the request"))?;
        let d = digest_in(&info.digest)?;
        let updated = self.core.content.update(
            &ns,
            &d,
            &labels_in(info.labels),
            &mask_paths(req.update_mask),
        )?;
        Ok(Response::new(UpdateResponse {
            info: Some(info_out(updated)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListContentRequest>,
    ) -> Result<Response<BoxStream<ListContentResponse>>, Status> {
        let ns = namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let infos = self.core.content.list(&ns, &filter)?;
        let stream = async_stream::stream! {
            let mut batch = Vec::new();
            let mut bytes = 0;
            for i in infos {
                let i = info_out(i);
                bytes += i.encoded_len();
                batch.push(i);
                if bytes >= LIST_BATCH_BYTES {
                    yield Ok(ListContentResponse { info: std::mem::take(&mut batch) });
                    bytes = 0;
                }
            }
            if !batch.is_empty() {
                yield Ok(ListContentResponse { info: batch });
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn delete(&self, req: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let lease = lease(&req);
        let d = digest_in(&req.into_inner().digest)?;
        self.core.content.delete(&ns, &d, lease.as_deref())?;
        Ok(Response::new(()))
    }

    async fn read(
        &self,
        req: Request<ReadContentRequest>,
    ) -> Result<Response<BoxStream<ReadContentResponse>>, Status> {
        let ns = namespace(&req)?;
        let req = req.into_inner();
        let d = digest_in(&req.digest)?;
        let mut chunks = self
            .core
            .content
            .reader(&ns, &d)?
            .into_chunks(req.offset, req.size)?;
        let stream = async_stream::stream! {
            while let Some(item) = chunks.recv().await {
                match item {
                    Ok((offset, data)) => yield Ok(ReadContentResponse { offset, data }),
                    Err(e) => {
                        yield Err(Status::from(e));
                        break;
                    }
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let ns = namespace(&req)?;
        let s = self.core.content.status(&ns, &req.into_inner().r#ref)?;
        Ok(Response::new(StatusResponse {
            status: Some(status_out(s)),
        }))
    }

    async fn list_statuses(
        &self,
        req: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        let ns = namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let statuses = self
            .core
            .content
            .list_statuses(&ns, &filter)?
            .into_iter()
            .map(status_out)
            .collect();
        Ok(Response::new(ListStatusesResponse { statuses }))
    }

    async fn write(
        &self,
        req: Request<Streaming<WriteContentRequest>>,
    ) -> Result<Response<BoxStream<WriteContentResponse>>, Status> {
        let ns = namespace(&req)?;
        let lease = lease(&req);
        let store = self.core.content.clone();
        let session = WriteSession {
            store,
            ns,
            lease,
            inbound: req.into_inner(),
        };
        Ok(Response::new(session.run()))
    }

    async fn abort(&self, req: Request<AbortRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        self.core.content.abort(&ns, &req.into_inner().r#ref)?;
        Ok(Response::new(()))
    }
}

/// One Write stream: STAT, WRITE and COMMIT messages against one writer.
struct WriteSession {
    store: Arc<ContentStore>,
    ns: String,
    lease: Option<String>,
    inbound: Streaming<WriteContentRequest>,
}

type Replies = tokio::sync::mpsc::Sender<Result<WriteContentResponse, Status>>;

impl WriteSession {
    /// Runs the session on its own task; replies arrive on the returned stream. The
    /// writer (and so the ref's lock) is released before a failure is reported, so a
    /// client that retries after an error never finds its own ref locked.
    fn run(self) -> BoxStream<WriteContentResponse> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut writer = None;
            let r = self.steps(&mut writer, &tx).await;
            drop(writer);
            if let Err(e) = r {
                let _ = tx.send(Err(e)).await;
            }
        });
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
    }

    async fn steps(mut self, slot: &mut Option<Writer>, out: &Replies) -> Result<(), Status> {
        let Some(first) = self.inbound.message().await? else {
            return Ok(());
        };
        if first.r#ref.is_empty() {
            return Err(Status::invalid_argument(
                "first message must have a reference",
            ));
        }
        let reference = first.r#ref.clone();
        let mut total = first.total;
        let mut expected = optional_digest(&first.expected)?;
        let writer = slot.insert(
            self.store
                .writer(
                    &self.ns,
                    &reference,
                    total,
                    expected.clone(),
                    self.lease.as_deref(),
                )
                .await?,
        );
        let mut req = first;
        loop {
            let action = WriteAction::try_from(req.action).map_err(|_| {
                Status::invalid_argument(format!("unknown write action {}", req.action))
            })?;
            if let Some(d) = optional_digest(&req.expected)? {
                if self.store.exists(&self.ns, &d)? {
                    *slot = None;
                    if let Err(e) = self.store.abort(&self.ns, &reference) {
                        tracing::debug!(reference, error = %e, "abort after already-exists");
                    }
                    return Err(Error::AlreadyExists(format!("content {d}")).into());
                }
                expected = Some(d);
            }
            if req.total > 0 {
                total = req.total;
            }
            let mut resp = WriteContentResponse {
                action: req.action,
                ..Default::default()
            };
            match action {
                WriteAction::Stat => {
                    let s = writer.status();
                    resp.offset = s.offset;
                    resp.digest = writer.digest().to_string();
                    resp.started_at = Some(timestamp(s.started_at));
                    resp.updated_at = Some(timestamp(s.updated_at));
                    resp.total = total;
                }
                WriteAction::Write | WriteAction::Commit => {
                    // A positive offset must be the current one; 0 after data starts
                    // over; a negative one (never sent by containerd's clients) means
                    // "here".
                    let offset = if req.offset < 0 {
                        writer.offset()
                    } else {
                        req.offset
                    };
                    let data = bytes::Bytes::from(std::mem::take(&mut req.data));
                    writer.write_at(offset, data).await?;
                    resp.offset = writer.offset();
                    resp.digest = writer.digest().to_string();
                    if action == WriteAction::Commit {
                        let labels = labels_in(std::mem::take(&mut req.labels));
                        let w = slot.take().expect("writer is open");
                        let digest = w.commit(total, expected.clone(), labels).await?;
                        resp.digest = digest.to_string();
                        let _ = out.send(Ok(resp)).await;
                        return Ok(());
                    }
                }
            }
            if out.send(Ok(resp)).await.is_err() {
                return Ok(());
            }
            req = match self.inbound.message().await? {
                Some(r) => r,
                None => return Ok(()),
            };
        }
    }
}
