//! The output of one Attach subscription on berthd's side: a byte-bounded queue filled
//! by the connection's reader and drained by [`OutputStream::recv`].
//!
//! The connection's reader must never wait for a slow consumer (it serves every call on
//! the connection), so the queue holds at most [`QUEUE_BYTES`] of data; what does not fit
//! is counted and reported as [`OutputEvent::Dropped`] before the next data of that
//! stream, exactly as the shim does for a subscriber that falls behind.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::berth::shim::v1 as pb;

/// Bytes of data one subscription may hold before its consumer reads them.
pub const QUEUE_BYTES: usize = 1 << 20;

/// One item of an attached process's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputEvent {
    /// Bytes the process wrote, as read by the shim.
    Data {
        /// Which stream (a terminal's output is `Stdout`).
        stream: pb::Stream,
        /// The bytes.
        data: Vec<u8>,
    },
    /// This many bytes of `stream` were lost for this subscriber (the shim or this
    /// client's queue was full); the log still has them.
    Dropped {
        /// Which stream.
        stream: pb::Stream,
        /// How many bytes.
        bytes: u64,
    },
    /// The process's output ended: nothing follows.
    Eof,
}

#[derive(Default)]
struct State {
    items: VecDeque<OutputEvent>,
    bytes: usize,
    /// Bytes dropped here, not yet reported, by stream number.
    dropped: [u64; 3],
    /// Eof seen or connection gone: nothing more is queued.
    closed: bool,
}

impl State {
    fn flush_dropped(&mut self, stream: pb::Stream) {
        let n = std::mem::take(&mut self.dropped[stream as usize]);
        if n > 0 {
            self.items
                .push_back(OutputEvent::Dropped { stream, bytes: n });
        }
    }

    fn flush_all_dropped(&mut self) {
        for s in [pb::Stream::Stdout, pb::Stream::Stderr] {
            self.flush_dropped(s);
        }
    }
}

/// The shared queue of one subscription.
#[derive(Default)]
pub(crate) struct OutputQueue {
    state: Mutex<State>,
    notify: Notify,
}

impl OutputQueue {
    /// Queues one `Output` frame from the shim; false once nothing more is wanted
    /// (eof seen).
    pub(crate) fn push(&self, out: pb::Output) -> bool {
        let mut st = self.state.lock().expect("output queue lock");
        if st.closed {
            return false;
        }
        let stream = pb::Stream::try_from(out.stream).unwrap_or(pb::Stream::Unspecified);
        if out.eof {
            st.flush_all_dropped();
            st.items.push_back(OutputEvent::Eof);
            st.closed = true;
        } else if out.dropped > 0 {
            st.flush_dropped(stream);
            st.items.push_back(OutputEvent::Dropped {
                stream,
                bytes: out.dropped,
            });
        } else if !out.data.is_empty() {
            if st.bytes + out.data.len() > QUEUE_BYTES {
                st.dropped[stream as usize] += out.data.len() as u64;
            } else {
                st.flush_dropped(stream);
                st.bytes += out.data.len();
                st.items.push_back(OutputEvent::Data {
                    stream,
                    data: out.data,
                });
            }
        }
        let more = !st.closed;
        drop(st);
        self.notify.notify_one();
        more
    }

    /// The connection ended: the consumer sees what is queued, then the end.
    pub(crate) fn close(&self) {
        let mut st = self.state.lock().expect("output queue lock");
        if !st.closed {
            st.flush_all_dropped();
            st.closed = true;
        }
        drop(st);
        self.notify.notify_one();
    }
}

/// The output of one Attach subscription, in the order the shim read it.
///
/// Dropping it detaches: the shim is told to stop sending (the connection stays).
pub struct OutputStream {
    pub(crate) queue: Arc<OutputQueue>,
    pub(crate) detach: Option<Box<dyn FnOnce() + Send + Sync>>,
    pub(crate) response: pb::AttachResponse,
    ended: bool,
    saw_eof: bool,
}

impl std::fmt::Debug for OutputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputStream")
            .field("response", &self.response)
            .field("ended", &self.ended)
            .finish()
    }
}

impl OutputStream {
    pub(crate) fn new(
        queue: Arc<OutputQueue>,
        response: pb::AttachResponse,
        detach: Box<dyn FnOnce() + Send + Sync>,
    ) -> OutputStream {
        OutputStream {
            queue,
            detach: Some(detach),
            response,
            ended: false,
            saw_eof: false,
        }
    }

    /// The shim's answer to Attach: the streams that deliver and, with `logs`, where
    /// the log stood.
    pub fn response(&self) -> &pb::AttachResponse {
        &self.response
    }

    /// The next piece of output. [`OutputEvent::Eof`] is the last item when the
    /// process's output ended; `None` after it, or when the connection closed first
    /// (see [`OutputStream::saw_eof`]).
    pub async fn recv(&mut self) -> Option<OutputEvent> {
        if self.ended {
            return None;
        }
        loop {
            let notified = self.queue.notify.notified();
            {
                let mut st = self.queue.state.lock().expect("output queue lock");
                if let Some(item) = st.items.pop_front() {
                    if let OutputEvent::Data { data, .. } = &item {
                        st.bytes -= data.len();
                    }
                    if item == OutputEvent::Eof {
                        self.ended = true;
                        self.saw_eof = true;
                    }
                    return Some(item);
                }
                if st.closed {
                    self.ended = true;
                    return None;
                }
            }
            notified.await;
        }
    }

    /// True once [`OutputEvent::Eof`] was received (the output really ended, rather than
    /// the connection).
    pub fn saw_eof(&self) -> bool {
        self.saw_eof
    }
}

impl Drop for OutputStream {
    fn drop(&mut self) {
        if !self.ended
            && let Some(detach) = self.detach.take()
        {
            detach();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(stream: pb::Stream, n: usize) -> pb::Output {
        pb::Output {
            stream: stream as i32,
            data: vec![b'x'; n],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn overflow_is_counted_and_reported_in_order() {
        let q = Arc::new(OutputQueue::default());
        let mut s = OutputStream::new(q.clone(), pb::AttachResponse::default(), Box::new(|| {}));
        assert!(q.push(data(pb::Stream::Stdout, QUEUE_BYTES)));
        assert!(q.push(data(pb::Stream::Stdout, 10)));
        assert!(q.push(data(pb::Stream::Stderr, 3)));
        let first = s.recv().await.unwrap();
        assert!(matches!(first, OutputEvent::Data { ref data, .. } if data.len() == QUEUE_BYTES));
        assert!(q.push(data(pb::Stream::Stdout, 5)));
        assert!(!q.push(pb::Output {
            eof: true,
            ..Default::default()
        }));
        assert_eq!(
            s.recv().await,
            Some(OutputEvent::Dropped {
                stream: pb::Stream::Stdout,
                bytes: 10
            })
        );
        assert!(
            matches!(s.recv().await, Some(OutputEvent::Data { ref data, .. }) if data.len() == 5)
        );
        assert_eq!(
            s.recv().await,
            Some(OutputEvent::Dropped {
                stream: pb::Stream::Stderr,
                bytes: 3
            })
        );
        assert_eq!(s.recv().await, Some(OutputEvent::Eof));
        assert_eq!(s.recv().await, None);
        assert!(s.saw_eof());
    }

    #[tokio::test]
    async fn close_ends_without_eof() {
        let q = Arc::new(OutputQueue::default());
        let mut s = OutputStream::new(q.clone(), pb::AttachResponse::default(), Box::new(|| {}));
        let h = tokio::spawn(async move {
            let item = s.recv().await;
            (item, s.recv().await, s.saw_eof())
        });
        tokio::task::yield_now().await;
        q.push(data(pb::Stream::Stderr, 1));
        q.close();
        let (a, b, eof) = h.await.unwrap();
        assert!(matches!(a, Some(OutputEvent::Data { .. })));
        assert_eq!(b, None);
        assert!(!eof);
    }
}
