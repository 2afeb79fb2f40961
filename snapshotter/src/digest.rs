//! Streams that hash and count what passes through them (sha256), used for diff IDs and
//! blob digests; the reader also enforces a byte limit.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A digest and the number of bytes it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Bytes hashed.
    pub size: u64,
}

/// Marker error returned by [`HashingReader`] when its limit is passed.
#[derive(Debug)]
pub(crate) struct LimitReached(pub u64);

impl std::fmt::Display for LimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.0)
    }
}

impl std::error::Error for LimitReached {}

/// Hashes and counts everything read through it; fails once more than `limit` bytes pass.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: Option<u64>,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R, limit: Option<u64>) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            limit,
        }
    }

    pub fn finish(self) -> Digested {
        Digested {
            digest: format!("sha256:{}", hex::encode(self.hasher.finalize())),
            size: self.count,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                this.hasher.update(new);
                this.count += new.len() as u64;
                if let Some(limit) = this.limit
                    && this.count > limit
                {
                    return Poll::Ready(Err(io::Error::other(LimitReached(limit))));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// Hashes and counts everything written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
    /// Whether shutdown is passed on to `inner` (otherwise it only flushes).
    shutdown_inner: bool,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W, shutdown_inner: bool) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
            shutdown_inner,
        }
    }

    pub fn digested(&self) -> Digested {
        Digested {
            digest: format!("sha256:{}", hex::encode(self.hasher.clone().finalize())),
            size: self.count,
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HashingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.hasher.update(&buf[..n]);
                this.count += n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shutdown_inner {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        } else {
            Pin::new(&mut self.inner).poll_flush(cx)
        }
    }
}
