//! Blob downloads that ride through dropped connections: a [`BlobSink`] holds what has
//! arrived, a download resumes with a Range request where it stopped (also across
//! process restarts, from what the sink already holds), retries back off exponentially,
//! and the size and digest are checked at the end. A mismatch is an error; the caller
//! discards what the sink holds.

use std::future::Future;
use std::io;

use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{Method, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::auth::Scopes;
use super::digest::Verifier;
use super::error::{Error, Result};
use super::hosts::Endpoint;
use super::media::{Descriptor, Kind, classify};
use super::registry::{Repository, Req, describe_reqwest, on_endpoints, status_error};

/// Where a downloaded blob goes: an append-only file-like target that can tell how much
/// it holds, read it back (to resume the digest) and drop a tail.
pub trait BlobSink: Send {
    /// How many bytes of the blob the sink already holds, from its start.
    fn held(&mut self) -> impl Future<Output = io::Result<u64>> + Send;
    /// Feeds the bytes held, from the start, into `verifier`.
    fn hash_held(&mut self, verifier: &mut Verifier)
    -> impl Future<Output = io::Result<()>> + Send;
    /// Appends `data`.
    fn append(&mut self, data: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Keeps only the first `len` bytes; later appends continue from there.
    fn truncate(&mut self, len: u64) -> impl Future<Output = io::Result<()>> + Send;
    /// Makes appended bytes visible to readers (not necessarily durable).
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

impl BlobSink for Vec<u8> {
    async fn held(&mut self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
    async fn hash_held(&mut self, verifier: &mut Verifier) -> io::Result<()> {
        verifier.update(self);
        Ok(())
    }
    async fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.extend_from_slice(data);
        Ok(())
    }
    async fn truncate(&mut self, len: u64) -> io::Result<()> {
        Vec::truncate(self, len as usize);
        Ok(())
    }
    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file opened for reading and writing; its length is what it holds.
impl BlobSink for tokio::fs::File {
    async fn held(&mut self) -> io::Result<u64> {
        let len = self.metadata().await?.len();
        self.seek(io::SeekFrom::Start(len)).await?;
        Ok(len)
    }
    async fn hash_held(&mut self, verifier: &mut Verifier) -> io::Result<()> {
        let end = self.seek(io::SeekFrom::End(0)).await?;
        self.seek(io::SeekFrom::Start(0)).await?;
        let mut buf = vec![0u8; 256 << 10];
        let mut left = end;
        while left > 0 {
            let n = self.read(&mut buf).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while its digest was computed",
                ));
            }
            verifier.update(&buf[..n]);
            left = left.saturating_sub(n as u64);
        }
        self.seek(io::SeekFrom::Start(end)).await?;
        Ok(())
    }
    async fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_all(data).await
    }
    async fn truncate(&mut self, len: u64) -> io::Result<()> {
        AsyncWriteExt::flush(self).await?;
        self.set_len(len).await?;
        self.seek(io::SeekFrom::Start(len)).await?;
        Ok(())
    }
    async fn flush(&mut self) -> io::Result<()> {
        AsyncWriteExt::flush(self).await
    }
}

impl Repository {
    /// Downloads the blob `desc` into `sink`, resuming after what the sink already holds.
    /// Dropped connections, truncated bodies and 5xx answers are retried (the configured
    /// number of times in a row without progress) with exponential backoff and a Range
    /// request from where the data stopped; a server that ignores Range restarts the
    /// sink from zero. Ends by checking size and digest: on a mismatch the sink holds
    /// bad data and the caller must discard it.
    pub async fn fetch_blob_resumable<S: BlobSink>(
        &self,
        desc: &Descriptor,
        sink: &mut S,
    ) -> Result<()> {
        let what = format!(
            "blob {} of {}/{}",
            desc.digest, self.registry, self.repository
        );
        let io_err = |e| Error::io(format!("write {what}"), e);
        let mut offset = sink.held().await.map_err(io_err)?;
        let mut verifier = Verifier::new(desc.digest.algorithm());
        if offset > desc.size {
            sink.truncate(0).await.map_err(io_err)?;
            offset = 0;
        } else if offset > 0 {
            sink.hash_held(&mut verifier).await.map_err(io_err)?;
        }
        let mut failures = 0u32;
        while offset < desc.size {
            let attempt: Result<()> = async {
                let (mut resp, start) = self.open_blob(desc, offset).await?;
                if start != offset {
                    // The server sent the whole blob: start over.
                    sink.truncate(0).await.map_err(io_err)?;
                    verifier = Verifier::new(desc.digest.algorithm());
                    offset = 0;
                }
                loop {
                    match resp.chunk().await {
                        Ok(Some(c)) => {
                            let n = c.len() as u64;
                            if offset + n > desc.size {
                                return Err(Error::SizeMismatch {
                                    what: what.clone(),
                                    expected: desc.size,
                                    actual: offset + n,
                                });
                            }
                            sink.append(&c).await.map_err(io_err)?;
                            verifier.update(&c);
                            offset += n;
                            failures = 0;
                        }
                        Ok(None) if offset == desc.size => return Ok(()),
                        Ok(None) => {
                            return Err(Error::Transfer {
                                url: resp.url().to_string(),
                                reason: format!(
                                    "the body ended after {offset} of {} bytes",
                                    desc.size
                                ),
                            });
                        }
                        Err(e) => {
                            return Err(Error::Transfer {
                                url: resp.url().to_string(),
                                reason: format!(
                                    "connection lost after {offset} of {} bytes: {}",
                                    desc.size,
                                    describe_reqwest(&e)
                                ),
                            });
                        }
                    }
                }
            }
            .await;
            match attempt {
                Ok(()) => break,
                Err(e) if e.is_transient() && failures < self.client.retries() => {
                    failures += 1;
                    tracing::warn!(
                        blob = %desc.digest,
                        offset,
                        attempt = failures,
                        error = %e,
                        "blob download interrupted, resuming"
                    );
                    tokio::time::sleep(self.client.backoff(failures)).await;
                }
                Err(e) => return Err(e),
            }
        }
        sink.flush().await.map_err(io_err)?;
        if offset != desc.size {
            return Err(Error::SizeMismatch {
                what,
                expected: desc.size,
                actual: offset,
            });
        }
        let actual = verifier.finish();
        if actual != desc.digest {
            return Err(Error::DigestMismatch {
                what,
                expected: desc.digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    /// Opens the blob from `offset` on the first endpoint that has it. Returns the
    /// response and the offset its body starts at (0 when Range was ignored).
    async fn open_blob(&self, desc: &Descriptor, offset: u64) -> Result<(Response, u64)> {
        let what = format!("blob {}", desc.digest);
        on_endpoints!(self, true, |ep| self.open_blob_at(ep, desc, offset, &what))
    }

    async fn open_blob_at(
        &self,
        ep: &Endpoint,
        desc: &Descriptor,
        offset: u64,
        what: &str,
    ) -> Result<(Response, u64)> {
        let url = ep.url(&format!("{}/blobs/{}", self.repository, desc.digest))?;
        let mut req = Req::new(Method::GET, url);
        if offset > 0 {
            req = req.header(RANGE, &format!("bytes={offset}-"));
        }
        let scopes = Scopes::pull(&self.repository);
        let resp = self
            .client
            .send(ep, &scopes, self.credentials.as_ref(), &req)
            .await?;
        match resp.status() {
            StatusCode::OK => Ok((resp, 0)),
            StatusCode::PARTIAL_CONTENT => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(content_range_start)
                    .ok_or_else(|| {
                        Error::Protocol(format!(
                            "{}: 206 answer without a usable Content-Range",
                            req.url
                        ))
                    })?;
                if start != offset {
                    return Err(Error::Protocol(format!(
                        "{}: asked for bytes from {offset}, got them from {start}",
                        req.url
                    )));
                }
                Ok((resp, start))
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // What we hold does not fit this blob: fetch it whole.
                let req = Req::new(Method::GET, req.url.clone());
                let resp = self
                    .client
                    .send(ep, &scopes, self.credentials.as_ref(), &req)
                    .await?;
                if resp.status() == StatusCode::OK {
                    Ok((resp, 0))
                } else {
                    Err(status_error(ep, &req, resp, what).await)
                }
            }
            _ => {
                let mut e = status_error(ep, &req, resp, what).await;
                if let (Error::NotFound { detail, .. }, Ok(Kind::Layer { foreign: true, .. })) =
                    (&mut e, classify(&desc.media_type))
                {
                    detail.push_str(
                        " (a foreign layer: fetching it from its urls is not implemented)",
                    );
                }
                Err(e)
            }
        }
    }
}

/// The first byte position of `bytes START-END/TOTAL`.
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, _) = rest.split_once('/').unwrap_or((rest, ""));
    range.split_once('-')?.0.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::digest::{Algorithm, Digest};

    #[test]
    fn content_ranges() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(content_range_start("items 1-2/3"), None);
    }

    #[tokio::test]
    async fn file_sink_resumes_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"hello ").unwrap();
        let mut f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .await
            .unwrap();
        assert_eq!(f.held().await.unwrap(), 6);
        let mut v = Verifier::new(Algorithm::Sha256);
        f.hash_held(&mut v).await.unwrap();
        f.append(b"world").await.unwrap();
        v.update(b"world");
        BlobSink::flush(&mut f).await.unwrap();
        assert_eq!(v.finish(), Digest::sha256_of(b"hello world"));
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        BlobSink::truncate(&mut f, 2).await.unwrap();
        f.append(b"y").await.unwrap();
        BlobSink::flush(&mut f).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hey");
    }
}
