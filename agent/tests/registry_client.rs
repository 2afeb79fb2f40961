//! The registry client against the real registry (Debian's `docker-registry`) on
//! 127.0.0.1: push and pull of a small busybox image, tags, catalog, Basic and Bearer
//! authentication, a connection cut mid-blob (resumes with Range), a corrupted byte
//! (digest mismatch), a manifest over 4 MiB, and unreachable or silent registries.
//! Everything listens on loopback; every registry is killed by PID when its guard drops.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use berth_agent::config::{RegistryConfig, RegistryHostConfig};
use berth_agent::distribution::media::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG,
    OCI_LAYER_GZIP, OCI_MANIFEST,
};
use berth_agent::distribution::{
    ClientOptions, Credentials, Descriptor, Document, Error, Index, Manifest, Platform,
    PlatformSpec, PushOutcome, Reference, RegistryClient, Repository, select_manifest,
};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

// ---------------------------------------------------------------- fixtures

/// A docker-registry process on a free loopback port, killed by PID on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

enum Auth {
    None,
    Htpasswd(String),
    Token { realm: String, cert_pem: String },
}

const TOKEN_SERVICE: &str = "berth-test-registry";
const TOKEN_ISSUER: &str = "berth-test-issuer";

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    async fn start(auth: Auth) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: apt-get install -y docker-registry"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd(entries) => {
                let p = dir.path().join("htpasswd");
                std::fs::write(&p, entries).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    p.display()
                )
            }
            Auth::Token { realm, cert_pem } => {
                let p = dir.path().join("token-ca.pem");
                std::fs::write(&p, cert_pem).unwrap();
                format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    \
                     issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    p.display()
                )
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n{auth_yaml}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut r = Registry { child, port, dir };
        r.wait_ready().await;
        r
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("http://127.0.0.1:{}/v2/", self.port);
        loop {
            if let Ok(resp) = reqwest::get(&url).await
                && (resp.status().is_success() || resp.status().as_u16() == 401)
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "docker-registry exited with {status}: {}",
                    std::fs::read_to_string(self.dir.path().join("registry.log"))
                        .unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "docker-registry did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client_with(config: RegistryConfig) -> RegistryClient {
    RegistryClient::with_options(
        &config,
        ClientOptions {
            backoff: Duration::from_millis(20),
            chunk_size: 256 << 10,
            page_size: 2,
        },
    )
    .unwrap()
}

fn client() -> RegistryClient {
    client_with(RegistryConfig::default())
}

fn repo(client: &RegistryClient, host: &str, path: &str, creds: Option<Credentials>) -> Repository {
    client.repository(&Reference::parse(&format!("{host}/{path}")).unwrap(), creds)
}

/// A one-layer image holding /bin/busybox: the layer (tar.gz), config and manifest.
struct TestImage {
    layer: Bytes,
    layer_desc: Descriptor,
    config: Bytes,
    config_desc: Descriptor,
    manifest: Bytes,
    manifest_desc: Descriptor,
}

async fn build_image(oci: bool) -> TestImage {
    let busybox = tokio::fs::read("/bin/busybox")
        .await
        .expect("/bin/busybox (apt-get install -y busybox-static)");
    let mut tar = tokio_tar::Builder::new(Vec::new());
    let mut h = tokio_tar::Header::new_gnu();
    h.set_entry_type(tokio_tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_cksum();
    tar.append_data(&mut h, "bin/", &[][..]).await.unwrap();
    let mut h = tokio_tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    h.set_cksum();
    tar.append_data(&mut h, "bin/busybox", &busybox[..])
        .await
        .unwrap();
    let tar = tar.into_inner().await.unwrap();
    let diff_id = berth_agent::distribution::Digest::sha256_of(&tar);
    let mut gz = async_compression::tokio::write::GzipEncoder::new(Vec::new());
    gz.write_all(&tar).await.unwrap();
    gz.shutdown().await.unwrap();
    let layer = Bytes::from(gz.into_inner());

    let (mt_manifest, mt_config, mt_layer) = if oci {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    } else {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
    };
    let config = Bytes::from(
        serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/busybox", "sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        })
        .to_string(),
    );
    let layer_desc = Descriptor::of(mt_layer, &layer);
    let config_desc = Descriptor::of(mt_config, &config);
    let manifest = Bytes::from(
        serde_json::to_vec(&Manifest {
            schema_version: 2,
            media_type: Some(mt_manifest.into()),
            config: config_desc.clone(),
            layers: vec![layer_desc.clone()],
            annotations: BTreeMap::new(),
        })
        .unwrap(),
    );
    let manifest_desc = Descriptor::of(mt_manifest, &manifest);
    TestImage {
        layer,
        layer_desc,
        config,
        config_desc,
        manifest,
        manifest_desc,
    }
}

async fn push_image(repo: &Repository, img: &TestImage, tag: &str) {
    repo.push_blob(&img.layer_desc, &img.layer, None)
        .await
        .unwrap();
    repo.push_blob(&img.config_desc, &img.config, None)
        .await
        .unwrap();
    let d = repo
        .push_manifest(tag, &img.manifest_desc.media_type, img.manifest.clone())
        .await
        .unwrap();
    assert_eq!(d.digest, img.manifest_desc.digest);
}

// ---------------------------------------------------------------- push and pull

#[tokio::test]
async fn push_pull_tags_and_catalog() {
    let reg = Registry::start(Auth::None).await;
    let c = client();
    let host = reg.host();
    let img = build_image(false).await;
    let app = repo(&c, &host, "berth/app", None);

    // The layer is larger than a chunk: chunked upload. The config goes in one PUT.
    assert!(img.layer.len() > 256 << 10);
    assert_eq!(
        app.push_blob(&img.layer_desc, &img.layer, None)
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
    assert_eq!(
        app.push_blob(&img.config_desc, &img.config, None)
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
    assert_eq!(
        app.push_blob(&img.layer_desc, &img.layer, None)
            .await
            .unwrap(),
        PushOutcome::Exists
    );
    assert!(app.blob_exists(&img.layer_desc.digest).await.unwrap());
    for tag in ["v1", "v2"] {
        let d = app
            .push_manifest(tag, DOCKER_MANIFEST, img.manifest.clone())
            .await
            .unwrap();
        assert_eq!(d, img.manifest_desc);
    }

    // Cross-repository mount into another repository, then a file-backed upload.
    let other = repo(&c, &host, "berth/other", None);
    assert_eq!(
        other
            .push_blob(&img.layer_desc, &img.layer, Some("berth/app"))
            .await
            .unwrap(),
        PushOutcome::Mounted
    );
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config.json");
    std::fs::write(&config_file, &img.config).unwrap();
    assert_eq!(
        other
            .push_blob(
                &img.config_desc,
                &berth_agent::distribution::FileSource(config_file),
                None
            )
            .await
            .unwrap(),
        PushOutcome::Uploaded
    );
    other
        .push_manifest("latest", DOCKER_MANIFEST, img.manifest.clone())
        .await
        .unwrap();

    // Resolve by tag and by digest.
    let by_tag = app.resolve("v1").await.unwrap();
    assert_eq!(by_tag.digest, img.manifest_desc.digest);
    assert_eq!(by_tag.media_type, DOCKER_MANIFEST);
    assert_eq!(by_tag.size, img.manifest.len() as u64);
    let by_digest = app
        .resolve(&img.manifest_desc.digest.to_string())
        .await
        .unwrap();
    assert_eq!(by_digest, by_tag);
    let bytes = app.fetch_manifest(&by_tag).await.unwrap();
    assert_eq!(bytes, img.manifest);
    let (d, b) = app.fetch_manifest_by_ref("v2").await.unwrap();
    assert_eq!(
        (d.digest, b),
        (img.manifest_desc.digest.clone(), img.manifest.clone())
    );
    let Document::Manifest(m) = Document::parse("v1", &by_tag.media_type, &bytes).unwrap() else {
        panic!("expected a manifest")
    };

    // Blobs into memory and into a file that already holds a prefix (resume).
    let mut layer = Vec::new();
    app.fetch_blob_resumable(&m.layers[0], &mut layer)
        .await
        .unwrap();
    assert_eq!(layer, img.layer);
    let partial = dir.path().join("layer.partial");
    std::fs::write(&partial, &img.layer[..1000]).unwrap();
    let mut f = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&partial)
        .await
        .unwrap();
    app.fetch_blob_resumable(&m.layers[0], &mut f)
        .await
        .unwrap();
    drop(f);
    assert_eq!(std::fs::read(&partial).unwrap(), img.layer);
    let mut cfg = Vec::new();
    app.fetch_blob_resumable(&m.config, &mut cfg).await.unwrap();
    assert_eq!(cfg, img.config);

    // A manifest list, and platform selection from it.
    let mut entry = img.manifest_desc.clone();
    entry.platform = Some(PlatformSpec {
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    });
    let list = Bytes::from(
        serde_json::to_vec(&Index {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST_LIST.into()),
            manifests: vec![entry],
            annotations: BTreeMap::new(),
        })
        .unwrap(),
    );
    app.push_manifest("multi", DOCKER_MANIFEST_LIST, list.clone())
        .await
        .unwrap();
    let d = app.resolve("multi").await.unwrap();
    assert_eq!(d.media_type, DOCKER_MANIFEST_LIST);
    let Document::Index(index) = Document::parse(
        "multi",
        &d.media_type,
        &app.fetch_manifest(&d).await.unwrap(),
    )
    .unwrap() else {
        panic!("expected an index")
    };
    let chosen = select_manifest(&index, &Platform::default_linux_amd64(), "multi").unwrap();
    assert_eq!(chosen.digest, img.manifest_desc.digest);
    let e = select_manifest(&index, &Platform::parse("linux/arm64").unwrap(), "multi")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("linux/arm64") && e.contains("linux/amd64"),
        "{e}"
    );

    // Tags (page size 2 forces Link pagination where the registry supports it).
    let mut tags = app.list_tags().await.unwrap();
    tags.sort();
    assert_eq!(tags, ["multi", "v1", "v2"]);

    // Catalog search, paginated two at a time.
    let third = repo(&c, &host, "zeta/app-tools", None);
    push_image(&third, &img, "latest").await;
    let mut all = c.search(&host, "", None, None).await.unwrap();
    all.sort();
    assert_eq!(all, ["berth/app", "berth/other", "zeta/app-tools"]);
    let mut found = c.search(&host, "APP", None, None).await.unwrap();
    found.sort();
    assert_eq!(found, ["berth/app", "zeta/app-tools"]);
    assert_eq!(
        c.search(&host, "app", None, Some(1)).await.unwrap().len(),
        1
    );
    // Through a recording proxy: two catalog pages were asked for (n=2, three repos).
    let rec = start_proxy(
        format!("127.0.0.1:{}", reg.port).parse().unwrap(),
        Fault::None,
    )
    .await;
    let paged = client()
        .search(&rec.addr.to_string(), "", None, None)
        .await
        .unwrap();
    assert_eq!(paged.len(), 3);
    let sent = rec.sent.lock().unwrap().clone();
    assert_eq!(sent.matches("GET /v2/_catalog?").count(), 2, "{sent}");

    // Unknown tag and unknown blob.
    let e = app.resolve("nope").await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("berth/app:nope"), "{e}");
    let mut missing = Descriptor::of(DOCKER_LAYER_GZIP, b"never pushed");
    missing.size = 12;
    let e = app
        .fetch_blob_resumable(&missing, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert!(!app.blob_exists(&missing.digest).await.unwrap());
}

#[tokio::test]
async fn oci_image_and_unknown_layer_type() {
    let reg = Registry::start(Auth::None).await;
    let c = client();
    let img = build_image(true).await;
    let r = repo(&c, &reg.host(), "oci/busybox", None);
    push_image(&r, &img, "1.0").await;
    let d = r.resolve("1.0").await.unwrap();
    assert_eq!(d.media_type, OCI_MANIFEST);
    let m = Manifest::parse("1.0", &d.media_type, &r.fetch_manifest(&d).await.unwrap()).unwrap();
    assert_eq!(m.layers[0].media_type, OCI_LAYER_GZIP);

    // The registry stores a manifest whose layer type berth does not know; berth refuses
    // it with a message naming the type.
    let mut odd = m.clone();
    odd.layers[0].media_type = "application/vnd.example.unknown.layer".into();
    let bytes = Bytes::from(serde_json::to_vec(&odd).unwrap());
    r.push_manifest("odd", OCI_MANIFEST, bytes).await.unwrap();
    let d = r.resolve("odd").await.unwrap();
    let e = Manifest::parse("odd", &d.media_type, &r.fetch_manifest(&d).await.unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("application/vnd.example.unknown.layer"), "{e}");
    assert!(e.contains("unsupported media type"), "{e}");
}

// ---------------------------------------------------------------- authentication

#[tokio::test]
async fn basic_auth() {
    let hash = bcrypt::hash_with_result("s3cret", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let reg = Registry::start(Auth::Htpasswd(format!("alice:{hash}\n"))).await;
    let c = client();
    let host = reg.host();
    let img = build_image(false).await;

    let anon = repo(&c, &host, "private/app", None);
    let e = anon.resolve("latest").await.unwrap_err();
    eprintln!("anonymous, basic realm: {e}");
    assert!(matches!(e, Error::LoginRequired { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("berthctl login {host}")),
        "{e}"
    );
    let e = anon
        .push_blob(&img.config_desc, &img.config, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("berthctl login"), "{e}");

    let wrong = repo(
        &c,
        &host,
        "private/app",
        Some(Credentials::Basic {
            username: "alice".into(),
            password: "wrong".into(),
        }),
    );
    let e = wrong.resolve("latest").await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");

    let alice = repo(
        &c,
        &host,
        "private/app",
        Some(Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        }),
    );
    push_image(&alice, &img, "v1").await;
    let d = alice.resolve("v1").await.unwrap();
    assert_eq!(d.digest, img.manifest_desc.digest);
    let mut layer = Vec::new();
    alice
        .fetch_blob_resumable(&img.layer_desc, &mut layer)
        .await
        .unwrap();
    assert_eq!(layer, img.layer);
    assert_eq!(alice.list_tags().await.unwrap(), ["v1"]);
    // Anonymous access still fails after the client learned the challenge.
    assert!(matches!(
        anon.resolve("v1").await.unwrap_err(),
        Error::LoginRequired { .. }
    ));
}

/// A token server for the registry's `auth.token`: ES256 JWTs whose x5c header carries
/// a self-signed certificate the registry trusts. `alice:s3cret` (Basic) and the refresh
/// token `refresh-alice` get what they ask for; anonymous callers get a token with no
/// access.
struct TokenServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    cert_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Signer {
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
}

impl Signer {
    fn token(&self, subject: &str, scopes: &[String]) -> String {
        let rng = ring::rand::SystemRandom::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let access: Vec<serde_json::Value> = if subject.is_empty() {
            Vec::new()
        } else {
            scopes
                .iter()
                .filter_map(|s| {
                    let mut parts = s.splitn(3, ':');
                    let (t, n, a) = (parts.next()?, parts.next()?, parts.next()?);
                    let actions: Vec<&str> = a.split(',').collect();
                    Some(serde_json::json!({"type": t, "name": n, "actions": actions}))
                })
                .collect()
        };
        let header = serde_json::json!({
            "typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.cert_der)]
        });
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": subject, "aud": TOKEN_SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", rand_u64()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.key.sign(&rng, signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

async fn start_token_server() -> TokenServer {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["berth-token-issuer".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let signer = Arc::new(Signer {
        key: ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .unwrap(),
        cert_der: cert.der().to_vec(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let signer = signer.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let _ = serve_token(stream, &signer, &count).await;
            });
        }
    });
    TokenServer {
        addr,
        requests,
        cert_pem: cert.pem(),
        task,
    }
}

/// Reads one HTTP/1.1 request: method, target, lower-cased headers, body.
async fn read_request(
    stream: &mut TcpStream,
) -> std::io::Result<(String, String, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((method, target, headers, body))
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let v = v.replace('+', " ");
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%'
                    && i + 2 < b.len()
                    && let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16)
                {
                    out.push(x);
                    i += 3;
                    continue;
                }
                out.push(b[i]);
                i += 1;
            }
            (k.to_string(), String::from_utf8_lossy(&out).to_string())
        })
        .collect()
}

async fn serve_token(
    mut stream: TcpStream,
    signer: &Signer,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let (method, target, headers, body) = read_request(&mut stream).await?;
    count.fetch_add(1, Ordering::SeqCst);
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let (subject, scopes) = if method == "POST" {
        let form = form_pairs(&String::from_utf8_lossy(&body));
        let get = |k: &str| {
            form.iter()
                .find(|(fk, _)| fk == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if get("grant_type") != "refresh_token" || get("refresh_token") != "refresh-alice" {
            return respond(
                &mut stream,
                "401 Unauthorized",
                r#"{"error":"bad refresh token"}"#,
            )
            .await;
        }
        let scopes: Vec<String> = get("scope").split(' ').map(str::to_string).collect();
        ("alice".to_string(), scopes)
    } else {
        let q = form_pairs(query);
        let scopes: Vec<String> = q
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect();
        match headers.iter().find(|(k, _)| k == "authorization") {
            Some((_, v)) => {
                let ok = v
                    .strip_prefix("Basic ")
                    .and_then(|b| STANDARD.decode(b).ok())
                    .is_some_and(|d| d == b"alice:s3cret");
                if !ok {
                    return respond(
                        &mut stream,
                        "401 Unauthorized",
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
                    )
                    .await;
                }
                ("alice".to_string(), scopes)
            }
            None => (String::new(), scopes),
        }
    };
    let token = signer.token(&subject, &scopes);
    let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
    respond(&mut stream, "200 OK", &body).await
}

#[tokio::test]
async fn bearer_token_auth() {
    let ts = start_token_server().await;
    let reg = Registry::start(Auth::Token {
        realm: format!("http://{}/token", ts.addr),
        cert_pem: ts.cert_pem.clone(),
    })
    .await;
    let c = client();
    let host = reg.host();
    let img = build_image(false).await;

    let anon = repo(&c, &host, "team/app", None);
    let e = anon.resolve("latest").await.unwrap_err();
    eprintln!("anonymous, basic realm: {e}");
    assert!(matches!(e, Error::LoginRequired { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("berthctl login {host}")),
        "{e}"
    );

    let wrong = repo(
        &c,
        &host,
        "team/app",
        Some(Credentials::Basic {
            username: "alice".into(),
            password: "nope".into(),
        }),
    );
    let e = wrong.resolve("latest").await.unwrap_err();
    eprintln!("wrong password, token realm: {e}");
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("bad credentials"), "{e}");

    let alice = repo(
        &c,
        &host,
        "team/app",
        Some(Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        }),
    );
    push_image(&alice, &img, "v1").await;
    let before = ts.requests.load(Ordering::SeqCst);
    // Pulls reuse one cached pull token for the repository.
    for _ in 0..3 {
        let d = alice.resolve("v1").await.unwrap();
        assert_eq!(d.digest, img.manifest_desc.digest);
    }
    let mut layer = Vec::new();
    alice
        .fetch_blob_resumable(&img.layer_desc, &mut layer)
        .await
        .unwrap();
    assert_eq!(layer, img.layer);
    let after = ts.requests.load(Ordering::SeqCst);
    assert!(
        after - before <= 1,
        "{} token requests for one scope",
        after - before
    );

    // A refresh (identity) token is exchanged with an OAuth2 POST.
    let c2 = client();
    let by_token = repo(
        &c2,
        &host,
        "team/app",
        Some(Credentials::IdentityToken("refresh-alice".into())),
    );
    assert_eq!(by_token.list_tags().await.unwrap(), ["v1"]);
    let bad_token = repo(
        &c2,
        &host,
        "team/app",
        Some(Credentials::IdentityToken("stolen".into())),
    );
    assert!(matches!(
        bad_token.resolve("v1").await.unwrap_err(),
        Error::Unauthorized { .. }
    ));

    // Catalog needs its own scope.
    assert_eq!(
        c.search(
            &host,
            "app",
            Some(Credentials::Basic {
                username: "alice".into(),
                password: "s3cret".into()
            }),
            None
        )
        .await
        .unwrap(),
        ["team/app"]
    );
}

// ---------------------------------------------------------------- flaky networks

/// A loopback TCP proxy that can cut one connection or flip one byte once its
/// server-to-client stream passes `at` bytes. It records what clients sent.
struct Proxy {
    addr: SocketAddr,
    fired: Arc<AtomicBool>,
    sent: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone, Copy)]
enum Fault {
    /// Only record what clients send.
    None,
    Cut {
        at: u64,
    },
    Flip {
        at: u64,
    },
}

async fn start_proxy(upstream: SocketAddr, fault: Fault) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fired = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(String::new()));
    let (f2, s2) = (fired.clone(), sent.clone());
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (fired, sent) = (f2.clone(), s2.clone());
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        sent.lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&buf[..n]));
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut seen = 0u64;
                let mut buf = vec![0u8; 16384];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let chunk = &mut buf[..n];
                    let end = seen + n as u64;
                    match fault {
                        Fault::Cut { at } if end > at && !fired.swap(true, Ordering::SeqCst) => {
                            let keep = (at - seen.min(at)) as usize;
                            let _ = cw.write_all(&chunk[..keep]).await;
                            break; // drop both sides: the connection is cut
                        }
                        Fault::Flip { at }
                            if seen <= at && end > at && !fired.swap(true, Ordering::SeqCst) =>
                        {
                            chunk[(at - seen) as usize] ^= 0x01;
                        }
                        _ => {}
                    }
                    if cw.write_all(chunk).await.is_err() {
                        break;
                    }
                    seen = end;
                }
                up.abort();
            });
        }
    });
    Proxy {
        addr,
        fired,
        sent,
        task,
    }
}

#[tokio::test]
async fn connection_cut_mid_blob_resumes_with_range() {
    let reg = Registry::start(Auth::None).await;
    let c = client();
    let img = build_image(false).await;
    push_image(&repo(&c, &reg.host(), "flaky/app", None), &img, "v1").await;

    let cut_at = img.layer.len() as u64 / 2;
    let proxy = start_proxy(
        format!("127.0.0.1:{}", reg.port).parse().unwrap(),
        Fault::Cut { at: cut_at },
    )
    .await;
    // A fresh client so no pooled connection bypasses the fault.
    let c = client();
    let r = repo(&c, &proxy.addr.to_string(), "flaky/app", None);
    let d = r.resolve("v1").await.unwrap();
    let m = Manifest::parse("v1", &d.media_type, &r.fetch_manifest(&d).await.unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ingest");
    let mut f = tokio::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .await
        .unwrap();
    r.fetch_blob_resumable(&m.layers[0], &mut f).await.unwrap();
    drop(f);
    assert!(proxy.fired.load(Ordering::SeqCst), "the proxy never cut");
    assert_eq!(std::fs::read(&path).unwrap(), img.layer);
    let sent = proxy.sent.lock().unwrap().to_ascii_lowercase();
    let range = sent
        .lines()
        .find_map(|l| l.strip_prefix("range: bytes="))
        .expect("a Range request after the cut");
    let from: u64 = range.trim().trim_end_matches('-').parse().unwrap();
    assert!(from > 0 && from <= cut_at, "resumed from {from}");
}

#[tokio::test]
async fn corrupted_blob_is_a_digest_mismatch() {
    let reg = Registry::start(Auth::None).await;
    let c = client();
    let img = build_image(false).await;
    push_image(&repo(&c, &reg.host(), "bad/app", None), &img, "v1").await;
    let proxy = start_proxy(
        format!("127.0.0.1:{}", reg.port).parse().unwrap(),
        Fault::Flip {
            at: img.layer.len() as u64 / 2,
        },
    )
    .await;
    let c = client();
    let r = repo(&c, &proxy.addr.to_string(), "bad/app", None);
    let mut sink = Vec::new();
    let e = r
        .fetch_blob_resumable(&img.layer_desc, &mut sink)
        .await
        .unwrap_err();
    assert!(proxy.fired.load(Ordering::SeqCst));
    match &e {
        Error::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &img.layer_desc.digest.to_string());
            assert_ne!(actual, expected);
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
    eprintln!("corrupted byte: {e}");
    assert!(e.to_string().contains("digest mismatch"), "{e}");
}

#[tokio::test]
async fn manifest_over_4_mib_is_refused() {
    let reg = Registry::start(Auth::None).await;
    let c = client();
    let img = build_image(true).await;
    let r = repo(&c, &reg.host(), "big/app", None);
    push_image(&r, &img, "small").await;
    let mut m: Manifest = serde_json::from_slice(&img.manifest).unwrap();
    m.annotations.insert("filler".into(), "x".repeat(5 << 20));
    let big = Bytes::from(serde_json::to_vec(&m).unwrap());
    // berth refuses to push it...
    let e = r
        .push_manifest("big", OCI_MANIFEST, big.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ManifestTooLarge { .. }), "{e}");
    // The registry refuses it too...
    let resp = reqwest::Client::new()
        .put(format!("http://{}/v2/big/app/manifests/big", reg.host()))
        .header("content-type", OCI_MANIFEST)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // ...so a small fake registry on loopback serves it, once with Content-Length and
    // once chunked without a length (the limit is then enforced while reading).
    for chunked in [false, true] {
        let (addr, server) = serve_big_manifest(big.clone(), chunked).await;
        let c = client();
        let r = repo(&c, &addr.to_string(), "big/app", None);
        let e = r.resolve("big").await.unwrap_err();
        eprintln!("big manifest (chunked: {chunked}): {e}");
        assert!(matches!(e, Error::ManifestTooLarge { .. }), "{e}");
        assert!(e.to_string().contains("4194304"), "{e}");
        let e = r.fetch_manifest_by_ref("big").await.unwrap_err();
        assert!(matches!(e, Error::ManifestTooLarge { .. }), "{e}");
        let e = r
            .fetch_manifest(&Descriptor::of(OCI_MANIFEST, &big))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::ManifestTooLarge { .. }), "{e}");
        server.abort();
    }
}

/// Answers every manifest request with `body`: HEAD and GET, with a Content-Length and
/// digest, or chunked without either.
async fn serve_big_manifest(
    body: Bytes,
    chunked: bool,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let digest = berth_agent::distribution::Digest::sha256_of(&body);
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            let digest = digest.clone();
            tokio::spawn(async move {
                let Ok((method, _, _, _)) = read_request(&mut stream).await else {
                    return;
                };
                let head = if chunked {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {OCI_MANIFEST}\r\n\
                         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    )
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {OCI_MANIFEST}\r\n\
                         Docker-Content-Digest: {digest}\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n",
                        body.len()
                    )
                };
                if stream.write_all(head.as_bytes()).await.is_err() || method == "HEAD" {
                    return;
                }
                if chunked {
                    for c in body.chunks(64 << 10) {
                        let mut frame = format!("{:x}\r\n", c.len()).into_bytes();
                        frame.extend_from_slice(c);
                        frame.extend_from_slice(b"\r\n");
                        if stream.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                } else {
                    let _ = stream.write_all(&body).await;
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn unreachable_registry_fails_quickly() {
    let port = free_port(); // closed again: nothing listens there
    let c = client_with(RegistryConfig {
        timeout: "2s".into(),
        ..Default::default()
    });
    let r = repo(&c, &format!("127.0.0.1:{port}"), "x/y", None);
    let start = Instant::now();
    let e = r.resolve("latest").await.unwrap_err();
    eprintln!("closed port after {:?}: {e}", start.elapsed());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("unreachable"),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
}

#[tokio::test]
async fn silent_registry_times_out() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let c = client_with(RegistryConfig {
        timeout: "1s".into(),
        read_timeout: "1s".into(),
        retries: 1,
        ..Default::default()
    });
    let r = repo(&c, &addr.to_string(), "x/y", None);
    let start = Instant::now();
    let e = r.resolve("latest").await.unwrap_err();
    hold.abort();
    eprintln!("silent registry after {:?}: {e}", start.elapsed());
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    assert!(e.to_string().contains("no answer within 1s"), "{e}");
}

#[tokio::test]
async fn mirror_is_tried_first_and_skipped_when_down() {
    let reg = Registry::start(Auth::None).await;
    let c = client();
    let img = build_image(false).await;
    push_image(
        &repo(&c, &reg.host(), "library/busybox", None),
        &img,
        "latest",
    )
    .await;

    // A registry whose own address is dead is served by its second mirror; the dead
    // first mirror is skipped. (All loopback: docker.io's mirrors work the same way,
    // see the hosts unit tests.)
    let dead = free_port();
    let dead_host = format!("127.0.0.1:{}", free_port());
    let mut hosts = BTreeMap::new();
    hosts.insert(
        dead_host.clone(),
        RegistryHostConfig {
            mirrors: vec![
                format!("http://127.0.0.1:{dead}"),
                format!("http://{}", reg.host()),
            ],
            ..Default::default()
        },
    );
    let c = client_with(RegistryConfig {
        hosts,
        ..Default::default()
    });
    let reference = Reference::parse(&format!("{dead_host}/library/busybox")).unwrap();
    let r = c.repository(&reference, None);
    let d = r.resolve(&reference.object()).await.unwrap();
    assert_eq!(d.digest, img.manifest_desc.digest);
    // Pushes never go to mirrors: the host itself is down.
    let e = r
        .push_manifest("x", DOCKER_MANIFEST, img.manifest.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
    let mut layer = Vec::new();
    r.fetch_blob_resumable(&img.layer_desc, &mut layer)
        .await
        .unwrap();
    assert_eq!(layer, img.layer);
}

#[allow(dead_code)]
fn _futures_are_send(r: Repository, d: Descriptor, f: tokio::fs::File, c: RegistryClient) {
    fn is_send<T: Send>(_: T) {}
    let mut f = f;
    is_send(async move {
        let _ = r.resolve("x").await;
        let _ = r.fetch_manifest(&d).await;
        let _ = r.fetch_blob_resumable(&d, &mut f).await;
        let _ = r.push_blob(&d, &Bytes::new(), None).await;
        let _ = r.list_tags().await;
        let _ = c.search("h", "t", None, None).await;
    });
}
