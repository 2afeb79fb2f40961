//! The Docker notes as one scripted scenario through `berthctl` against a real berthd:
//! pull, images, run -d, ps, logs -f, exec, stop, commit, save, rmi, load, run the loaded
//! image, export/import, rm; each step's output and exit code asserted. It has its own
//! berthd, registry, namespace, bridge, subnet and cgroup parent.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_integration::fixtures;
use berth_integration::procs::Output;
use berth_integration::{Daemon, DaemonOptions, Registry, TestNames};

static SUBNETS: AtomicU32 = AtomicU32::new(0);

/// A /23 unlikely to be used by another test on this machine.
fn subnet() -> (String, String) {
    let n = SUBNETS.fetch_add(1, Ordering::Relaxed);
    let seed = std::process::id()
        .wrapping_mul(2_654_435_789)
        .wrapping_add(n * 7901);
    let a = 90 + (seed % 25);
    let b = ((seed / 25) % 127) * 2;
    (format!("10.{a}.{b}.0/24"), format!("10.{a}.{}.0/24", b + 1))
}

/// One test's world; the daemon goes before the names are cleaned.
struct World {
    daemon: Daemon,
    _registry: Registry,
    names: TestNames,
    ns: String,
    busybox: String,
    scratch: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let names = TestNames::new();
        let (default_subnet, pool) = subnet();
        let registry = Registry::start().unwrap();
        registry.push(fixtures::busybox(), "busybox:v1").unwrap();
        let config = format!(
            r#"
[network]
bridge = "{bridge}"
subnet = "{default_subnet}"
ip_forward = false
default_address_pools = [{{ base = "{pool}", size = 26 }}]
[containers]
log_dir = "@DIR@/logs"
cgroup_parent = "{cgroup}"
stop_timeout = 5
"#,
            bridge = names.bridge,
            cgroup = names.cgroup_parent,
        );
        let daemon = Daemon::start_with(DaemonOptions {
            config: Some(config),
            ..Default::default()
        })
        .await
        .unwrap();
        let ns = daemon.namespace();
        let w = World {
            busybox: registry.reference("busybox:v1"),
            daemon,
            _registry: registry,
            names,
            ns,
            scratch: tempfile::tempdir().unwrap(),
        };
        w.ok(&["pull", "-q", &w.busybox]);
        w
    }

    fn ctl(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        self.daemon.run_berthctl(all).unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.success(),
            "berthctl {args:?} failed: {out:?}\n--- daemon log ---\n{}",
            tail(&self.daemon.log())
        );
        out.stdout
    }
}

/// Every process in the cgroup tree `parent` (this test's own), any hierarchy.
fn processes_in_cgroup(parent: &str) -> Vec<u32> {
    fn walk(dir: &Path, out: &mut Vec<u32>) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    for top in ["pids", "memory", "unified", ""] {
        walk(
            &Path::new("/sys/fs/cgroup").join(top).join(parent),
            &mut out,
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.daemon.stop();
        for _ in 0..50 {
            let pids = processes_in_cgroup(&self.names.cgroup_parent);
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                berth_integration::procs::signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn tail(s: &str) -> &str {
    let start = s.len().saturating_sub(6000);
    let mut i = start;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn docker_notes_scenario() {
    let w = World::new().await;
    let dir = w.scratch.path();

    // pull (done by World::new, again: idempotent) and images.
    let out = w.ctl(&["pull", "-q", &w.busybox]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let images = w.ok(&["images"]);
    assert!(images.starts_with("REPOSITORY"), "{images}");
    assert!(
        images.contains("busybox") && images.contains("v1"),
        "{images}"
    );

    // run -d: the ID; ps: the container, up.
    let id = w
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            &w.busybox,
            "sh",
            "-c",
            "echo hello from web; exec sleep 1000",
        ])
        .trim()
        .to_string();
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    eventually("web to log", || {
        w.ok(&["logs", "web"]) == "hello from web\n"
    });
    let ps = w.ok(&["ps"]);
    let line = ps.lines().find(|l| l.contains("web")).unwrap_or_default();
    assert!(line.starts_with(&id[..12]) && line.contains("Up "), "{ps}");

    // logs -f follows until the container ends.
    w.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        &w.busybox,
        "sh",
        "-c",
        "for i in 1 2 3; do echo tick $i; sleep 0.2; done",
    ]);
    assert_eq!(w.ok(&["logs", "-f", "ticker"]), "tick 1\ntick 2\ntick 3\n");

    // exec: output and docker's exit codes.
    assert_eq!(
        w.ok(&[
            "exec",
            "web",
            "sh",
            "-c",
            "echo changed > /marker; cat /marker"
        ]),
        "changed\n"
    );
    assert_eq!(w.ctl(&["exec", "web", "false"]).status.code(), Some(1));
    assert_eq!(
        w.ctl(&["exec", "web", "no-such-command"]).status.code(),
        Some(127)
    );

    // stop: the name echoed; ps -a shows it exited.
    assert_eq!(w.ok(&["stop", "-t", "1", "web"]).trim(), "web");
    let ps = w.ok(&["ps", "-a"]);
    let line = ps.lines().find(|l| l.contains("web")).unwrap_or_default();
    assert!(line.contains("Exited ("), "{ps}");

    // commit the stopped container; save the image; rmi; load; run the loaded image.
    let image_id = w
        .ok(&["commit", "-m", "notes", "web", "notes:v1"])
        .trim()
        .to_string();
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    let archive = dir.join("notes.tar");
    w.ok(&["save", "-o", &archive.display().to_string(), "notes:v1"]);
    assert!(std::fs::metadata(&archive).unwrap().len() > 0);
    let rmi = w.ok(&["rmi", "notes:v1"]);
    assert!(
        rmi.contains("Untagged:") && rmi.contains("notes:v1"),
        "{rmi}"
    );
    assert!(!w.ok(&["images"]).contains("notes"));
    assert_eq!(
        w.ctl(&["run", "--rm", "--pull", "never", "notes:v1"])
            .status
            .code(),
        Some(125)
    );
    let load = w.ok(&["load", "-i", &archive.display().to_string()]);
    assert!(
        load.contains("Loaded image") && load.contains("notes:v1"),
        "{load}"
    );
    assert!(w.ok(&["images"]).contains("notes"));
    assert_eq!(
        w.ok(&["run", "--rm", "notes:v1", "cat", "/marker"]),
        "changed\n"
    );

    // export the container, import it as an image, run it.
    let flat = dir.join("web.tar");
    w.ok(&["export", "-o", &flat.display().to_string(), "web"]);
    let flat_id = w
        .ok(&["import", &flat.display().to_string(), "flat:v1"])
        .trim()
        .to_string();
    assert!(flat_id.starts_with("sha256:"), "{flat_id}");
    assert_eq!(
        w.ok(&["run", "--rm", "flat:v1", "cat", "/marker"]),
        "changed\n"
    );

    // exit codes of run: the container's own, 127 for a missing command.
    assert_eq!(
        w.ctl(&["run", "--rm", &w.busybox, "sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        w.ctl(&["run", "--rm", &w.busybox, "no-such-command"])
            .status
            .code(),
        Some(127)
    );

    // rm: the names echoed, nothing left.
    let rm = w.ok(&["rm", "web", "ticker"]);
    assert_eq!(rm, "web\nticker\n");
    assert_eq!(w.ok(&["ps", "-a", "-q"]).trim(), "");
    assert_eq!(w.ctl(&["rm", "web"]).status.code(), Some(1));
}
