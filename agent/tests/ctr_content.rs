//! The real `ctr` (Debian's containerd 1.6) against a real berthd started from this
//! build on temporary directories: content and image commands, and an OCI archive
//! import/export round trip built from /bin/busybox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_api::client::WithNamespace;
use berth_api::containerd::services::content::v1::{
    WriteAction, WriteContentRequest, content_client::ContentClient,
};
use sha2::Digest as _;

const CTR: &str = "/usr/bin/ctr";

/// A berthd of this build on its own root, state and socket; killed (by its PID) and
/// its directories removed on drop.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    sock: PathBuf,
}

impl Daemon {
    fn start() -> Daemon {
        assert!(
            Path::new(CTR).exists(),
            "{CTR} is missing: apt-get install -y containerd"
        );
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("berthd.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            "version = 1\n[gc]\nschedule_delay = \"10ms\"\ninterval = \"0s\"\n",
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("berthd.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_berthd"))
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--state")
            .arg(dir.path().join("state"))
            .arg("--address")
            .arg(&sock)
            .args(["--log-level", "debug"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berthd");
        let d = Daemon { child, dir, sock };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&d.sock).is_err() {
            assert!(
                Instant::now() < deadline,
                "berthd did not listen: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs ctr in namespace `ns`; returns its output whatever the exit status.
    fn ctr_raw(&self, ns: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(CTR);
        cmd.arg("--address")
            .arg(&self.sock)
            .args(["-n", ns])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("run ctr");
        if let Some(data) = stdin {
            use std::io::Write;
            let mut w = child.stdin.take().unwrap();
            w.write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs ctr and requires success; returns stdout.
    fn ctr(&self, ns: &str, args: &[&str]) -> String {
        self.ctr_in(ns, args, None)
    }

    fn ctr_in(&self, ns: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.ctr_raw(ns, args, stdin);
        assert!(
            out.status.success(),
            "ctr {args:?} failed: {}\n--- berthd log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ctr content ls -q`, sorted.
    fn digests(&self, ns: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .ctr(ns, &["content", "ls", "-q"])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Polls `f` until it holds or 10 s pass.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn content_commands() {
    let d = Daemon::start();
    let ns = "ctr-content";
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 5).map(|i| (i % 249) as u8).collect();
    let dg = digest(&data);

    // ingest (stdin), ls, get.
    d.ctr_in(
        ns,
        &[
            "content",
            "ingest",
            "--expected-size",
            &data.len().to_string(),
            "--expected-digest",
            &dg,
            "my-ingest",
        ],
        Some(&data),
    );
    let ls = d.ctr(ns, &["content", "ls"]);
    let line = ls
        .lines()
        .find(|l| l.starts_with(&dg))
        .unwrap_or_else(|| panic!("{ls}"));
    assert!(line.contains("3.146MB"), "{line}");
    assert!(line.trim_end().ends_with('-'), "no labels yet: {line}");
    let got = Command::new(CTR)
        .arg("--address")
        .arg(&d.sock)
        .args(["-n", ns, "content", "get", &dg])
        .output()
        .unwrap();
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(got.stdout.len(), data.len());
    assert!(got.stdout == data, "content get returned other bytes");
    // Another namespace does not see it.
    assert!(d.digests("ctr-other").is_empty());
    let out = d.ctr_raw("ctr-other", &["content", "get", &dg], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    // label: set, then remove with an empty value.
    let out = d.ctr(ns, &["content", "label", &dg, "color=blue", "size=big"]);
    let mut labels: Vec<&str> = out.trim().split(',').collect();
    labels.sort();
    assert_eq!(labels, vec!["color=blue", "size=big"]);
    let ls = d.ctr(ns, &["content", "ls"]);
    assert!(ls.contains("color=blue"), "{ls}");
    let out = d.ctr(ns, &["content", "label", &dg, "color="]);
    assert_eq!(out.trim(), "size=big");

    // A bad digest is refused with a message.
    let out = d.ctr_raw(
        ns,
        &[
            "content",
            "ingest",
            "--expected-digest",
            &digest(b"x"),
            "bad",
        ],
        Some(b"not x"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&digest(b"x")) && err.contains(&digest(b"not x")),
        "{err}"
    );
    assert_eq!(d.digests(ns), vec![dg.clone()]);

    // active: an unfinished write shows up with its size.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ch = berth_api::client::connect(d.sock.to_str().unwrap())
            .await
            .unwrap();
        let mut c = ContentClient::with_interceptor(ch, WithNamespace::new(ns).unwrap());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut replies = c
            .write(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        for req in [
            WriteContentRequest {
                action: WriteAction::Stat as i32,
                r#ref: "half-done".into(),
                total: 4096,
                ..Default::default()
            },
            WriteContentRequest {
                action: WriteAction::Write as i32,
                data: vec![7u8; 2048],
                ..Default::default()
            },
        ] {
            tx.send(req).await.unwrap();
            replies.message().await.unwrap().unwrap();
        }
    });
    let active = d.ctr(ns, &["content", "active"]);
    let line = active
        .lines()
        .find(|l| l.starts_with("half-done"))
        .unwrap_or_else(|| panic!("{active}"));
    assert!(line.contains("2.048kB") || line.contains("2 KiB"), "{line}");
    // The failed ingest "bad" is listed too, until aborted or collected.
    assert!(active.contains("bad"), "{active}");

    // rm removes it from the namespace; the next collection removes the bytes.
    d.ctr(ns, &["content", "rm", &dg]);
    assert!(d.digests(ns).is_empty());
    let blob = d
        .path("root/content/blobs/sha256")
        .join(dg.trim_start_matches("sha256:"));
    eventually("the blob file to be collected", || !blob.exists());
}

/// A minimal, deterministic ustar writer.
struct Tar(Vec<u8>);

impl Tar {
    fn header(&mut self, name: &str, mode: u32, size: usize, kind: u8, link: &str) {
        let mut h = [0u8; 512];
        let put = |h: &mut [u8; 512], at: usize, len: usize, s: &[u8]| {
            h[at..at + s.len().min(len)].copy_from_slice(&s[..s.len().min(len)]);
        };
        let octal = |v: u64, width: usize| format!("{v:0w$o}\0", w = width - 1).into_bytes();
        assert!(name.len() < 100, "{name}");
        put(&mut h, 0, 100, name.as_bytes());
        put(&mut h, 100, 8, &octal(mode as u64, 8));
        put(&mut h, 108, 8, &octal(0, 8));
        put(&mut h, 116, 8, &octal(0, 8));
        put(&mut h, 124, 12, &octal(size as u64, 12));
        put(&mut h, 136, 12, &octal(0, 12));
        put(&mut h, 148, 8, b"        ");
        h[156] = kind;
        put(&mut h, 157, 100, link.as_bytes());
        put(&mut h, 257, 6, b"ustar\0");
        put(&mut h, 263, 2, b"00");
        put(&mut h, 265, 32, b"root");
        put(&mut h, 297, 32, b"root");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&h);
    }

    fn dir(&mut self, name: &str) {
        self.header(name, 0o755, 0, b'5', "");
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.header(name, mode, data.len(), b'0', "");
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.header(name, 0o777, 0, b'2', target);
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }
}

/// The regular files of a tar archive (ustar; pax headers skipped), by name.
fn untar(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pos = 0;
    while pos + 512 <= data.len() {
        let h = &data[pos..pos + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let field = |at: usize, len: usize| {
            let s = &h[at..at + len];
            let end = s.iter().position(|b| *b == 0).unwrap_or(len);
            String::from_utf8_lossy(&s[..end]).trim().to_string()
        };
        let size = usize::from_str_radix(&field(124, 12), 8).unwrap_or(0);
        let mut name = field(0, 100);
        let prefix = field(345, 155);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        let kind = h[156];
        pos += 512;
        if kind == b'0' || kind == 0 {
            out.insert(name, data[pos..pos + size].to_vec());
        }
        pos += size.div_ceil(512) * 512;
    }
    out
}

struct OciArchive {
    tar: Vec<u8>,
    /// Blob digest -> bytes.
    blobs: BTreeMap<String, Vec<u8>>,
    manifest: String,
}

fn descriptor(media_type: &str, data: &[u8]) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest(data), "size": data.len()})
}

/// One-layer image of /bin/busybox (uncompressed layer, fixed times and owners).
fn busybox_archive(name: &str) -> OciArchive {
    let busybox =
        std::fs::read("/bin/busybox").expect("/bin/busybox (apt-get install busybox-static)");
    let mut layer = Tar(Vec::new());
    layer.dir("bin/");
    layer.file("bin/busybox", 0o755, &busybox);
    layer.symlink("bin/sh", "busybox");
    let layer = layer.finish();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &layer)],
    }))
    .unwrap();
    let mut mdesc = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    mdesc["annotations"] = serde_json::json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(':').next().unwrap(),
    });
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [mdesc],
    }))
    .unwrap();
    let mut blobs = BTreeMap::new();
    for b in [&layer, &config, &manifest] {
        blobs.insert(digest(b), b.clone());
    }
    let mut t = Tar(Vec::new());
    t.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.file("index.json", 0o644, &index);
    t.dir("blobs/");
    t.dir("blobs/sha256/");
    for (d, b) in &blobs {
        t.file(
            &format!("blobs/sha256/{}", d.trim_start_matches("sha256:")),
            0o644,
            b,
        );
    }
    OciArchive {
        tar: t.finish(),
        blobs,
        manifest: digest(&manifest),
    }
}

#[test]
fn images_import_tag_export_rm() {
    let d = Daemon::start();
    let ns = "ctr-images";
    let name = "docker.io/library/bbtest:1";
    let archive = busybox_archive(name);
    let input = d.path("in.tar");
    std::fs::write(&input, &archive.tar).unwrap();

    d.ctr(
        ns,
        &["images", "import", "--no-unpack", input.to_str().unwrap()],
    );
    // Every blob is in; the content ctr wrote for the index went with its lease.
    let want: Vec<String> = archive.blobs.keys().cloned().collect();
    eventually("the import's leftovers to be collected", || {
        d.digests(ns) == want
    });

    let ls = d.ctr(ns, &["images", "ls"]);
    let line = ls
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{ls}"));
    assert!(line.contains(&archive.manifest), "{line}");
    assert!(line.contains("linux/"), "{line}");
    // The manifest carries the gc references ctr set.
    let ls = d.ctr(ns, &["content", "ls"]);
    let mline = ls
        .lines()
        .find(|l| l.starts_with(&archive.manifest))
        .unwrap();
    assert!(
        mline.contains("containerd.io/gc.ref.content.l.0="),
        "{mline}"
    );

    // tag, ls -q, filters.
    d.ctr(ns, &["images", "tag", name, "docker.io/library/bbtest:2"]);
    let q = d.ctr(ns, &["images", "ls", "-q"]);
    assert_eq!(
        q.lines().collect::<Vec<_>>(),
        vec![name, "docker.io/library/bbtest:2"]
    );
    let q = d.ctr(
        ns,
        &["images", "ls", "-q", "name==docker.io/library/bbtest:2"],
    );
    assert_eq!(q.trim(), "docker.io/library/bbtest:2");
    let out = d.ctr_raw(
        ns,
        &["images", "tag", name, "docker.io/library/bbtest:2"],
        None,
    );
    assert!(
        !out.status.success(),
        "tagging onto an existing name must fail"
    );
    let out = d.ctr_raw(ns, &["images", "tag", name, "Bad Name"], None);
    assert!(!out.status.success());

    // export and compare the blobs.
    let exported = d.path("out.tar");
    d.ctr(ns, &["images", "export", exported.to_str().unwrap(), name]);
    let files = untar(&std::fs::read(&exported).unwrap());
    let got: BTreeMap<String, Vec<u8>> = files
        .iter()
        .filter_map(|(n, b)| {
            let hex = n.strip_prefix("blobs/sha256/")?;
            Some((format!("sha256:{hex}"), b.clone()))
        })
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        archive.blobs.keys().collect::<Vec<_>>()
    );
    assert!(
        got == archive.blobs,
        "exported blobs differ from the imported ones"
    );
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["manifests"][0]["digest"], archive.manifest);

    // A second import of the same archive is a no-op for content.
    d.ctr(
        ns,
        &["images", "import", "--no-unpack", input.to_str().unwrap()],
    );
    eventually("content to settle", || d.digests(ns) == want);

    // rm: content stays while one tag remains, goes with the last one.
    d.ctr(ns, &["images", "rm", "docker.io/library/bbtest:2"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(d.digests(ns), want);
    d.ctr(ns, &["images", "rm", name]);
    eventually("the image's content to be collected", || {
        d.digests(ns).is_empty()
    });
    assert!(d.ctr(ns, &["images", "ls", "-q"]).trim().is_empty());
    // The files go after the records, in the same collection.
    eventually("the blob files to be removed", || {
        std::fs::read_dir(d.path("root/content/blobs/sha256"))
            .unwrap()
            .count()
            == 0
    });
}

/// Debian's docker-registry on a free loopback port with its own storage; killed (by
/// its PID) on drop.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let bin = "/usr/bin/docker-registry";
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: apt-get install -y docker-registry"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let r = Registry {
            child,
            addr,
            _dir: dir,
        };
        eventually("the registry to listen", || {
            std::net::TcpStream::connect(&r.addr).is_ok()
        });
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn push_and_pull_through_a_local_registry() {
    let d = Daemon::start();
    let reg = Registry::start();
    let name = "docker.io/library/bbpull:1";
    let archive = busybox_archive(name);
    let input = d.path("in.tar");
    std::fs::write(&input, &archive.tar).unwrap();
    let want: Vec<String> = archive.blobs.keys().cloned().collect();

    d.ctr(
        "ctr-push",
        &["images", "import", "--no-unpack", input.to_str().unwrap()],
    );
    let remote = format!("{}/bbpull:1", reg.addr);
    d.ctr(
        "ctr-push",
        &["images", "push", "--plain-http", &remote, name],
    );
    // Forget it locally, bytes included, so the pull has to write every blob.
    d.ctr("ctr-push", &["images", "rm", name]);
    eventually("the pushed content to be collected", || {
        d.digests("ctr-push").is_empty()
            && std::fs::read_dir(d.path("root/content/blobs/sha256"))
                .unwrap()
                .count()
                == 0
    });

    // `ctr images pull` fetches through Content.Write, creates the image, then
    // unpacks (which needs the snapshotter; its outcome is not this test's business).
    for ns in ["ctr-pull", "ctr-pull-shared"] {
        let out = d.ctr_raw(ns, &["images", "pull", "--plain-http", &remote], None);
        let q = d.ctr(ns, &["images", "ls", "-q"]);
        assert_eq!(
            q.trim(),
            remote,
            "pull did not create the image: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            d.log()
        );
        assert_eq!(
            d.digests(ns),
            want,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = Command::new(CTR)
            .arg("--address")
            .arg(&d.sock)
            .args(["-n", ns, "content", "get", &archive.manifest])
            .output()
            .unwrap();
        assert_eq!(got.stdout, archive.blobs[&archive.manifest]);
    }
    // A second pull finds everything present (AlreadyExists on each write).
    d.ctr_raw(
        "ctr-pull",
        &["images", "pull", "--plain-http", &remote],
        None,
    );
    assert_eq!(d.digests("ctr-pull"), want);
    assert!(
        d.ctr("ctr-pull", &["content", "active"]).lines().count() <= 1,
        "no ingest left behind"
    );
}
