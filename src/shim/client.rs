//! berthd's async client of one berth-shim: typed methods over the frame protocol, many
//! calls in flight on one connection (a blocked `wait` does not hold up a `kill`).
//!
//! A [`ShimClient`] is cheap to clone (an `Arc`); all clones share one connection. Two
//! tasks serve it: a writer that owns the socket's write half (so a cancelled call never
//! leaves half a frame behind) and a reader that routes replies to their callers by
//! request id and events to their subscriptions (Subscribe: [`EventStream`]; Attach:
//! [`OutputStream`]). When the connection ends every pending call fails with
//! [`ClientError::Closed`] and every stream ends; reconnect with [`ShimClient::connect`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::frame::{Frame, FrameBody, FrameError, Method};
use super::output::{OutputQueue, OutputStream};
use crate::berth::shim::v1 as pb;

/// Failure of a call to the shim.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached (shim gone, wrong path).
    #[error("connect to shim socket {path}: {source}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The connection ended before the reply came.
    #[error("shim connection closed")]
    Closed,
    /// The shim answered with an error.
    #[error("shim: {message} (code {code})")]
    Status {
        /// gRPC status code number (see [`super::frame::code`]).
        code: u32,
        /// The shim's message.
        message: String,
    },
    /// The shim's reply did not decode as the method's response.
    #[error("decode {method} reply from shim: {source}")]
    Decode {
        /// Method called.
        method: Method,
        /// Cause.
        source: prost::DecodeError,
    },
    /// The shim sent bytes that are not frames.
    #[error("bad frame from shim: {0}")]
    Frame(#[from] FrameError),
}

impl ClientError {
    /// The gRPC code berthd should answer with.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            ClientError::Status { code, .. } => {
                tonic::Code::from_i32(i32::try_from(*code).unwrap_or(2))
            }
            ClientError::Connect { .. } | ClientError::Closed => tonic::Code::Unavailable,
            ClientError::Decode { .. } | ClientError::Frame(_) => tonic::Code::Internal,
        }
    }

    /// True when the shim answered NotFound.
    pub fn is_not_found(&self) -> bool {
        self.grpc_code() == tonic::Code::NotFound
    }
}

impl From<ClientError> for tonic::Status {
    fn from(e: ClientError) -> tonic::Status {
        let code = e.grpc_code();
        match e {
            ClientError::Status { message, .. } => tonic::Status::new(code, message),
            other => tonic::Status::new(code, other.to_string()),
        }
    }
}

type Reply = Result<Vec<u8>, ClientError>;

enum Pending {
    Call(oneshot::Sender<Reply>),
    Subscription {
        ack: Option<oneshot::Sender<Reply>>,
        events: mpsc::UnboundedSender<pb::Event>,
    },
    Attach {
        ack: Option<oneshot::Sender<Reply>>,
        queue: Arc<OutputQueue>,
    },
}

struct Inner {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    pending: Mutex<Option<HashMap<u32, Pending>>>,
    next_id: AtomicU32,
    path: PathBuf,
}

impl Inner {
    /// Registers `entry` under a fresh id; `None` once the connection is gone.
    fn register(&self, entry: Pending) -> Option<u32> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut guard = self.pending.lock().expect("pending lock");
        guard.as_mut()?.insert(id, entry);
        Some(id)
    }

    fn forget(&self, id: u32) {
        if let Some(map) = self.pending.lock().expect("pending lock").as_mut() {
            map.remove(&id);
        }
    }

    /// Routes one incoming frame.
    fn dispatch(&self, frame: Frame) {
        let mut guard = self.pending.lock().expect("pending lock");
        let Some(map) = guard.as_mut() else { return };
        let reply = match frame.body {
            FrameBody::Reply(p) => Ok(p),
            FrameBody::Error { code, message } => Err(ClientError::Status { code, message }),
            FrameBody::Event(p) => {
                let delivered = match map.get(&frame.id) {
                    Some(Pending::Subscription { events, .. }) => {
                        match pb::Event::decode(p.as_slice()) {
                            Ok(ev) => events.send(ev).is_ok(),
                            Err(_) => true,
                        }
                    }
                    Some(Pending::Attach { queue, .. }) => match pb::Output::decode(p.as_slice()) {
                        Ok(out) => queue.push(out),
                        Err(_) => true,
                    },
                    _ => false,
                };
                if !delivered {
                    map.remove(&frame.id);
                }
                return;
            }
            // A shim never sends requests; ignore them.
            FrameBody::Request { .. } => return,
        };
        match map.get_mut(&frame.id) {
            Some(Pending::Subscription { ack, .. } | Pending::Attach { ack, .. }) => {
                if let Some(tx) = ack.take() {
                    let failed = reply.is_err();
                    let _ = tx.send(reply);
                    if failed {
                        map.remove(&frame.id);
                    }
                }
            }
            Some(Pending::Call(_)) => {
                if let Some(Pending::Call(tx)) = map.remove(&frame.id) {
                    let _ = tx.send(reply);
                }
            }
            None => {}
        }
    }

    /// Fails everything pending; later calls fail at once.
    fn close(&self) {
        let taken = self.pending.lock().expect("pending lock").take();
        for (_, entry) in taken.into_iter().flatten() {
            match entry {
                Pending::Call(tx) => {
                    let _ = tx.send(Err(ClientError::Closed));
                }
                Pending::Subscription { ack, .. } => {
                    if let Some(tx) = ack {
                        let _ = tx.send(Err(ClientError::Closed));
                    }
                }
                Pending::Attach { ack, queue } => {
                    if let Some(tx) = ack {
                        let _ = tx.send(Err(ClientError::Closed));
                    }
                    queue.close();
                }
            }
        }
    }
}

/// Removes a call's pending entry if its future is dropped before the reply.
struct ForgetOnDrop<'a> {
    inner: &'a Inner,
    id: u32,
    armed: bool,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.forget(self.id);
        }
    }
}

/// The events of one subscription, in the order the shim emitted them.
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<pb::Event>,
}

impl EventStream {
    /// The next event; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<pb::Event> {
        self.rx.recv().await
    }
}

/// A connection to one shim. Clones share it.
#[derive(Clone)]
pub struct ShimClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ShimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShimClient")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl ShimClient {
    /// Connects to the shim listening at `path` and starts the connection's tasks
    /// (needs a tokio runtime).
    pub async fn connect(path: impl AsRef<Path>) -> Result<ShimClient, ClientError> {
        let path = path.as_ref().to_path_buf();
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.clone(),
                source,
            })?;
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            writer: tx,
            pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU32::new(1),
            path,
        });
        tokio::spawn(write_loop(write, rx));
        tokio::spawn(read_loop(read, Arc::downgrade(&inner)));
        Ok(ShimClient { inner })
    }

    /// The socket path this client is connected to.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.pending.lock().expect("pending lock").is_none()
    }

    async fn call<Req: Message, Resp: Message + Default>(
        &self,
        method: Method,
        req: &Req,
    ) -> Result<Resp, ClientError> {
        let (tx, rx) = oneshot::channel();
        let id = self
            .inner
            .register(Pending::Call(tx))
            .ok_or(ClientError::Closed)?;
        let mut guard = ForgetOnDrop {
            inner: &self.inner,
            id,
            armed: true,
        };
        let frame = Frame::request(id, method, req.encode_to_vec()).to_bytes();
        if self.inner.writer.send(frame).is_err() {
            return Err(ClientError::Closed);
        }
        let reply = rx.await.map_err(|_| ClientError::Closed)?;
        guard.armed = false;
        let bytes = reply?;
        Resp::decode(bytes.as_slice()).map_err(|source| ClientError::Decode { method, source })
    }

    /// Identifies the shim; the first call after (re)connecting.
    pub async fn connect_info(&self) -> Result<pb::ConnectResponse, ClientError> {
        self.call(Method::Connect, &pb::ConnectRequest {}).await
    }

    /// Mounts the rootfs and creates the init process (not started).
    pub async fn create(&self, req: pb::CreateRequest) -> Result<pb::CreateResponse, ClientError> {
        self.call(Method::Create, &req).await
    }

    /// Starts the init process (`exec_id` empty) or an exec'd process.
    pub async fn start(&self, exec_id: &str) -> Result<pb::StartResponse, ClientError> {
        let req = pb::StartRequest {
            exec_id: exec_id.to_string(),
        };
        self.call(Method::Start, &req).await
    }

    /// State of a process.
    pub async fn state(&self, exec_id: &str) -> Result<pb::StateResponse, ClientError> {
        let req = pb::StateRequest {
            exec_id: exec_id.to_string(),
        };
        self.call(Method::State, &req).await
    }

    /// Waits until the process has exited and its output is copied.
    pub async fn wait(&self, exec_id: &str) -> Result<pb::WaitResponse, ClientError> {
        let req = pb::WaitRequest {
            exec_id: exec_id.to_string(),
        };
        self.call(Method::Wait, &req).await
    }

    /// Sends `signal` to a process, or with `all` to every process of the task.
    pub async fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<(), ClientError> {
        let req = pb::KillRequest {
            exec_id: exec_id.to_string(),
            signal,
            all,
        };
        self.call::<_, pb::KillResponse>(Method::Kill, &req)
            .await
            .map(drop)
    }

    /// Adds a process to the running task; start it with [`ShimClient::start`].
    pub async fn exec(&self, req: pb::ExecRequest) -> Result<(), ClientError> {
        self.call::<_, pb::ExecResponse>(Method::Exec, &req)
            .await
            .map(drop)
    }

    /// Sets the window size of a process's terminal.
    pub async fn resize_pty(
        &self,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<(), ClientError> {
        let req = pb::ResizePtyRequest {
            exec_id: exec_id.to_string(),
            width,
            height,
        };
        self.call::<_, pb::ResizePtyResponse>(Method::ResizePty, &req)
            .await
            .map(drop)
    }

    /// Closes a process's stdin.
    pub async fn close_io(&self, exec_id: &str) -> Result<(), ClientError> {
        let req = pb::CloseIoRequest {
            exec_id: exec_id.to_string(),
            stdin: true,
        };
        self.call::<_, pb::CloseIoResponse>(Method::CloseIo, &req)
            .await
            .map(drop)
    }

    /// Freezes every process of the task.
    pub async fn pause(&self) -> Result<(), ClientError> {
        self.call::<_, pb::PauseResponse>(Method::Pause, &pb::PauseRequest {})
            .await
            .map(drop)
    }

    /// Thaws the task.
    pub async fn resume(&self) -> Result<(), ClientError> {
        self.call::<_, pb::ResumeResponse>(Method::Resume, &pb::ResumeRequest {})
            .await
            .map(drop)
    }

    /// Pids of the task's processes (host pid namespace).
    pub async fn pids(&self) -> Result<Vec<pb::ProcessInfo>, ClientError> {
        self.call::<_, pb::PidsResponse>(Method::Pids, &pb::PidsRequest {})
            .await
            .map(|r| r.processes)
    }

    /// Applies new resources (OCI `LinuxResources` as JSON) to the task's cgroup.
    pub async fn update(&self, resources_json: Vec<u8>) -> Result<(), ClientError> {
        let req = pb::UpdateRequest {
            resources: resources_json,
        };
        self.call::<_, pb::UpdateResponse>(Method::Update, &req)
            .await
            .map(drop)
    }

    /// cgroup metrics of the task.
    pub async fn stats(&self) -> Result<pb::StatsResponse, ClientError> {
        self.call(Method::Stats, &pb::StatsRequest {}).await
    }

    /// Deletes an exited process; for the init process, the whole container (the shim
    /// exits afterwards).
    pub async fn delete(&self, exec_id: &str) -> Result<pb::DeleteResponse, ClientError> {
        let req = pb::DeleteRequest {
            exec_id: exec_id.to_string(),
        };
        self.call(Method::Delete, &req).await
    }

    /// Asks the shim to exit (`now`: even with its task running).
    pub async fn shutdown(&self, now: bool) -> Result<(), ClientError> {
        self.call::<_, pb::ShutdownResponse>(Method::Shutdown, &pb::ShutdownRequest { now })
            .await
            .map(drop)
    }

    /// Appends `data` to the stdin of a process created with `stdin_stream`; returns once
    /// the shim has put it in the process's pipe (or pty). Waiting for each call before
    /// the next keeps a fast writer in step with the process.
    pub async fn write_stdin(&self, exec_id: &str, data: Vec<u8>) -> Result<(), ClientError> {
        let req = pb::WriteStdinRequest {
            exec_id: exec_id.to_string(),
            data,
        };
        self.call::<_, pb::WriteStdinResponse>(Method::WriteStdin, &req)
            .await
            .map(drop)
    }

    /// Subscribes to a process's output from now on (before Start: all of it). The
    /// stream ends with [`super::OutputEvent::Eof`] when the output ends; dropping it
    /// detaches.
    pub async fn attach(&self, req: pb::AttachRequest) -> Result<OutputStream, ClientError> {
        let (ack_tx, ack_rx) = oneshot::channel();
        let queue = Arc::new(OutputQueue::default());
        let id = self
            .inner
            .register(Pending::Attach {
                ack: Some(ack_tx),
                queue: queue.clone(),
            })
            .ok_or(ClientError::Closed)?;
        let mut guard = ForgetOnDrop {
            inner: &self.inner,
            id,
            armed: true,
        };
        let payload = req.encode_to_vec();
        if self
            .inner
            .writer
            .send(Frame::request(id, Method::Attach, payload).to_bytes())
            .is_err()
        {
            return Err(ClientError::Closed);
        }
        let bytes = ack_rx.await.map_err(|_| ClientError::Closed)??;
        let response =
            pb::AttachResponse::decode(bytes.as_slice()).map_err(|source| ClientError::Decode {
                method: Method::Attach,
                source,
            })?;
        guard.armed = false;
        let inner = Arc::downgrade(&self.inner);
        let detach = Box::new(move || {
            if let Some(inner) = inner.upgrade() {
                inner.forget(id);
                // The reply (a fresh id nobody waits for) is dropped by the reader.
                let req = pb::DetachRequest { attach_id: id }.encode_to_vec();
                let detach_id = inner.next_id.fetch_add(1, Ordering::Relaxed);
                let _ = inner
                    .writer
                    .send(Frame::request(detach_id, Method::Detach, req).to_bytes());
            }
        });
        Ok(OutputStream::new(queue, response, detach))
    }

    /// Subscribes to the shim's events from now on.
    pub async fn subscribe(&self) -> Result<EventStream, ClientError> {
        let (ack_tx, ack_rx) = oneshot::channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let id = self
            .inner
            .register(Pending::Subscription {
                ack: Some(ack_tx),
                events: ev_tx,
            })
            .ok_or(ClientError::Closed)?;
        let mut guard = ForgetOnDrop {
            inner: &self.inner,
            id,
            armed: true,
        };
        let payload = pb::SubscribeRequest {}.encode_to_vec();
        if self
            .inner
            .writer
            .send(Frame::request(id, Method::Subscribe, payload).to_bytes())
            .is_err()
        {
            return Err(ClientError::Closed);
        }
        ack_rx.await.map_err(|_| ClientError::Closed)??;
        guard.armed = false;
        Ok(EventStream { rx: ev_rx })
    }
}

async fn write_loop(mut write: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = rx.recv().await {
        if write.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = write.shutdown().await;
}

async fn read_loop(mut read: OwnedReadHalf, inner: std::sync::Weak<Inner>) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        loop {
            let Some(inner) = inner.upgrade() else { return };
            match Frame::decode(&buf) {
                Ok(Some((frame, used))) => {
                    buf.drain(..used);
                    inner.dispatch(frame);
                }
                Ok(None) => break,
                Err(_) => {
                    inner.close();
                    return;
                }
            }
        }
        let n = match read.read(&mut chunk).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        if n == 0 {
            if let Some(inner) = inner.upgrade() {
                inner.close();
            }
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
