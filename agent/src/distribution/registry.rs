//! The Registry v2 / OCI distribution client: one [`RegistryClient`] per daemon (HTTP
//! clients, token cache), one [`Repository`] handle per repository and caller's
//! credentials. This file holds request sending (authentication, endpoint fallback,
//! retries, error mapping), manifest resolution and fetching, tag listing and catalog
//! search; blob transfer lives in `blob.rs` and pushes in `push.rs`.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, LINK,
    WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;

use super::auth::{AuthCache, Challenge, Credentials, Scopes, Sent, parse_challenges};
use super::digest::{Digest, Verifier};
use super::error::{Error, Result};
use super::hosts::{Endpoint, Hosts};
use super::media::{
    Descriptor, Kind, MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, classify, sniff_manifest_type,
};
use super::reference::Reference;
use crate::config::RegistryConfig;

/// Evaluates the future `$body` for each endpoint `$ep` of `$repo` (mirrors first when
/// `$mirrors`) until one succeeds. A mirror's failure is logged and the next endpoint
/// tried; the host's is returned. A macro rather than a closure-taking function so the
/// calling futures stay `Send` (async closures borrowing their argument are not, yet).
macro_rules! on_endpoints {
    ($repo:expr, $mirrors:expr, |$ep:ident| $body:expr) => {{
        let eps = $repo.client.endpoints(&$repo.registry, $mirrors)?;
        let mut result = Err($crate::distribution::error::Error::Protocol(format!(
            "no endpoint for registry {}",
            $repo.registry
        )));
        for $ep in &eps {
            match $body.await {
                Ok(v) => {
                    result = Ok(v);
                    break;
                }
                Err(e) if $ep.mirror => {
                    tracing::warn!(mirror = %$ep.base, error = %e, "mirror failed, trying the next endpoint");
                    result = Err(e);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        result
    }};
}
pub(crate) use on_endpoints;

/// The header registries put a content digest in.
pub const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// Knobs of the client that are not part of the daemon's configuration.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// First delay before a retry; it doubles each time, up to 10 s.
    pub backoff: Duration,
    /// Size of one PATCH of a chunked upload; blobs up to this size go up in one PUT.
    pub chunk_size: u64,
    /// Entries asked for per page of tag lists and catalogs (`n=`).
    pub page_size: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            backoff: Duration::from_millis(250),
            chunk_size: 16 << 20,
            page_size: 100,
        }
    }
}

/// A registry client shared by every pull and push of the daemon. Cheap to clone.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    hosts: Hosts,
    auth: AuthCache,
    retries: u32,
    options: ClientOptions,
}

/// One repository of one registry, seen with the caller's credentials. Cheap to clone;
/// clones share the client's connections and token cache.
#[derive(Clone)]
pub struct Repository {
    pub(crate) client: RegistryClient,
    pub(crate) registry: String,
    pub(crate) repository: String,
    pub(crate) credentials: Option<Credentials>,
}

/// A request that can be sent again (after a 401, or as a retry).
pub(crate) struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

impl Req {
    pub fn new(method: Method, url: Url) -> Req {
        Req {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Req {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    pub fn body(mut self, body: Bytes) -> Req {
        self.body = Some(body);
        self
    }
}

impl RegistryClient {
    /// A client for the `[registry]` configuration with default options.
    pub fn new(config: &RegistryConfig) -> Result<RegistryClient> {
        Self::with_options(config, ClientOptions::default())
    }

    pub fn with_options(config: &RegistryConfig, options: ClientOptions) -> Result<RegistryClient> {
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                hosts: Hosts::new(config)?,
                auth: AuthCache::default(),
                retries: config.retries,
                options,
            }),
        })
    }

    /// A handle on the repository of `reference` (its tag or digest is not used).
    pub fn repository(
        &self,
        reference: &Reference,
        credentials: Option<Credentials>,
    ) -> Repository {
        Repository {
            client: self.clone(),
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
            credentials,
        }
    }

    pub(crate) fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    pub(crate) fn retries(&self) -> u32 {
        self.inner.retries
    }

    pub(crate) fn endpoints(&self, registry: &str, with_mirrors: bool) -> Result<Vec<Endpoint>> {
        self.inner.hosts.endpoints(registry, with_mirrors)
    }

    /// The delay before retry number `n` (1-based).
    pub(crate) fn backoff(&self, n: u32) -> Duration {
        let base = self.inner.options.backoff;
        let d = base.saturating_mul(1u32 << n.saturating_sub(1).min(16));
        d.min(Duration::from_secs(10))
    }

    /// Searches the catalog of `registry` (`/v2/_catalog`) for repositories whose name
    /// contains `term` (case-insensitive; empty matches all), reading at most `limit`
    /// matches when given. Mirrors are not asked.
    pub async fn search(
        &self,
        registry: &str,
        term: &str,
        credentials: Option<Credentials>,
        limit: Option<usize>,
    ) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Option<Vec<String>>,
        }
        let eps = self.endpoints(registry, false)?;
        let ep = eps.last().expect("the host itself is always an endpoint");
        let term = term.to_lowercase();
        let scopes = Scopes::catalog();
        let mut url = ep.url(&format!("_catalog?n={}", self.options().page_size))?;
        let mut out = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            let req = Req::new(Method::GET, url.clone());
            let resp = self
                .send_retrying(ep, &scopes, credentials.as_ref(), &req)
                .await?;
            if !resp.status().is_success() {
                return Err(status_error(ep, &req, resp, &format!("catalog of {registry}")).await);
            }
            let next = next_link(ep, resp.headers());
            let body = read_limited(
                resp,
                &url,
                &format!("catalog of {registry}"),
                MAX_MANIFEST_SIZE,
            )
            .await?;
            let page: Catalog = serde_json::from_slice(&body)
                .map_err(|e| Error::Protocol(format!("{url}: unreadable catalog page: {e}")))?;
            for r in page.repositories.unwrap_or_default() {
                if r.to_lowercase().contains(&term) {
                    out.push(r);
                    if limit.is_some_and(|l| out.len() >= l) {
                        return Ok(out);
                    }
                }
            }
            match next {
                Some(n) if n != url && pages < 100_000 => url = n,
                _ => return Ok(out),
            }
        }
    }

    /// Sends `req` to `ep`, answering authentication challenges once. Returns any answer
    /// but 401, which becomes a login or credentials error.
    pub(crate) async fn send(
        &self,
        ep: &Endpoint,
        scopes: &Scopes,
        creds: Option<&Credentials>,
        req: &Req,
    ) -> Result<Response> {
        // Mirrors never see the caller's credentials.
        let creds = if ep.mirror { None } else { creds };
        let authority = ep.authority();
        let auth = &self.inner.auth;
        let mut retried = false;
        loop {
            let known = auth.challenge(&authority);
            let (header, sent) = auth
                .authorization(&ep.client, known.as_ref(), scopes, creds, &ep.registry)
                .await?;
            let mut rb = ep
                .client
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            if let Some(h) = header {
                rb = rb.header(AUTHORIZATION, h);
            }
            if let Some(b) = &req.body {
                rb = rb.body(b.clone());
            }
            let resp = rb.send().await.map_err(|e| net_error(ep, &req.url, &e))?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            let challenges: Vec<Challenge> = resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(parse_challenges)
                .collect();
            let new = challenges
                .iter()
                .find(|c| matches!(c, Challenge::Bearer { .. }))
                .or_else(|| challenges.first())
                .cloned();
            let detail = error_detail(resp).await;
            let again = !retried
                && match (&new, &sent) {
                    (None, _) => false,
                    (Some(Challenge::Basic { .. }), Sent::Nothing) => {
                        matches!(creds, Some(Credentials::Basic { .. }))
                    }
                    (Some(Challenge::Basic { .. }), _) => false,
                    (Some(Challenge::Bearer { .. }), _) => true,
                };
            if let Some(old) = &known {
                auth.forget_token(old, scopes, creds);
            }
            if let Some(ch) = new {
                auth.learn(&authority, ch);
            }
            if again {
                retried = true;
                continue;
            }
            let action = scopes.action().to_string();
            let registry = if ep.mirror {
                format!("{} (mirror {})", ep.registry, ep.base)
            } else {
                ep.registry.clone()
            };
            return Err(match creds {
                None => Error::LoginRequired {
                    action,
                    registry,
                    login_host: ep.registry.clone(),
                    detail,
                },
                Some(_) => Error::Unauthorized {
                    action,
                    registry,
                    detail,
                },
            });
        }
    }

    /// [`send`](Self::send), retried with backoff after a 5xx or 429 answer or a dropped
    /// connection. A registry that cannot be reached at all is not retried: that error
    /// comes back within the connect timeout.
    pub(crate) async fn send_retrying(
        &self,
        ep: &Endpoint,
        scopes: &Scopes,
        creds: Option<&Credentials>,
        req: &Req,
    ) -> Result<Response> {
        let mut attempt = 0;
        loop {
            let r = self.send(ep, scopes, creds, req).await;
            let transient = match &r {
                Ok(resp) => {
                    resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS
                }
                Err(e @ Error::Transfer { .. }) => e.is_transient(),
                Err(_) => false,
            };
            if !transient || attempt >= self.retries() {
                return r;
            }
            attempt += 1;
            tracing::warn!(url = %req.url, attempt, "registry request failed, retrying");
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }
}

impl Repository {
    /// The registry host (`docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub(crate) fn what(&self, object: &str) -> String {
        let sep = if object.contains(':') { '@' } else { ':' };
        format!("{}/{}{sep}{object}", self.registry, self.repository)
    }

    /// Resolves a tag or digest to the descriptor of its manifest or index: a HEAD
    /// request, then a GET when the HEAD answer lacks the digest or media type.
    pub async fn resolve(&self, object: &str) -> Result<Descriptor> {
        let want = parse_object(&self.what(object), object)?;
        on_endpoints!(self, true, |ep| self.resolve_at(ep, object, &want))
    }

    async fn resolve_at(
        &self,
        ep: &Endpoint,
        object: &str,
        want: &ObjectRef,
    ) -> Result<Descriptor> {
        let what = self.what(object);
        let url = ep.url(&format!("{}/manifests/{object}", self.repository))?;
        let req = Req::new(Method::HEAD, url).header(ACCEPT, MANIFEST_ACCEPT);
        let scopes = Scopes::pull(&self.repository);
        let resp = self
            .client
            .send_retrying(ep, &scopes, self.credentials.as_ref(), &req)
            .await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Err(status_error(ep, &req, resp, &format!("manifest {what}")).await);
        }
        if status.is_success() {
            let h = resp.headers();
            let size = h
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(size) = size
                && size > MAX_MANIFEST_SIZE
            {
                return Err(Error::ManifestTooLarge {
                    reference: what,
                    size,
                    at_least: false,
                    limit: MAX_MANIFEST_SIZE,
                });
            }
            let digest = h
                .get(DOCKER_CONTENT_DIGEST)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Digest::parse(v).ok());
            let media_type = h
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
                .filter(|v| classify(v).is_ok());
            if let (Some(size), Some(digest), Some(media_type)) = (size, digest, media_type) {
                if let ObjectRef::Digest(d) = &want
                    && *d != digest
                {
                    return Err(Error::DigestMismatch {
                        what: format!("manifest {what}"),
                        expected: d.to_string(),
                        actual: digest.to_string(),
                    });
                }
                check_manifest_kind(&what, &media_type)?;
                return Ok(Descriptor {
                    media_type,
                    digest,
                    size,
                    urls: Vec::new(),
                    annotations: Default::default(),
                    platform: None,
                });
            }
        } else if status != StatusCode::METHOD_NOT_ALLOWED && !status.is_client_error() {
            return Err(status_error(ep, &req, resp, &format!("manifest {what}")).await);
        }
        // Not enough from HEAD: GET the manifest and compute what is missing.
        self.get_manifest_at(ep, object, want).await.map(|(d, _)| d)
    }

    /// Fetches a manifest or index by tag or digest: its descriptor (digest computed
    /// from the bytes) and its bytes.
    pub async fn fetch_manifest_by_ref(&self, object: &str) -> Result<(Descriptor, Bytes)> {
        let want = parse_object(&self.what(object), object)?;
        on_endpoints!(self, true, |ep| self.get_manifest_at(ep, object, &want))
    }

    /// Fetches the manifest or index `desc` describes and checks its size and digest.
    pub async fn fetch_manifest(&self, desc: &Descriptor) -> Result<Bytes> {
        let what = self.what(&desc.digest.to_string());
        if desc.size > MAX_MANIFEST_SIZE {
            return Err(Error::ManifestTooLarge {
                reference: what,
                size: desc.size,
                at_least: false,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let object = desc.digest.to_string();
        let want = ObjectRef::Digest(desc.digest.clone());
        let (got, data) = on_endpoints!(self, true, |ep| self.get_manifest_at(ep, &object, &want))?;
        if got.size != desc.size {
            return Err(Error::SizeMismatch {
                what: format!("manifest {what}"),
                expected: desc.size,
                actual: got.size,
            });
        }
        Ok(data)
    }

    async fn get_manifest_at(
        &self,
        ep: &Endpoint,
        object: &str,
        want: &ObjectRef,
    ) -> Result<(Descriptor, Bytes)> {
        let what = self.what(object);
        let url = ep.url(&format!("{}/manifests/{object}", self.repository))?;
        let req = Req::new(Method::GET, url.clone()).header(ACCEPT, MANIFEST_ACCEPT);
        let scopes = Scopes::pull(&self.repository);
        let resp = self
            .client
            .send_retrying(ep, &scopes, self.credentials.as_ref(), &req)
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(ep, &req, resp, &format!("manifest {what}")).await);
        }
        let header_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
        let header_digest = resp
            .headers()
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok());
        let data = read_limited(resp, &url, &what, MAX_MANIFEST_SIZE).await?;
        let media_type = match header_type {
            Some(t) if classify(&t).is_ok() => t,
            other => sniff_manifest_type(&data)
                .or(other)
                .unwrap_or_else(|| "(none)".to_string()),
        };
        check_manifest_kind(&what, &media_type)?;
        let algorithm = match want {
            ObjectRef::Digest(d) => d.algorithm(),
            ObjectRef::Tag => header_digest
                .as_ref()
                .map_or(super::digest::Algorithm::Sha256, Digest::algorithm),
        };
        let mut v = Verifier::new(algorithm);
        v.update(&data);
        let digest = v.finish();
        let expected = match want {
            ObjectRef::Digest(d) => Some(d.clone()),
            ObjectRef::Tag => header_digest,
        };
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest {what}"),
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        Ok((
            Descriptor {
                media_type,
                digest,
                size: data.len() as u64,
                urls: Vec::new(),
                annotations: Default::default(),
                platform: None,
            },
            data,
        ))
    }

    /// Every tag of the repository, following `Link` pagination.
    pub async fn list_tags(&self) -> Result<Vec<String>> {
        on_endpoints!(self, true, |ep| self.list_tags_at(ep))
    }

    async fn list_tags_at(&self, ep: &Endpoint) -> Result<Vec<String>> {
        let scopes = Scopes::pull(&self.repository);
        let what = format!("tags of {}/{}", self.registry, self.repository);
        let mut url = ep.url(&format!(
            "{}/tags/list?n={}",
            self.repository,
            self.client.options().page_size
        ))?;
        let mut tags = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            let req = Req::new(Method::GET, url.clone());
            let resp = self
                .client
                .send_retrying(ep, &scopes, self.credentials.as_ref(), &req)
                .await?;
            if !resp.status().is_success() {
                return Err(status_error(ep, &req, resp, &what).await);
            }
            let next = next_link(ep, resp.headers());
            let body = read_limited(resp, &url, &what, MAX_MANIFEST_SIZE).await?;
            let page: TagList = serde_json::from_slice(&body)
                .map_err(|e| Error::Protocol(format!("{url}: unreadable tag list: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) if n != url && pages < 100_000 => url = n,
                _ => return Ok(tags),
            }
        }
    }
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// What a manifest request names.
pub(crate) enum ObjectRef {
    Tag,
    Digest(Digest),
}

fn parse_object(what: &str, object: &str) -> Result<ObjectRef> {
    if object.contains(':') {
        Digest::parse(object)
            .map(ObjectRef::Digest)
            .map_err(|e| match e {
                Error::InvalidDigest { reason, .. } => Error::InvalidReference {
                    reference: what.to_string(),
                    reason,
                },
                other => other,
            })
    } else {
        // Reuse the reference grammar's tag check.
        Reference::parse(&format!("x:{object}")).map_err(|_| Error::InvalidReference {
            reference: what.to_string(),
            reason: format!("tag {object:?} is not a valid tag"),
        })?;
        Ok(ObjectRef::Tag)
    }
}

fn check_manifest_kind(what: &str, media_type: &str) -> Result<()> {
    match classify(media_type) {
        Ok(Kind::Manifest | Kind::Index) => Ok(()),
        Ok(_) => Err(Error::UnsupportedMediaType {
            media_type: media_type.to_string(),
            context: format!("for manifest {what} (a manifest or index was expected)"),
        }),
        Err(Error::UnsupportedMediaType {
            media_type,
            context,
        }) => Err(Error::UnsupportedMediaType {
            media_type,
            context: format!("for manifest {what} {context}"),
        }),
        Err(e) => Err(e),
    }
}

/// Reads a whole small body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    mut resp: Response,
    url: &Url,
    what: &str,
    limit: u64,
) -> Result<Bytes> {
    if let Some(len) = resp.content_length()
        && len > limit
    {
        return Err(Error::ManifestTooLarge {
            reference: what.to_string(),
            size: len,
            at_least: false,
            limit,
        });
    }
    let mut buf = BytesMut::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if (buf.len() + c.len()) as u64 > limit {
                    return Err(Error::ManifestTooLarge {
                        reference: what.to_string(),
                        size: (buf.len() + c.len()) as u64,
                        at_least: true,
                        limit,
                    });
                }
                buf.extend_from_slice(&c);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => {
                return Err(Error::Transfer {
                    url: url.to_string(),
                    reason: describe_reqwest(&e),
                });
            }
        }
    }
}

/// The `rel="next"` target of a `Link` header, resolved against the endpoint.
fn next_link(ep: &Endpoint, headers: &HeaderMap) -> Option<Url> {
    for v in headers.get_all(LINK) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(',') {
            let part = part.trim();
            let Some(rest) = part.strip_prefix('<') else {
                continue;
            };
            let Some((target, params)) = rest.split_once('>') else {
                continue;
            };
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                return ep.base.join(target).ok();
            }
        }
    }
    None
}

/// Maps a failed request to an error naming the registry and URL.
pub(crate) fn net_error(ep: &Endpoint, url: &Url, e: &reqwest::Error) -> Error {
    let (connect, read) = ep.timeouts;
    if e.is_connect() {
        let reason = if e.is_timeout() {
            format!(
                "no connection within {} (registry.timeout)",
                humantime::format_duration(connect)
            )
        } else {
            describe_reqwest(e)
        };
        Error::Unreachable {
            registry: ep.registry.clone(),
            url: url.to_string(),
            reason,
        }
    } else if e.is_timeout() {
        Error::Transfer {
            url: url.to_string(),
            reason: format!(
                "no answer within {} (registry.read_timeout)",
                humantime::format_duration(read)
            ),
        }
    } else {
        Error::Transfer {
            url: url.to_string(),
            reason: describe_reqwest(e),
        }
    }
}

/// A reqwest error with its causes, without the URL (callers name it).
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    if e.is_timeout() {
        parts.push("timed out".into());
    }
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        let m = s.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        src = s.source();
    }
    if parts.is_empty() {
        parts.push(e.without_url_string());
    }
    parts.join(": ")
}

trait WithoutUrl {
    fn without_url_string(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_string(&self) -> String {
        let mut s = self.to_string();
        if let Some(u) = self.url() {
            s = s.replace(&format!(" ({u})"), "").replace(u.as_str(), "");
        }
        s
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// ": CODE: message" from a registry's error body, or a short excerpt, or nothing.
pub(crate) async fn error_detail(resp: Response) -> String {
    let Ok(body) = resp.bytes().await else {
        return String::new();
    };
    if let Ok(e) = serde_json::from_slice::<ErrorBody>(&body)
        && !e.errors.is_empty()
    {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|x| match (x.code.is_empty(), x.message.is_empty()) {
                (false, false) => format!("{}: {}", x.code, x.message),
                (false, true) => x.code.clone(),
                _ => x.message.clone(),
            })
            .collect();
        return format!(": {}", parts.join("; "));
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('<') {
        String::new()
    } else {
        let short: String = text.chars().take(200).collect();
        format!(": {short}")
    }
}

/// The error for an unexpected answer: NotFound for 404, Denied for 403, else the status.
pub(crate) async fn status_error(ep: &Endpoint, req: &Req, resp: Response, what: &str) -> Error {
    let status = resp.status();
    let detail = error_detail(resp).await;
    match status {
        StatusCode::NOT_FOUND => Error::NotFound {
            what: what.to_string(),
            registry: if ep.mirror {
                format!("mirror {}", ep.base)
            } else {
                ep.registry.clone()
            },
            detail,
        },
        StatusCode::FORBIDDEN => Error::Denied {
            action: req.method.to_string().to_lowercase(),
            registry: ep.registry.clone(),
            detail,
        },
        _ => Error::Status {
            method: req.method.to_string(),
            url: req.url.to_string(),
            status: status.as_u16(),
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        let cfg = RegistryConfig::default();
        let hosts = Hosts::new(&cfg).unwrap();
        let ep = hosts.endpoints("127.0.0.1:5000", false).unwrap().remove(0);
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static(r#"</v2/_catalog?last=b&n=2>; rel="next""#),
        );
        assert_eq!(
            next_link(&ep, &h).unwrap().as_str(),
            "http://127.0.0.1:5000/v2/_catalog?last=b&n=2"
        );
        let mut h = HeaderMap::new();
        h.insert(LINK, HeaderValue::from_static(r#"</x>; rel="prev""#));
        assert!(next_link(&ep, &h).is_none());
    }

    #[test]
    fn objects_are_checked() {
        assert!(matches!(parse_object("w", "latest"), Ok(ObjectRef::Tag)));
        assert!(parse_object("w", "bad tag").is_err());
        assert!(parse_object("w", "sha256:12").is_err());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = RegistryClient::new(&RegistryConfig::default()).unwrap();
        assert_eq!(c.backoff(1), Duration::from_millis(250));
        assert_eq!(c.backoff(2), Duration::from_millis(500));
        assert_eq!(c.backoff(30), Duration::from_secs(10));
    }
}
