//! Pushes: blobs (skipped when the registry has them, mounted from another repository
//! of the same registry when the caller knows one, else uploaded in one PUT or in
//! PATCH chunks) and manifests (PUT with their media type). A [`BlobSource`] gives the
//! bytes and can be reopened, so a failed upload starts again cleanly.

use std::future::Future;
use std::io;
use std::path::PathBuf;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

use super::auth::Scopes;
use super::digest::Digest;
use super::error::{Error, Result};
use super::hosts::Endpoint;
use super::media::{Descriptor, Kind, MAX_MANIFEST_SIZE, classify};
use super::registry::{DOCKER_CONTENT_DIGEST, Repository, Req, status_error};

/// Where a pushed blob's bytes come from; opened again for each attempt.
pub trait BlobSource: Send + Sync {
    type Reader: AsyncRead + Send + Unpin;
    /// A reader positioned at `offset`.
    fn open_at(&self, offset: u64) -> impl Future<Output = io::Result<Self::Reader>> + Send;
}

impl BlobSource for Bytes {
    type Reader = io::Cursor<Bytes>;
    async fn open_at(&self, offset: u64) -> io::Result<io::Cursor<Bytes>> {
        let mut c = io::Cursor::new(self.clone());
        c.set_position(offset);
        Ok(c)
    }
}

/// A blob in a file.
#[derive(Debug, Clone)]
pub struct FileSource(pub PathBuf);

impl BlobSource for FileSource {
    type Reader = tokio::fs::File;
    async fn open_at(&self, offset: u64) -> io::Result<tokio::fs::File> {
        let mut f = tokio::fs::File::open(&self.0).await?;
        f.seek(io::SeekFrom::Start(offset)).await?;
        Ok(f)
    }
}

/// What a blob push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// The registry had the blob already.
    Exists,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

impl Repository {
    fn push_endpoint(&self) -> Result<Endpoint> {
        let mut eps = self.client.endpoints(&self.registry, false)?;
        eps.pop()
            .ok_or_else(|| Error::Protocol(format!("no endpoint for registry {}", self.registry)))
    }

    /// True when the registry holds blob `digest` in this repository.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let ep = self.push_endpoint()?;
        self.blob_exists_at(&ep, digest, &Scopes::pull(&self.repository))
            .await
    }

    async fn blob_exists_at(
        &self,
        ep: &Endpoint,
        digest: &Digest,
        scopes: &Scopes,
    ) -> Result<bool> {
        let url = ep.url(&format!("{}/blobs/{digest}", self.repository))?;
        let req = Req::new(Method::HEAD, url);
        let resp = self
            .client
            .send_retrying(ep, scopes, self.credentials.as_ref(), &req)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(ep, &req, resp, &format!("blob {digest}")).await),
        }
    }

    /// Pushes the blob `desc` from `source`. With `mount_from` (another repository path
    /// of the same registry that holds the blob) a cross-repository mount is tried
    /// first. Transient failures restart the upload, with backoff.
    pub async fn push_blob<R: BlobSource>(
        &self,
        desc: &Descriptor,
        source: &R,
        mount_from: Option<&str>,
    ) -> Result<PushOutcome> {
        let ep = self.push_endpoint()?;
        let mut scopes = Scopes::push(&self.repository);
        if let Some(from) = mount_from {
            scopes = scopes.with(&format!("repository:{from}:pull"));
        }
        let mut attempt = 0;
        loop {
            match self
                .push_blob_once(&ep, &scopes, desc, source, mount_from)
                .await
            {
                Err(e) if e.is_transient() && attempt < self.client.retries() => {
                    attempt += 1;
                    tracing::warn!(blob = %desc.digest, attempt, error = %e, "blob upload failed, starting again");
                    tokio::time::sleep(self.client.backoff(attempt)).await;
                }
                r => return r,
            }
        }
    }

    async fn push_blob_once<R: BlobSource>(
        &self,
        ep: &Endpoint,
        scopes: &Scopes,
        desc: &Descriptor,
        source: &R,
        mount_from: Option<&str>,
    ) -> Result<PushOutcome> {
        let creds = self.credentials.as_ref();
        let what = format!(
            "blob {} for {}/{}",
            desc.digest, self.registry, self.repository
        );
        if self.blob_exists_at(ep, &desc.digest, scopes).await? {
            return Ok(PushOutcome::Exists);
        }
        let mut url = ep.url(&format!("{}/blobs/uploads/", self.repository))?;
        if let Some(from) = mount_from.filter(|f| *f != self.repository) {
            url.query_pairs_mut()
                .append_pair("mount", &desc.digest.to_string())
                .append_pair("from", from);
        }
        let req = Req::new(Method::POST, url).header(CONTENT_LENGTH, "0");
        let resp = self.client.send(ep, scopes, creds, &req).await?;
        let mut location = match resp.status() {
            StatusCode::CREATED if mount_from.is_some() => return Ok(PushOutcome::Mounted),
            StatusCode::ACCEPTED | StatusCode::CREATED => upload_location(ep, &req.url, &resp)?,
            _ => return Err(status_error(ep, &req, resp, &what).await),
        };
        let io_err = |e| Error::io(format!("read {what}"), e);
        let mut reader = source.open_at(0).await.map_err(io_err)?;
        let chunk = self.client.options().chunk_size.max(1);

        if desc.size > chunk {
            let mut offset = 0u64;
            while offset < desc.size {
                let n = chunk.min(desc.size - offset);
                let data = read_exactly(&mut reader, n).await.map_err(io_err)?;
                let req = Req::new(Method::PATCH, location.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, &format!("{offset}-{}", offset + n - 1))
                    .header(CONTENT_LENGTH, &n.to_string())
                    .body(data);
                let resp = self.client.send(ep, scopes, creds, &req).await?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(status_error(ep, &req, resp, &what).await);
                }
                location = upload_location(ep, &req.url, &resp)?;
                offset += n;
            }
            let mut url = location;
            url.query_pairs_mut()
                .append_pair("digest", &desc.digest.to_string());
            let req = Req::new(Method::PUT, url).header(CONTENT_LENGTH, "0");
            let resp = self.client.send(ep, scopes, creds, &req).await?;
            if resp.status() != StatusCode::CREATED {
                return Err(status_error(ep, &req, resp, &what).await);
            }
        } else {
            let data = read_exactly(&mut reader, desc.size).await.map_err(io_err)?;
            let mut url = location;
            url.query_pairs_mut()
                .append_pair("digest", &desc.digest.to_string());
            let req = Req::new(Method::PUT, url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, &desc.size.to_string())
                .body(data);
            let resp = self.client.send(ep, scopes, creds, &req).await?;
            if resp.status() != StatusCode::CREATED {
                return Err(status_error(ep, &req, resp, &what).await);
            }
        }
        Ok(PushOutcome::Uploaded)
    }

    /// Puts a manifest or index under `object` (a tag, or its own digest) with its media
    /// type. Returns its descriptor.
    pub async fn push_manifest(
        &self,
        object: &str,
        media_type: &str,
        data: Bytes,
    ) -> Result<Descriptor> {
        let what = self.what(object);
        match classify(media_type)? {
            Kind::Manifest | Kind::Index => {}
            _ => {
                return Err(Error::UnsupportedMediaType {
                    media_type: media_type.to_string(),
                    context: format!("for manifest {what} (a manifest or index was expected)"),
                });
            }
        }
        if data.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(Error::ManifestTooLarge {
                reference: what,
                size: data.len() as u64,
                at_least: false,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let desc = Descriptor::of(media_type, &data);
        if object.contains(':') {
            let d = Digest::parse(object)?;
            if Digest::of(d.algorithm(), &data) != d {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {what}"),
                    expected: d.to_string(),
                    actual: desc.digest.to_string(),
                });
            }
        } else {
            super::reference::Reference::parse(&format!("x:{object}")).map_err(|_| {
                Error::InvalidReference {
                    reference: what.clone(),
                    reason: format!("tag {object:?} is not a valid tag"),
                }
            })?;
        }
        let ep = self.push_endpoint()?;
        let url = ep.url(&format!("{}/manifests/{object}", self.repository))?;
        let req = Req::new(Method::PUT, url)
            .header(CONTENT_TYPE, media_type)
            .body(data);
        let scopes = Scopes::push(&self.repository);
        let resp = self
            .client
            .send_retrying(&ep, &scopes, self.credentials.as_ref(), &req)
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(status_error(&ep, &req, resp, &format!("manifest {what}")).await);
        }
        if let Some(d) = resp
            .headers()
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok())
            && d.algorithm() == desc.digest.algorithm()
            && d != desc.digest
        {
            return Err(Error::DigestMismatch {
                what: format!("pushed manifest {what}"),
                expected: desc.digest.to_string(),
                actual: d.to_string(),
            });
        }
        Ok(desc)
    }
}

fn upload_location(ep: &Endpoint, req_url: &Url, resp: &reqwest::Response) -> Result<Url> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::Protocol(format!(
                "{req_url}: upload answer without a Location header"
            ))
        })?;
    ep.base
        .join(loc)
        .or_else(|_| req_url.join(loc))
        .map_err(|e| Error::Protocol(format!("{req_url}: bad upload Location {loc:?}: {e}")))
}

async fn read_exactly<R: AsyncRead + Unpin>(r: &mut R, n: u64) -> io::Result<Bytes> {
    let mut buf = vec![0u8; n as usize];
    r.read_exact(&mut buf).await.map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the source is shorter than the descriptor's size",
            )
        } else {
            e
        }
    })?;
    Ok(Bytes::from(buf))
}
