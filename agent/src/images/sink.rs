//! Downloads into the content store: a [`BlobSink`] over an ingest [`Writer`], so a
//! blob download that is interrupted resumes from what the ingest already holds (also
//! across pulls), with the bytes batched into large writes and the progress reported.
//! Optionally every byte is also handed to a live consumer (the unpacker of the layer).

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::content::{CHUNK_SIZE, ContentStore, Digest, Writer};
use crate::distribution::{BlobSink, Verifier};
use crate::error::{Error, Result};
use crate::images::progress::{LayerStatus, Progress, Ticker};

/// The bytes of a blob as they arrive, for a consumer that reads them live. An `Err`
/// item means the stream restarted or failed: the consumer must give up on it.
pub type LiveTx = mpsc::Sender<io::Result<Bytes>>;

/// A blob download into an ingest.
pub struct ContentSink {
    writer: Writer,
    buf: BytesMut,
    digest: Digest,
    total: i64,
    progress: Progress,
    ticker: Ticker,
    live: Option<LiveTx>,
}

fn io_err(e: Error) -> io::Error {
    io::Error::other(e.to_string())
}

impl ContentSink {
    pub fn new(writer: Writer, digest: Digest, total: i64, progress: Progress) -> ContentSink {
        ContentSink {
            writer,
            buf: BytesMut::with_capacity(CHUNK_SIZE),
            digest,
            total,
            progress,
            ticker: Ticker::new(),
            live: None,
        }
    }

    /// Also sends every appended byte to `tx` (from the start of the blob: only when the
    /// ingest is empty).
    pub fn with_live(mut self, tx: LiveTx) -> ContentSink {
        if self.writer.offset() == 0 {
            self.live = Some(tx);
        }
        self
    }

    /// The writer, to commit after the download.
    pub fn into_writer(self) -> Writer {
        self.writer
    }

    async fn write_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = self.buf.split().freeze();
        let offset = self.writer.offset();
        self.writer.write_at(offset, data).await.map_err(io_err)?;
        Ok(())
    }

    fn held_now(&self) -> i64 {
        self.writer.offset() + self.buf.len() as i64
    }

    async fn break_live(&mut self, why: &str) {
        if let Some(tx) = self.live.take() {
            let _ = tx.send(Err(io::Error::other(why.to_string()))).await;
        }
    }
}

impl BlobSink for ContentSink {
    async fn held(&mut self) -> io::Result<u64> {
        self.write_buf().await?;
        Ok(self.writer.offset() as u64)
    }

    async fn hash_held(&mut self, verifier: &mut Verifier) -> io::Result<()> {
        self.write_buf().await?;
        let end = self.writer.offset() as u64;
        let path = self
            .writer
            .data_path()
            .ok_or_else(|| io::Error::other("the blob is shared; there is nothing to hash"))?;
        let mut f = tokio::fs::File::open(&path).await?;
        let mut buf = vec![0u8; CHUNK_SIZE];
        let mut left = end;
        while left > 0 {
            let want = (left as usize).min(buf.len());
            let n = f.read(&mut buf[..want]).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("ingest {} is shorter than its offset", path.display()),
                ));
            }
            verifier.update(&buf[..n]);
            left -= n as u64;
        }
        // What is resumed cannot be streamed live from its start.
        if end > 0 {
            self.break_live("the download resumed an earlier ingest")
                .await;
        }
        Ok(())
    }

    async fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(tx) = &self.live
            && tx.send(Ok(Bytes::copy_from_slice(data))).await.is_err()
        {
            // The consumer went away; it reads the committed blob instead.
            self.live = None;
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_SIZE {
            self.write_buf().await?;
        }
        if self.ticker.due() {
            self.progress.bytes(
                &self.digest,
                LayerStatus::Downloading,
                self.held_now(),
                self.total,
            );
        }
        Ok(())
    }

    async fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.write_buf().await?;
        if len as i64 == self.writer.offset() {
            return Ok(());
        }
        if len != 0 {
            return Err(io::Error::other(format!(
                "ingest {}: cannot keep {len} of {} bytes (only starting over is supported)",
                self.writer.reference(),
                self.writer.offset()
            )));
        }
        self.break_live("the download started over").await;
        self.writer.truncate().await.map_err(io_err)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.write_buf().await?;
        self.progress.bytes(
            &self.digest,
            LayerStatus::Downloading,
            self.held_now(),
            self.total,
        );
        Ok(())
    }
}

/// Opens a writer for `reference`, waiting while another pull holds the same ref
/// (Unavailable), until it finishes (then the blob usually exists: AlreadyExists).
pub async fn open_writer(
    store: &Arc<ContentStore>,
    ns: &str,
    reference: &str,
    total: i64,
    expected: &Digest,
    lease: Option<&str>,
) -> Result<Writer> {
    let mut waited = 0u32;
    loop {
        match store
            .writer(ns, reference, total, Some(expected.clone()), lease)
            .await
        {
            Err(Error::Unavailable(m)) => {
                waited += 1;
                if waited.is_multiple_of(100) {
                    tracing::info!(reference, "waiting for another writer of the blob: {m}");
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}
