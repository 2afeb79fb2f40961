//! Byte streams between tasks: an `AsyncRead` over a channel of chunks, and layer
//! decompression on a task of its own, so that inflating a layer and writing its files
//! run on two cores.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use berth_snapshotter::apply::Compression;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader, ReadBuf};
use tokio::sync::mpsc;

/// Chunks handed from the decompressing task to the reader.
const CHUNK: usize = 1 << 20;
/// Input buffer of the decompressor.
const INPUT: usize = 1 << 20;

/// Reads the chunks a channel delivers; an `Err` chunk is returned as the read error.
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    done: bool,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> ChannelReader {
        ChannelReader {
            rx,
            cur: Bytes::new(),
            done: false,
        }
    }
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.cur.is_empty() {
                let n = self.cur.len().min(buf.remaining());
                let chunk = self.cur.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(b))) => self.cur = b,
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(None) => self.done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Counts what is read through it and reports the running total.
struct Counting<R, F> {
    inner: R,
    count: u64,
    report: F,
}

impl<R: AsyncRead + Unpin, F: FnMut(u64) + Unpin> AsyncRead for Counting<R, F> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = (buf.filled().len() - before) as u64;
            if n > 0 {
                this.count += n;
                (this.report)(this.count);
            }
        }
        r
    }
}

/// Decompresses `reader` on a task of its own and returns a reader of the plain tar.
/// `compression` None detects it from the magic bytes. `report` is called with the
/// number of compressed bytes consumed so far.
pub fn decompress<R, F>(reader: R, compression: Option<Compression>, report: F) -> ChannelReader
where
    R: AsyncRead + Unpin + Send + 'static,
    F: FnMut(u64) + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    tokio::spawn(async move {
        let counted = Counting {
            inner: reader,
            count: 0,
            report,
        };
        let mut input = BufReader::with_capacity(INPUT, counted);
        let compression = match compression {
            Some(c) => c,
            None => match input.fill_buf().await {
                Ok(head) => Compression::detect(head),
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            },
        };
        let mut decoded: Box<dyn AsyncRead + Unpin + Send> = match compression {
            Compression::None => Box::new(input),
            Compression::Gzip => {
                let mut d = GzipDecoder::new(input);
                d.multiple_members(true);
                Box::new(d)
            }
            Compression::Zstd => {
                let mut d = ZstdDecoder::new(input);
                d.multiple_members(true);
                Box::new(d)
            }
        };
        loop {
            let mut buf = BytesMut::with_capacity(CHUNK);
            let r = loop {
                match decoded.read_buf(&mut buf).await {
                    Ok(0) => break Ok(true),
                    Ok(_) if buf.len() < CHUNK => {}
                    Ok(_) => break Ok(false),
                    Err(e) => break Err(e),
                }
            };
            match r {
                Ok(end) => {
                    if !buf.is_empty() && tx.send(Ok(buf.freeze())).await.is_err() {
                        return;
                    }
                    if end {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    ChannelReader::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decompresses_on_another_task() {
        use async_compression::tokio::write::GzipEncoder;
        use tokio::io::AsyncWriteExt;
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = GzipEncoder::new(Vec::new());
        enc.write_all(&data).await.unwrap();
        enc.shutdown().await.unwrap();
        let gz = enc.into_inner();
        let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let t = total.clone();
        let mut r = decompress(std::io::Cursor::new(gz.clone()), None, move |n| {
            t.store(n, std::sync::atomic::Ordering::Relaxed)
        });
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, data);
        assert_eq!(
            total.load(std::sync::atomic::Ordering::Relaxed),
            gz.len() as u64
        );
        // Plain data passes through; a broken stream is an error.
        let mut r = decompress(std::io::Cursor::new(b"plain".to_vec()), None, |_| {});
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"plain");
        let mut bad = gz[..100].to_vec();
        bad.extend_from_slice(&[0u8; 50]);
        let mut r = decompress(std::io::Cursor::new(bad), Some(Compression::Gzip), |_| {});
        assert!(r.read_to_end(&mut Vec::new()).await.is_err());
    }
}
