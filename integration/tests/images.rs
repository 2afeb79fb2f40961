//! berthd's own image work, end to end: `berthctl pull/push/images/tag/rmi/inspect/
//! history/save/load/prune/search/login/logout` against the real berthd, a real
//! `docker-registry` and the fixtures, checked with the real `ctr` where it applies.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_integration::fixtures::{self, Compression, Fixture};
use berth_integration::{Daemon, Registry, procs};

/// A berthctl for one daemon, namespace and credentials directory.
struct Ctl<'a> {
    d: &'a Daemon,
    ns: String,
    config: PathBuf,
}

impl<'a> Ctl<'a> {
    fn new(d: &'a Daemon) -> Ctl<'a> {
        let ns = d.namespace();
        let config = d.dir().join(format!("ctl-config-{ns}"));
        std::fs::create_dir_all(&config).unwrap();
        Ctl { d, ns, config }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.d.berthctl().unwrap();
        cmd.arg("--namespace")
            .arg(&self.ns)
            .args(args)
            .env("BERTH_CONFIG", &self.config)
            .env("DOCKER_CONFIG", self.config.join("docker"))
            .env("HOME", &self.config);
        cmd
    }

    fn run_in(&self, args: &[&str], stdin: Option<&[u8]>) -> procs::Output {
        procs::run(&mut self.command(args), stdin, Duration::from_secs(180)).unwrap()
    }

    fn run(&self, args: &[&str]) -> procs::Output {
        self.run_in(args, None)
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.success(), "berthctl {args:?} failed: {out:?}");
        out.stdout
    }

    /// Runs and expects failure with exit code 1; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.success(), "berthctl {args:?} succeeded: {out:?}");
        out.stderr
    }

    fn ctr(&self) -> berth_integration::Ctr {
        self.d.ctr(&self.ns)
    }
}

fn push(registry: &Registry, fixture: &dyn Fixture, name: &str) -> String {
    registry.push(fixture, name).unwrap();
    registry.reference(name)
}

#[tokio::test]
async fn pull_every_fixture_kind_and_ctr_sees_it() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let cases: Vec<(&str, &dyn Fixture, String)> = vec![
        (
            "busybox:v1",
            fixtures::busybox(),
            fixtures::busybox().chain_id(),
        ),
        (
            "busybox-zstd:v1",
            fixtures::busybox_with(Compression::Zstd),
            fixtures::busybox().chain_id(),
        ),
        (
            "busybox-none:v1",
            fixtures::busybox_with(Compression::None),
            fixtures::busybox().chain_id(),
        ),
        (
            "busybox-docker:v1",
            fixtures::busybox_docker(),
            fixtures::busybox_docker().chain_id(),
        ),
        (
            "multilayer:v1",
            fixtures::multilayer(),
            fixtures::multilayer().chain_id(),
        ),
        (
            "multilayer-docker:v1",
            fixtures::multilayer_docker(),
            fixtures::multilayer_docker().chain_id(),
        ),
        (
            "multi-platform:v1",
            fixtures::multi_platform(),
            fixtures::multi_platform().host_image().chain_id(),
        ),
        (
            "multi-platform-docker:v1",
            fixtures::multi_platform_docker(),
            fixtures::multi_platform_docker().host_image().chain_id(),
        ),
    ];
    for (name, fixture, chain) in &cases {
        let reference = push(&registry, *fixture, name);
        let out = ctl.ok(&["pull", &reference]);
        assert!(
            out.contains(&format!("Digest: {}", fixture.digest())),
            "{name}: {out}"
        );
        assert!(
            out.contains(&format!("Status: Downloaded newer image for {reference}")),
            "{name}: {out}"
        );
        assert!(out.trim_end().ends_with(&reference), "{name}: {out}");
        let info = ctl.ctr().ok_async(["snapshots", "info", chain]).await;
        assert!(info.contains("\"Kind\": \"Committed\""), "{name}: {info}");
    }
    let listed = ctl.ctr().ok_async(["images", "ls"]).await;
    for (name, fixture, _) in &cases {
        assert!(
            listed.contains(&registry.reference(name)),
            "{name}: {listed}"
        );
        assert!(listed.contains(fixture.digest()), "{name}: {listed}");
    }
    // The multi-layer image unpacked with its whiteout and opaque directory.
    let target = d.dir().join("mnt");
    std::fs::create_dir_all(&target).unwrap();
    ctl.ctr()
        .ok_async([
            "images".as_ref(),
            "mount".as_ref(),
            registry.reference("multilayer:v1").as_ref(),
            target.as_os_str(),
        ])
        .await;
    let check = || -> Result<(), String> {
        for (path, content) in fixtures::MULTILAYER_FILES {
            let got = std::fs::read_to_string(target.join(&path[1..]))
                .map_err(|e| format!("{path}: {e}"))?;
            if got != *content {
                return Err(format!("{path}: {got:?} != {content:?}"));
            }
        }
        for path in fixtures::MULTILAYER_ABSENT {
            if target.join(&path[1..]).symlink_metadata().is_ok() {
                return Err(format!("{path} should be gone"));
            }
        }
        Ok(())
    };
    let checked = check();
    ctl.ctr()
        .ok_async(["images".as_ref(), "unmount".as_ref(), target.as_os_str()])
        .await;
    checked.unwrap();
}

/// How a [`Proxy`] mistreats what the registry sends back.
#[derive(Clone, Copy)]
enum Fault {
    /// The first `times` connections whose answers pass `after` bytes are cut there.
    Cut { after: usize, times: usize },
    /// The byte at `at` of every connection's answers is flipped.
    Corrupt { at: usize },
}

/// A loopback TCP proxy in front of a registry that records what clients send.
struct Proxy {
    port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: u16, fault: Fault) -> Proxy {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let cuts = Arc::new(AtomicUsize::new(match fault {
            Fault::Cut { times, .. } => times,
            Fault::Corrupt { .. } => 0,
        }));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let log = log.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let cuts = cuts.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 << 10];
                    let mut sent = 0usize;
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let chunk = &mut buf[..n];
                        match fault {
                            Fault::Cut { after, .. } if sent + n > after => {
                                let taken = cuts
                                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                                        c.checked_sub(1)
                                    })
                                    .is_ok();
                                if taken {
                                    let _ =
                                        cw.write_all(&chunk[..after.saturating_sub(sent)]).await;
                                    break;
                                }
                            }
                            Fault::Corrupt { at } if sent <= at && at < sent + n => {
                                chunk[at - sent] ^= 0xff;
                            }
                            _ => {}
                        }
                        if cw.write_all(chunk).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                    up.abort();
                });
            }
        });
        Proxy {
            port,
            requests,
            task,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> String {
        String::from_utf8_lossy(&self.requests.lock().unwrap()).to_lowercase()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `f` for up to 10 s.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn blob_gets(registry: &Registry) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
        .count()
}

#[tokio::test]
async fn pull_all_tags_and_errors_of_a_tag_with_all() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    push(&registry, fixtures::busybox(), "many:v1");
    push(&registry, fixtures::busybox(), "many:v2");
    push(&registry, fixtures::multilayer(), "many:v3");
    let repo = registry.reference("many");
    let out = ctl.ok(&["pull", "-a", &repo]);
    for tag in ["v1", "v2", "v3"] {
        assert!(out.contains(&format!("{tag}: Pulling from many")), "{out}");
    }
    let tags = ctl.ok(&["images", "--format", "{{.Tag}}", &repo]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["v1", "v2", "v3"]);
    let err = ctl.fails(&["pull", "-a", &format!("{repo}:v1")]);
    assert!(
        err.contains("tag can't be used with --all-tags/-a"),
        "{err}"
    );
    // -q prints the name only.
    let out = ctl.ok(&["pull", "-q", &format!("{repo}:v1")]);
    assert_eq!(out, format!("{repo}:v1\n"));
}

#[tokio::test]
async fn platform_selection() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let mp = fixtures::multi_platform();
    let reference = push(&registry, mp, "mp:v1");
    let foreign = fixtures::Platform::foreign();
    let platform = format!("{}/{}", foreign.os, foreign.architecture);
    ctl.ok(&["pull", "--platform", &platform, &reference]);
    let arch = ctl.ok(&["image", "inspect", "-f", "{{.Architecture}}", &reference]);
    assert_eq!(arch.trim(), foreign.architecture);
    let foreign_image = mp.image_for(&foreign).unwrap();
    let info = ctl
        .ctr()
        .ok_async(["snapshots", "info", &foreign_image.chain_id()])
        .await;
    assert!(info.contains("Committed"), "{info}");
    // The default is the host's platform.
    ctl.ok(&["pull", &reference]);
    let arch = ctl.ok(&["image", "inspect", "-f", "{{.Architecture}}", &reference]);
    assert_eq!(arch.trim(), fixtures::Platform::host().architecture);
    let err = ctl.fails(&["pull", "--platform", "linux/s390x", &reference]);
    assert!(
        err.contains("no manifest for platform linux/s390x"),
        "{err}"
    );
    let err = ctl.fails(&["pull", "--platform", "linux", &reference]);
    assert!(err.contains("invalid platform"), "{err}");
}

#[tokio::test]
async fn pulling_twice_reuses_everything_and_shared_layers_are_stored_once() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let busybox = push(&registry, fixtures::busybox(), "busybox:v1");
    let multilayer = push(&registry, fixtures::multilayer(), "multilayer:v1");
    ctl.ok(&["pull", &busybox]);
    let gets = blob_gets(&registry);
    let out = ctl.ok(&["pull", &busybox]);
    assert!(out.contains("Already exists"), "{out}");
    assert!(
        out.contains(&format!("Status: Image is up to date for {busybox}")),
        "{out}"
    );
    assert_eq!(blob_gets(&registry), gets, "the second pull fetched blobs");
    // multilayer = busybox's layer + 2: the base layer is neither fetched nor unpacked.
    let out = ctl.ok(&["pull", &multilayer]);
    let base = &fixtures::busybox().layers[0].blob.digest;
    let base_id = &base["sha256:".len()..][..12];
    assert!(out.contains(&format!("{base_id}: Already exists")), "{out}");
    assert_eq!(
        blob_gets(&registry),
        gets + 3,
        "only the config and the two new layers"
    );
    let snapshots = ctl.ctr().ok_async(["snapshots", "ls"]).await;
    let base_chain = fixtures::busybox().chain_id();
    assert_eq!(
        snapshots
            .lines()
            .filter(|l| l.starts_with(&base_chain))
            .count(),
        1,
        "{snapshots}"
    );
    for chain in fixtures::multilayer().chain_ids() {
        assert!(snapshots.contains(&chain), "{chain}: {snapshots}");
    }
    // Content labels as containerd's pull makes them.
    let content = ctl.ctr().ok_async(["content", "ls"]).await;
    let line = |digest: &str| {
        content
            .lines()
            .find(|l| l.starts_with(digest))
            .unwrap_or_else(|| panic!("{digest} missing: {content}"))
            .to_string()
    };
    let m = fixtures::multilayer();
    let manifest = line(&m.manifest.digest);
    assert!(
        manifest.contains(&format!(
            "containerd.io/gc.ref.content.config={}",
            m.config.digest
        )),
        "{manifest}"
    );
    assert!(
        manifest.contains("containerd.io/gc.ref.content.l.2="),
        "{manifest}"
    );
    assert!(
        manifest.contains(&format!(
            "containerd.io/distribution.source.{}=multilayer",
            registry.host()
        )),
        "{manifest}"
    );
    let config = line(&m.config.digest);
    assert!(
        config.contains(&format!(
            "containerd.io/gc.ref.snapshot.overlayfs={}",
            m.chain_id()
        )),
        "{config}"
    );
    let layer = line(&m.layers[2].blob.digest);
    assert!(
        layer.contains(&format!(
            "containerd.io/uncompressed={}",
            m.layers[2].diff_id
        )),
        "{layer}"
    );
    // Sizes: the unpacked size is shown and is at least the content of the layers.
    let size = ctl.ok(&["images", "--format", "{{.Size}}", &multilayer]);
    assert!(
        size.trim().ends_with("MB") || size.trim().ends_with("kB"),
        "{size}"
    );
    // No lease or ingest is left behind.
    let leases = ctl.ctr().ok_async(["leases", "ls", "-q"]).await;
    assert!(leases.trim().is_empty(), "{leases}");
    let active = ctl.ctr().ok_async(["content", "active"]).await;
    assert!(active.lines().count() <= 1, "{active}");
}

#[tokio::test]
async fn registry_with_auth_login_and_logout() {
    let registry = Registry::start_with_auth("alice", "s3cret").unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let reference = push(&registry, fixtures::busybox(), "private:v1");
    let host = registry.host();
    let err = ctl.fails(&["pull", &reference]);
    assert!(
        err.contains(&format!("run `berthctl login {host}`")),
        "{err}"
    );
    let out = ctl.run_in(
        &["login", "-u", "alice", "--password-stdin", &host],
        Some(b"wrong\n"),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("refused"), "{out:?}");
    assert!(!ctl.config.join("config.json").exists());
    let out = ctl.run_in(
        &["login", "-u", "alice", "--password-stdin", &host],
        Some(b"s3cret\n"),
    );
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("Login Succeeded"), "{out:?}");
    let file = ctl.config.join("config.json");
    let mode = std::fs::metadata(&file).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(doc["auths"][&host]["auth"].is_string(), "{doc}");
    let out = ctl.ok(&["pull", &reference]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    // Search and push carry the credentials too.
    let found = ctl.ok(&["search", &format!("{host}/priv")]);
    assert!(found.contains(&format!("{host}/private")), "{found}");
    ctl.ok(&["tag", &reference, &format!("{host}/copy:v2")]);
    let out = ctl.ok(&["push", &format!("{host}/copy:v2")]);
    assert!(out.contains("v2: digest: sha256:"), "{out}");
    let out = ctl.ok(&["logout", &host]);
    assert!(
        out.contains(&format!("Removing login credentials for {host}")),
        "{out}"
    );
    let out = ctl.ok(&["logout", &host]);
    assert!(out.contains("Not logged in"), "{out}");
    ctl.ok(&["rmi", &reference]);
    let err = ctl.fails(&["pull", &reference]);
    assert!(err.contains("berthctl login"), "{err}");
    // -p works, with docker's warning.
    let out = ctl.run(&["login", "-u", "alice", "-p", "s3cret", &host]);
    assert!(out.success(), "{out:?}");
    assert!(out.stderr.contains("--password-stdin"), "{out:?}");
}

#[tokio::test]
async fn unreachable_registry_fails_quickly_and_clearly() {
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let err = ctl.fails(&["pull", &format!("127.0.0.1:{port}/nothing:v1")]);
    assert!(err.contains("unreachable"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_layer_resumes() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    registry.push(fixtures::busybox(), "cut:v1").unwrap();
    let size = fixtures::busybox().layers[0].blob.size() as usize;
    assert!(size > 400_000, "the busybox layer is only {size} bytes");
    let proxy = Proxy::start(
        registry.port(),
        Fault::Cut {
            after: 300_000,
            times: 1,
        },
    )
    .await;
    let reference = format!("{}/cut:v1", proxy.host());
    let out = ctl.ok(&["pull", &reference]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        proxy.requests().contains("range: bytes="),
        "no Range request"
    );
    assert!(d.log().contains("resuming"), "no resume logged");
    let info = ctl
        .ctr()
        .ok_async(["snapshots", "info", &fixtures::busybox().chain_id()])
        .await;
    assert!(info.contains("Committed"), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_that_does_not_match_its_digest_commits_nothing() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    registry.push(fixtures::busybox(), "bad:v1").unwrap();
    let proxy = Proxy::start(registry.port(), Fault::Corrupt { at: 300_000 }).await;
    let reference = format!("{}/bad:v1", proxy.host());
    let err = ctl.fails(&["pull", &reference]);
    assert!(err.contains("digest mismatch"), "{err}");
    let layer = &fixtures::busybox().layers[0].blob.digest;
    assert!(err.contains(layer.as_str()), "{err}");
    let content = ctl.ctr().ok_async(["content", "ls", "-q"]).await;
    assert!(!content.contains(layer.as_str()), "{content}");
    let active = ctl.ctr().ok_async(["content", "active"]).await;
    assert!(!active.contains(layer.as_str()), "{active}");
    assert!(ctl.ok(&["images", "-q"]).trim().is_empty());
    let snapshots = ctl.ctr().ok_async(["snapshots", "ls"]).await;
    assert!(snapshots.lines().count() <= 1, "{snapshots}");
}

/// Unpacked files are synced in the background a few seconds after the pull, and only
/// then lose their snapshots' unsynced label; a label of another boot (the machine went
/// down before the sync) makes the image count as not unpacked, and the next pull
/// unpacks those layers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpacked_layers_are_synced_and_a_crash_before_the_sync_unpacks_again() {
    const LABEL: &str = "io.berth.unpack.unsynced";
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let image = push(&registry, fixtures::multilayer(), "multilayer:v1");
    ctl.ok(&["pull", &image]);
    let chains = fixtures::multilayer().chain_ids();
    let top = chains.last().unwrap().clone();
    let info = |chain: String| {
        let ctr = ctl.ctr();
        async move { ctr.ok_async(["snapshots", "info", &chain]).await }
    };
    let first = info(chains[0].clone()).await;
    assert!(
        first.contains(LABEL),
        "not labelled before the sync: {first}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut labelled = false;
        for c in &chains {
            labelled |= info(c.clone()).await.contains(LABEL);
        }
        if !labelled {
            break;
        }
        assert!(Instant::now() < deadline, "the unsynced labels stayed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(d.log().contains("unpacked layers synced"));
    let graph = || {
        ctl.ok(&[
            "image",
            "inspect",
            "-f",
            "{{json .GraphDriver.Data}}",
            &image,
        ])
    };
    assert!(graph().contains(&top), "{}", graph());

    // The middle layer as a crash before its sync leaves it.
    ctl.ctr()
        .ok_async([
            "snapshots",
            "label",
            &chains[1],
            &format!("{LABEL}=another-boot"),
        ])
        .await;
    assert_eq!(graph().trim(), "null", "a suspect layer counts as unpacked");
    ctl.ok(&["pull", &image]);
    assert_eq!(
        d.log()
            .matches("removed a snapshot left unsynced by a crash")
            .count(),
        2,
        "the suspect layer and the one above it"
    );
    assert!(graph().contains(&top), "{}", graph());
    let again = info(chains[1].clone()).await;
    assert!(!again.contains("another-boot"), "{again}");
}

/// A fake registry answering every request with a manifest of `size` bytes.
async fn big_manifest_registry(size: usize) -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes()).await;
                if req.starts_with(b"GET") {
                    let _ = s.write_all(&vec![b' '; size]).await;
                }
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_over_4_mib_is_refused() {
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let (port, task) = big_manifest_registry(5 << 20).await;
    let err = ctl.fails(&["pull", &format!("127.0.0.1:{port}/big:v1")]);
    task.abort();
    assert!(err.contains("larger than the 4194304 byte limit"), "{err}");
}

#[tokio::test]
async fn malformed_references_are_refused() {
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    for bad in [
        "UPPER/Case",
        "bad:tag:x",
        "a//b",
        "img@sha256:short",
        &"a".repeat(300),
        "img-",
    ] {
        let err = ctl.fails(&["pull", bad]);
        assert!(err.contains("invalid reference format"), "{bad}: {err}");
    }
    let err = ctl.fails(&["tag", "nothing", "x:y"]);
    assert!(err.contains("No such image: nothing"), "{err}");
    let err = ctl.fails(&["push", "nothing:v1"]);
    assert!(
        err.contains("An image does not exist locally with the tag: nothing:v1"),
        "{err}"
    );
}

#[tokio::test]
async fn tag_rmi_and_untag_semantics() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let reference = push(&registry, fixtures::busybox(), "busybox:v1");
    ctl.ok(&["pull", &reference]);
    ctl.ok(&["tag", &reference, "a:1"]);
    ctl.ok(&["tag", &reference, "b:2"]);
    let err = ctl.fails(&["tag", &reference, "x@sha256:".to_string().as_str()]);
    assert!(
        err.contains("invalid reference format") || err.contains("digest"),
        "{err}"
    );
    let id = ctl.ok(&["images", "-q", "a"]).trim().to_string();
    assert_eq!(id.len(), 12);
    let listed = ctl.ok(&["images"]);
    assert_eq!(listed.matches(&id).count(), 3, "{listed}");
    // By ID, an image in several repositories needs -f.
    let err = ctl.fails(&["rmi", &id]);
    assert!(
        err.contains(&format!("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")),
        "{err}"
    );
    // A tag with others left: untagged only.
    let out = ctl.ok(&["rmi", "a:1"]);
    assert_eq!(out, "Untagged: a:1\n");
    let err = ctl.fails(&["rmi", "a:1"]);
    assert!(err.contains("No such image: a:1"), "{err}");
    // A container made from it holds it.
    ctl.ctr()
        .ok_async(["containers", "create", &reference, "c1"])
        .await;
    ctl.ok(&["rmi", "b:2"]);
    let err = ctl.fails(&["rmi", &reference]);
    assert!(
        err.contains("container c1 is using its referenced image"),
        "{err}"
    );
    let out = ctl.ok(&["rmi", "-f", &id]);
    assert!(out.contains(&format!("Untagged: {reference}")), "{out}");
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert!(ctl.ok(&["images", "-q"]).trim().is_empty());
    ctl.ctr().ok_async(["containers", "rm", "c1"]).await;
    // The content went with it.
    let layer = &fixtures::busybox().layers[0].blob.digest;
    let ctr = ctl.ctr();
    let content = ctr.ok_async(["content", "ls", "-q"]).await;
    assert!(!content.contains(layer.as_str()), "{content}");
    // rmi of several names: the bad one fails, the others go, exit 1.
    ctl.ok(&["pull", &reference]);
    let out = ctl.run(&["rmi", "nothing", &reference]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("Error response from daemon: No such image: nothing"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Deleted: sha256:"), "{out:?}");
}

#[tokio::test]
async fn save_and_load_round_trips_and_ctr_imports_the_archives() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let busybox = push(&registry, fixtures::busybox(), "busybox:v1");
    let multilayer = push(&registry, fixtures::multilayer(), "multilayer:v1");
    ctl.ok(&["pull", &busybox]);
    ctl.ok(&["pull", &multilayer]);
    let ids_before = ctl.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    let docker_tar = d.dir().join("saved-docker.tar");
    let oci_tar = d.dir().join("saved-oci.tar");
    ctl.ok(&[
        "save",
        "-o",
        docker_tar.to_str().unwrap(),
        &busybox,
        &multilayer,
    ]);
    ctl.ok(&[
        "--format",
        "oci",
        "save",
        "-o",
        oci_tar.to_str().unwrap(),
        &busybox,
        &multilayer,
    ]);
    let names = tar_names(&docker_tar);
    assert!(names.contains(&"manifest.json".to_string()), "{names:?}");
    assert!(names.contains(&"repositories".to_string()), "{names:?}");
    let names = tar_names(&oci_tar);
    for n in ["oci-layout", "index.json", "manifest.json"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    for archive in [&docker_tar, &oci_tar] {
        let out = ctl.ok(&["rmi", &busybox, &multilayer]);
        assert_eq!(out.matches("Deleted:").count(), 2, "{out}");
        let out = ctl.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(out.contains(&format!("Loaded image: {busybox}")), "{out}");
        assert!(
            out.contains(&format!("Loaded image: {multilayer}")),
            "{out}"
        );
        let ids = ctl.ok(&[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ]);
        assert_eq!(sorted(&ids), sorted(&ids_before), "{}", archive.display());
        let info = ctl
            .ctr()
            .ok_async(["snapshots", "info", &fixtures::multilayer().chain_id()])
            .await;
        assert!(info.contains("Committed"), "{info}");
    }
    // Through stdout and stdin, gzip-compressed.
    let out = procs::run(
        ctl.command(&["save", &busybox])
            .stdout(std::process::Stdio::piped()),
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(out.success(), "{:?}", out.stderr);
    let mut cmd = ctl.command(&["save", &busybox]);
    let saved = cmd.output().unwrap();
    assert!(saved.status.success());
    let gz = gzip(&saved.stdout);
    ctl.ok(&["rmi", &busybox]);
    let out = ctl.run_in(&["load"], Some(&gz));
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains(&format!("Loaded image: {busybox}")),
        "{out:?}"
    );
    // The real ctr imports both archives.
    for archive in [&docker_tar, &oci_tar] {
        let other = d.namespace();
        let ctr = d.ctr(&other);
        ctr.ok_async(["images".as_ref(), "import".as_ref(), archive.as_os_str()])
            .await;
        let listed = ctr.ok_async(["images", "ls", "-q"]).await;
        assert!(listed.contains(&multilayer), "{listed}");
        assert!(listed.contains(&busybox), "{listed}");
    }
    // A fixture docker archive in the classic layout (<id>/layer.tar, <id>.json).
    let classic = d.dir().join("classic.tar");
    fixtures::multilayer()
        .write_docker_archive(&classic, &["example/classic:v1"])
        .unwrap();
    let out = ctl.ok(&["load", "-i", classic.to_str().unwrap()]);
    assert!(out.contains("Loaded image: example/classic:v1"), "{out}");
    let id = ctl.ok(&["image", "inspect", "-f", "{{.Id}}", "example/classic:v1"]);
    assert_eq!(id.trim(), fixtures::multilayer().config.digest);
}

fn sorted(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn tar_names(path: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn loading_a_truncated_or_non_tar_input_fails_and_leaves_nothing() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let reference = push(&registry, fixtures::multilayer(), "multilayer:v1");
    ctl.ok(&["pull", &reference]);
    let saved = ctl.command(&["save", &reference]).output().unwrap();
    assert!(saved.status.success());
    ctl.ok(&["rmi", &reference]);
    let ctr = ctl.ctr();
    eventually("content to go after rmi", || {
        ctr.ok(["content", "ls", "-q"]).trim().is_empty()
    })
    .await;
    let half = &saved.stdout[..saved.stdout.len() / 2];
    for (what, input) in [
        ("truncated", half.to_vec()),
        ("text", b"this is not a tar archive at all\n".repeat(40)),
        ("empty", Vec::new()),
        ("gzip of text", gzip(b"not a tar either")),
    ] {
        let out = ctl.run_in(&["load"], Some(&input));
        assert_eq!(out.status.code(), Some(1), "{what}: {out:?}");
        assert!(
            out.stderr.contains("archive") || out.stderr.contains("empty"),
            "{what}: {out:?}"
        );
    }
    assert!(ctl.ok(&["images", "-q"]).trim().is_empty());
    eventually("a failed load to leave no content", || {
        ctr.ok(["content", "ls", "-q"]).trim().is_empty()
    })
    .await;
    let active = ctr.ok(["content", "active"]);
    assert!(active.lines().count() <= 1, "{active}");
    let leases = ctr.ok(["leases", "ls", "-q"]);
    assert!(leases.trim().is_empty(), "{leases}");
}

#[tokio::test]
async fn push_then_pull_back_by_digest() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let source = push(&registry, fixtures::multilayer(), "source:v1");
    ctl.ok(&["pull", &source]);
    let target = registry.reference("pushed:v1");
    ctl.ok(&["tag", &source, &target]);
    let out = ctl.ok(&["push", &target]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}]",
            registry.reference("pushed")
        )),
        "{out}"
    );
    // Same registry: the layers are mounted from the source repository.
    assert!(
        out.contains("Mounted from source") || out.contains("Layer already exists"),
        "{out}"
    );
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("v1: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line: {out}"))
        .to_string();
    assert_eq!(digest, fixtures::multilayer().digest());
    let fetched = registry.get_manifest("pushed", "v1").unwrap();
    assert_eq!(fetched.digest, digest);
    // Pushing into a fresh repository of another name uploads; to a registry with
    // nothing, everything is uploaded.
    let other = Registry::start().unwrap();
    let far = other.reference("far:v2");
    ctl.ok(&["tag", &source, &far]);
    let out = ctl.ok(&["push", &far]);
    assert_eq!(out.matches(": Pushed").count(), 3, "{out}");
    let by_digest = format!("{}@{digest}", registry.reference("pushed"));
    ctl.ok(&["rmi", "-f", &fixtures::multilayer().config.digest]);
    let out = ctl.ok(&["pull", &by_digest]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    let listed = ctl.ok(&["images", "--digests"]);
    assert!(listed.contains(&digest), "{listed}");
    let id = ctl.ok(&["image", "inspect", "-f", "{{.Id}}", &by_digest]);
    assert_eq!(id.trim(), fixtures::multilayer().config.digest);
}

#[tokio::test]
async fn history_and_inspect_output() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let image = fixtures::multilayer();
    let reference = push(&registry, image, "multilayer:v1");
    ctl.ok(&["pull", &reference]);
    let config: serde_json::Value = image.config.json();
    let inspected: serde_json::Value =
        serde_json::from_str(&ctl.ok(&["image", "inspect", &reference])).unwrap();
    let i = &inspected[0];
    assert_eq!(i["Id"], image.config.digest.as_str());
    assert_eq!(i["RepoTags"][0], reference.as_str());
    assert_eq!(i["Os"], "linux");
    assert_eq!(i["RootFS"]["Type"], "layers");
    assert_eq!(i["RootFS"]["Layers"], config["rootfs"]["diff_ids"]);
    assert_eq!(i["Config"]["Env"], config["config"]["Env"]);
    assert_eq!(i["GraphDriver"]["Name"], "overlayfs");
    assert_eq!(
        i["GraphDriver"]["Data"]["Snapshot"],
        image.chain_id().as_str()
    );
    assert!(i["Size"].as_i64().unwrap() > 0);
    let env = ctl.ok(&["image", "inspect", "-f", "{{json .Config.Env}}", &reference]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&env).unwrap(),
        config["config"]["Env"]
    );
    let layers = ctl.ok(&[
        "image",
        "inspect",
        "-f",
        "{{len .RootFS.Layers}} {{.Os}}/{{.Architecture}}",
        &reference,
    ]);
    assert_eq!(
        layers.trim(),
        format!("3 linux/{}", fixtures::Platform::host().architecture)
    );
    let err = ctl.run(&["image", "inspect", &reference, "nothing"]);
    assert_eq!(err.status.code(), Some(1));
    assert!(
        err.stderr.contains("Error: No such image: nothing"),
        "{err:?}"
    );
    assert!(err.stdout.contains(&image.config.digest), "{err:?}");

    let history = ctl.ok(&["history", &reference]);
    let lines: Vec<&str> = history.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{history}");
    let entries = config["history"].as_array().map_or(3, Vec::len);
    assert_eq!(lines.len(), entries + 1, "{history}");
    assert!(
        lines[1].starts_with(&image.config.digest["sha256:".len()..][..12]),
        "{history}"
    );
    assert!(lines[2].starts_with("<missing>"), "{history}");
    let full = ctl.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}",
        &reference,
    ]);
    assert!(
        full.lines()
            .next()
            .unwrap()
            .starts_with(&image.config.digest),
        "{full}"
    );
    let q = ctl.ok(&["history", "-q", &reference]);
    assert_eq!(q.lines().count(), entries);
}

#[tokio::test]
async fn prune_dangling_then_all_unused() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let busybox = push(&registry, fixtures::busybox(), "busybox:v1");
    let multilayer = push(&registry, fixtures::multilayer(), "multilayer:v1");
    ctl.ok(&["pull", &busybox]);
    ctl.ok(&["pull", &multilayer]);
    let busybox_id = fixtures::busybox().config.digest.clone();
    // Moving busybox's only tag leaves it dangling.
    ctl.ok(&["tag", &multilayer, &busybox]);
    let dangling = ctl.ok(&["images", "-q", "--no-trunc", "-f", "dangling=true"]);
    assert_eq!(dangling.trim(), busybox_id, "{}", ctl.ok(&["images"]));
    let listed = ctl.ok(&["images"]);
    assert!(listed.contains("<none>"), "{listed}");
    let out = ctl.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {busybox_id}")), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(!out.contains("Total reclaimed space: 0B"), "{out}");
    assert!(
        ctl.ok(&["images", "-q", "-f", "dangling=true"])
            .trim()
            .is_empty()
    );
    // Without -f it asks; "n" keeps everything.
    let out = ctl.run_in(&["image", "prune", "-a"], Some(b"n\n"));
    assert!(
        out.success() && out.stdout.contains("Are you sure"),
        "{out:?}"
    );
    assert_eq!(ctl.ok(&["images", "-q"]).lines().count(), 2);
    // -a removes what no container uses.
    ctl.ctr()
        .ok_async(["containers", "create", &multilayer, "keeper"])
        .await;
    ctl.ok(&["pull", &registry.reference("busybox:v1")]);
    let out = ctl.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains(&format!("deleted: {busybox_id}")), "{out}");
    let left = ctl.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(left.contains(&multilayer), "{left}");
    ctl.ctr().ok_async(["containers", "rm", "keeper"]).await;
    let err = ctl.fails(&["image", "prune", "-f", "--filter", "bogus=1"]);
    assert!(err.contains("invalid filter 'bogus'"), "{err}");
}

#[tokio::test]
async fn list_filters() {
    let registry = Registry::start().unwrap();
    let d = Daemon::start().await.unwrap();
    let ctl = Ctl::new(&d);
    let busybox = push(&registry, fixtures::busybox(), "busybox:v1");
    let multilayer = push(&registry, fixtures::multilayer(), "multilayer:v1");
    ctl.ok(&["pull", &busybox]);
    ctl.ok(&["pull", &multilayer]);
    let refs = |args: &[&str]| {
        let mut a = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        a.extend_from_slice(args);
        sorted(&ctl.ok(&a))
    };
    assert_eq!(
        refs(&["-f", &format!("reference={}/busy*", registry.host())]),
        vec![busybox.clone()]
    );
    assert_eq!(
        refs(&["-f", "reference=*/multi*:v1"]),
        vec![multilayer.clone()]
    );
    assert_eq!(refs(&["-f", "dangling=false"]).len(), 2);
    assert!(refs(&["-f", "dangling=true"]).is_empty());
    let err = ctl.fails(&["images", "-f", "nope=1"]);
    assert!(err.contains("invalid filter 'nope'"), "{err}");
    let err = ctl.fails(&["images", "-f", "before=nothing"]);
    assert!(err.contains("No such image: nothing"), "{err}");
    // A search of the registry's catalog.
    let found = ctl.ok(&["search", &format!("{}/multi", registry.host())]);
    assert!(found.starts_with("NAME"), "{found}");
    assert!(found.contains(&registry.reference("multilayer")), "{found}");
    assert!(!found.contains("busybox"), "{found}");
}
