//! A real OCI distribution registry for tests: Debian's `docker-registry` (distribution
//! 2.8) on a free 127.0.0.1 port with its storage in a temp dir, optionally behind htpasswd
//! Basic auth; plus a small blocking client of the registry HTTP API to push fixtures
//! (monolithic blob uploads, manifests, indexes) and read them back.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use tempfile::TempDir;

use crate::error::{Error, Result, io};
use crate::fixtures::{Fixture, blob::MANIFEST_TYPES};
use crate::{ports, procs};

/// Where Debian's `docker-registry` package installs the registry.
pub const REGISTRY: &str = "/usr/bin/docker-registry";
/// How long to wait for the registry to answer `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest response body read (blobs included).
const MAX_BODY: u64 = 1 << 30;

/// A running registry; stopped by PID and its storage removed when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    credentials: Option<(String, String)>,
    agent: ureq::Agent,
}

/// A manifest (or index) fetched back from a registry.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The `Content-Type` the registry answered.
    pub media_type: String,
    /// The `Docker-Content-Digest` header.
    pub digest: String,
    /// The bytes.
    pub data: Vec<u8>,
}

impl FetchedManifest {
    /// The bytes parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.data).unwrap_or(serde_json::Value::Null)
    }
}

/// A raw answer of the registry.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Registry {
    /// Starts a registry without authentication.
    pub fn start() -> Result<Registry> {
        Registry::launch(None)
    }

    /// Starts a registry that requires HTTP Basic auth as `user` / `password` (htpasswd
    /// with a bcrypt entry).
    pub fn start_with_auth(user: &str, password: &str) -> Result<Registry> {
        Registry::launch(Some((user.to_string(), password.to_string())))
    }

    fn launch(credentials: Option<(String, String)>) -> Result<Registry> {
        if !Path::new(REGISTRY).is_file() {
            return Err(Error::Missing {
                what: "docker-registry".into(),
                path: REGISTRY.into(),
                hint: "install it with `apt-get install -y docker-registry`".into(),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-it-registry-")
            .tempdir()
            .map_err(io("create the registry's temp dir"))?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).map_err(io(format!("create {}", storage.display())))?;
        let htpasswd = match &credentials {
            Some((user, password)) => {
                let hash = bcrypt::hash(password, 5).map_err(|e| Error::Fixture {
                    name: "htpasswd".into(),
                    message: e.to_string(),
                })?;
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{user}:{hash}\n"))
                    .map_err(io(format!("write {}", path.display())))?;
                Some(path)
            }
            None => None,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .max_redirects(0)
            .build()
            .into();
        let mut registry = Registry {
            child: None,
            dir,
            port: 0,
            credentials,
            agent,
        };
        // Another process may take the port between choosing and binding it: retry.
        let mut last = None;
        for _ in 0..5 {
            let port = ports::free_port();
            match registry.spawn(port, &storage, htpasswd.as_deref()) {
                Ok(()) => return Ok(registry),
                Err(e) => {
                    let in_use = registry.log().contains("address already in use");
                    last = Some(e);
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn spawn(&mut self, port: u16, storage: &Path, htpasswd: Option<&Path>) -> Result<()> {
        self.port = port;
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n\
             health:\n  storagedriver:\n    enabled: false\n",
            storage.display()
        );
        if let Some(path) = htpasswd {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                path.display()
            ));
        }
        let config_path = self.dir.path().join("config.yml");
        std::fs::write(&config_path, config)
            .map_err(io(format!("write {}", config_path.display())))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(io("open the registry log"))?;
        let log2 = log.try_clone().map_err(io("duplicate the registry log"))?;
        let child = Command::new(REGISTRY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io(format!("start {REGISTRY}")))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(Error::Exited {
                    what: format!("docker-registry on 127.0.0.1:{port}"),
                    status,
                    log: self.log(),
                });
            }
            if let Ok(resp) = self.request("GET", "/v2/", &[], None, false)
                && (resp.status == 200 || resp.status == 401)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(Error::Timeout {
                    what: format!("docker-registry to answer GET /v2/ on 127.0.0.1:{port}"),
                    after: READY_TIMEOUT,
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = procs::terminate(&mut child, Duration::from_secs(5));
        }
    }

    /// `127.0.0.1:PORT`, the registry host in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `127.0.0.1:PORT/<name>`: a full image reference on this registry.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    /// The credentials it requires, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Where it stores blobs and manifests.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// The registry's log (also its access log).
    pub fn log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Sends one request to `path_or_url` (a path on this registry or an absolute URL),
    /// with this registry's credentials when `auth` is set. Any status is an answer.
    pub fn request(
        &self,
        method: &str,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        auth: bool,
    ) -> Result<HttpResponse> {
        let url = if path_or_url.starts_with("http://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.url())
        };
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        if auth && let Some((user, password)) = &self.credentials {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            builder = builder.header("Authorization", format!("Basic {token}"));
        }
        let fail = |message: String| Error::Registry {
            url: format!("{method} {url}"),
            message,
        };
        let request = builder
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|e| fail(e.to_string()))?;
        let mut response = self.agent.run(request).map_err(|e| fail(e.to_string()))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .reader()
            .read_to_end(&mut body)
            .map_err(|e| fail(format!("read the body: {e}")))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn expect(
        &self,
        method: &str,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        ok: &[u16],
    ) -> Result<HttpResponse> {
        let resp = self.request(method, path_or_url, headers, body, true)?;
        if ok.contains(&resp.status) {
            Ok(resp)
        } else {
            Err(Error::Registry {
                url: format!("{method} {path_or_url}"),
                message: format!("answered {}: {}", resp.status, resp.text()),
            })
        }
    }

    /// Whether blob `digest` is in repository `repo`.
    pub fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let resp = self.expect(
            "HEAD",
            &format!("/v2/{repo}/blobs/{digest}"),
            &[],
            None,
            &[200, 404],
        )?;
        Ok(resp.status == 200)
    }

    /// Uploads `data` as blob `digest` into `repo` (POST, then one monolithic PUT);
    /// skipped if already there.
    pub fn push_blob(&self, repo: &str, digest: &str, data: &[u8]) -> Result<()> {
        if self.blob_exists(repo, digest)? {
            return Ok(());
        }
        let started = self.expect(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            None,
            &[202],
        )?;
        let location = started.header("location").ok_or_else(|| Error::Registry {
            url: format!("POST /v2/{repo}/blobs/uploads/"),
            message: "202 without a Location header".into(),
        })?;
        let location = if location.starts_with('/') {
            format!("{}{location}", self.url())
        } else {
            location.to_string()
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let len = data.len().to_string();
        self.expect(
            "PUT",
            &put,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", &len),
            ],
            Some(data),
            &[201],
        )?;
        Ok(())
    }

    /// Puts a manifest or index under `reference` (tag or digest) in `repo`; returns the
    /// digest the registry computed.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        data: &[u8],
    ) -> Result<String> {
        let resp = self.expect(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            Some(data),
            &[201],
        )?;
        Ok(resp
            .header("docker-content-digest")
            .unwrap_or_default()
            .to_string())
    }

    /// Pushes every blob and manifest of `fixture` into the repository of `reference`
    /// (`name:tag`, `name` for `latest`, or `name@sha256:...` to push by digest only):
    /// configs and layers first, then per-platform manifests by digest, then the top
    /// manifest or index under the tag. Returns the top digest.
    pub fn push(&self, fixture: &dyn Fixture, reference: &str) -> Result<String> {
        let (repo, tag) = split_reference(reference);
        let top = fixture.top();
        for blob in fixture.blobs() {
            if blob.digest == top.digest {
                continue;
            }
            if blob.media_type.contains("manifest") || blob.media_type.contains("index") {
                self.push_manifest(repo, &blob.digest, &blob.media_type, &blob.data)?;
            } else {
                self.push_blob(repo, &blob.digest, &blob.data)?;
            }
        }
        let digest =
            self.push_manifest(repo, tag.unwrap_or(&top.digest), &top.media_type, &top.data)?;
        if digest != top.digest {
            return Err(Error::Registry {
                url: format!("PUT /v2/{repo}/manifests/{}", tag.unwrap_or(&top.digest)),
                message: format!("stored digest {digest}, expected {}", top.digest),
            });
        }
        Ok(digest)
    }

    /// Fetches the manifest or index `reference` (tag or digest) of `repo`, accepting
    /// every OCI and Docker manifest type.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest> {
        let accept = MANIFEST_TYPES.join(", ");
        let resp = self.expect(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", &accept)],
            None,
            &[200],
        )?;
        Ok(FetchedManifest {
            media_type: resp.header("content-type").unwrap_or_default().to_string(),
            digest: resp
                .header("docker-content-digest")
                .unwrap_or_default()
                .to_string(),
            data: resp.body,
        })
    }

    /// Fetches blob `digest` of `repo`.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Result<Vec<u8>> {
        Ok(self
            .expect(
                "GET",
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                None,
                &[200],
            )?
            .body)
    }

    /// The tags of `repo`.
    pub fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let resp = self.expect("GET", &format!("/v2/{repo}/tags/list"), &[], None, &[200])?;
        let v: serde_json::Value =
            serde_json::from_slice(&resp.body).map_err(|source| Error::Json {
                what: format!("tags of {repo}"),
                source,
            })?;
        Ok(v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The repositories in the registry's catalog.
    pub fn catalog(&self) -> Result<Vec<String>> {
        let resp = self.expect("GET", "/v2/_catalog", &[], None, &[200])?;
        let v: serde_json::Value =
            serde_json::from_slice(&resp.body).map_err(|source| Error::Json {
                what: "catalog".into(),
                source,
            })?;
        Ok(v["repositories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Deletes manifest `digest` from `repo`.
    pub fn delete_manifest(&self, repo: &str, digest: &str) -> Result<()> {
        self.expect(
            "DELETE",
            &format!("/v2/{repo}/manifests/{digest}"),
            &[],
            None,
            &[202],
        )?;
        Ok(())
    }
}

/// Splits `name[:tag]` or `name@digest` into the repository and the tag (`latest` by
/// default, `None` for a digest reference).
pub fn split_reference(reference: &str) -> (&str, Option<&str>) {
    if let Some((repo, _digest)) = reference.split_once('@') {
        return (repo, None);
    }
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], Some(&reference[slash + i + 1..])),
        None => (reference, Some("latest")),
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let start = log.len().saturating_sub(16 * 1024);
            let start = (start..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(log.len());
            eprintln!(
                "--- docker-registry log ({}) ---\n{}\n--- end ---",
                self.host(),
                &log[start..]
            );
        }
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repo_and_tag() {
        assert_eq!(split_reference("busybox:1"), ("busybox", Some("1")));
        assert_eq!(split_reference("busybox"), ("busybox", Some("latest")));
        assert_eq!(
            split_reference("library/busybox:v2"),
            ("library/busybox", Some("v2"))
        );
        assert_eq!(split_reference("a/b@sha256:00"), ("a/b", None));
    }
}
