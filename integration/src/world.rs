//! One integration test's world for the docker-level tests: its own berthd (bridge,
//! subnet, cgroup parent, log dir), a registry holding busybox, a namespace; `berthctl`
//! helpers; and on drop, the daemon stopped and every process left in its cgroup killed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs::Output;
use crate::{Daemon, DaemonOptions, Registry, TestNames, fixtures};

static SUBNETS: AtomicU32 = AtomicU32::new(0);

/// A /23 unlikely to be used by another test on this machine: the default bridge gets
/// the first /24, user networks the second.
fn subnet() -> (String, String) {
    let n = SUBNETS.fetch_add(1, Ordering::Relaxed);
    let seed = std::process::id()
        .wrapping_mul(2_246_822_519)
        .wrapping_add(n * 7907);
    let a = 120 + (seed % 80);
    let b = ((seed / 80) % 127) * 2;
    (format!("10.{a}.{b}.0/24"), format!("10.{a}.{}.0/24", b + 1))
}

/// One test's world. Field order is drop order: the daemon (and everything under its
/// directory) goes before the names (cgroup parent, bridge) are cleaned.
pub struct World {
    pub daemon: Daemon,
    registry: Registry,
    pub names: TestNames,
    pub ns: String,
    pub busybox: String,
    pub scratch: tempfile::TempDir,
}

impl World {
    /// A berthd of its own with a registry holding busybox, pulled into its namespace.
    pub async fn new() -> World {
        World::with("", &[]).await
    }

    /// [`World::new`] with extra `[containers]` settings for berthd and more images in
    /// the registry (`(image, "name:tag")`, see [`World::reference`]; not pulled).
    pub async fn with(containers: &str, images: &[(&fixtures::Image, &str)]) -> World {
        let names = TestNames::new();
        let (default_subnet, pool) = subnet();
        let registry = Registry::start().unwrap();
        registry.push(fixtures::busybox(), "busybox:v1").unwrap();
        for (image, name) in images {
            registry.push(*image, name).unwrap();
        }
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
{containers}
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
            registry,
            names,
            ns,
            scratch: tempfile::tempdir().unwrap(),
        };
        w.ok(&["pull", "-q", &w.busybox]);
        w
    }

    /// The reference of `name` ("repo:tag") in this world's registry.
    pub fn reference(&self, name: &str) -> String {
        self.registry.reference(name)
    }

    /// `berthctl -n <ns> ARGS`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        self.daemon.run_berthctl(all).unwrap()
    }

    /// A command that must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.success(),
            "berthctl {args:?} failed: {out:?}\n--- daemon log ---\n{}",
            tail(&self.daemon.log())
        );
        out.stdout
    }

    /// A command that must fail with `code`; its standard error.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.ctl(args);
        assert_eq!(out.status.code(), Some(code), "berthctl {args:?}: {out:?}");
        out.stderr
    }

    /// `run -d --name NAME EXTRA busybox sleep 1000`, waited for until it runs; its ID.
    pub fn sleeper(&self, name: &str, extra: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&self.busybox, "sleep", "1000"]);
        let id = self.ok(&args).trim().to_string();
        eventually(&format!("{name} to run"), || {
            self.inspect(name)["State"]["Running"] == true
        });
        id
    }

    /// `inspect NAME`: the container's document.
    pub fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    /// The container's `State.Status`.
    pub fn status(&self, name: &str) -> String {
        self.inspect(name)["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the container's status is `want`.
    pub fn wait_status(&self, name: &str, want: &str) {
        eventually(&format!("{name} to be {want}"), || {
            self.status(name) == want
        });
    }

    /// `ctr containers ls -q` in this world's namespace.
    pub fn ctr_containers(&self) -> String {
        self.daemon.ctr(&self.ns).ok(["containers", "ls", "-q"])
    }

    /// A control file of container `id`'s v1 cgroup under `controller`.
    pub fn cgroup_file(&self, controller: &str, id: &str, file: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.names.cgroup_parent)
            .join(&self.ns)
            .join(id)
            .join(file)
    }
}

/// Every process in the cgroup tree `parent` (this test's own), any hierarchy.
pub fn processes_in_cgroup(parent: &str) -> Vec<u32> {
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

/// Kills every process left in the cgroup tree `parent` (container processes outlive
/// berthd and their shims), for up to 5 s.
pub fn kill_cgroup_processes(parent: &str) {
    for _ in 0..50 {
        let pids = processes_in_cgroup(parent);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            crate::procs::signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Container processes outlive berthd and their shims: end the ones this test
        // started (they are in its own cgroup parent) before the daemon's cleanup.
        let _ = self.daemon.stop();
        kill_cgroup_processes(&self.names.cgroup_parent);
    }
}

/// The last few KiB of `s` (a daemon log in a failure message).
pub fn tail(s: &str) -> &str {
    let start = s.len().saturating_sub(6000);
    let mut i = start;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// Polls `f` every 100 ms until it holds; panics naming `what` after 30 s.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
