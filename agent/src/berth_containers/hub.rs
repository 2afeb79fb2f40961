//! The output of one container, fanned out to its attached clients. While a task runs,
//! berthd holds one Attach subscription to the shim (made before the task starts, so
//! nothing is missed) and forwards every chunk into a broadcast channel; each attached
//! client reads its own receiver. Sending never waits: a client that falls behind loses
//! output (the log keeps it), the container never slows down for it.

use std::sync::Arc;

use berth_api::berth::shim::v1::Stream;
use berth_api::shim::{OutputEvent, OutputStream};
use tokio::sync::broadcast;

/// Chunks a lagging client may fall behind by before it loses some.
const BACKLOG: usize = 256;

/// One item of a container's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    Data {
        stderr: bool,
        data: Vec<u8>,
    },
    /// The output of the current run ended.
    Eof,
}

/// The fan-out of one container's output.
pub struct Hub {
    tx: broadcast::Sender<Arc<Chunk>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Hub {
    /// A receiver of everything sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Chunk>> {
        self.tx.subscribe()
    }

    /// Forwards a process's output subscription until it ends.
    pub fn pump(&self, mut out: OutputStream) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = out.recv().await {
                let chunk = match ev {
                    OutputEvent::Data { stream, data } => Chunk::Data {
                        stderr: stream == Stream::Stderr,
                        data,
                    },
                    OutputEvent::Dropped { .. } => continue,
                    OutputEvent::Eof => break,
                };
                // No receiver is fine.
                let _ = tx.send(Arc::new(chunk));
            }
            let _ = tx.send(Arc::new(Chunk::Eof));
        });
    }
}
