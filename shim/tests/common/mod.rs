//! Test fixture: a busybox rootfs and bundle in a temp dir, a unique cgroup path, the
//! real `berth-shim start`, client FIFOs, and cleanup (shim, mounts, cgroups) on drop.

#![allow(dead_code)]

/// Skips a test (with a message) when not running as root.
macro_rules! need_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use berth_api::shim::ShimClient;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

static COUNTER: AtomicU32 = AtomicU32::new(0);

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "ls", "hostname", "ps", "true", "false", "tty", "stty", "grep",
    "wc", "head", "yes", "id", "env", "mount", "umount", "insmod", "date", "readlink", "stat",
    "mknod", "unshare", "touch", "sysctl", "chroot", "dd", "sed", "tr", "cut", "tail", "test",
    "mkdir", "rm", "od", "nsenter", "setpriv", "chmod",
];

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub bundle: PathBuf,
    pub rootfs_src: PathBuf,
    pub socket: PathBuf,
    pub id: String,
    pub cgroup_parent: String,
    pub cgroup: String,
    pub shim_pid: Option<i32>,
    /// What `start_shim` executes.
    pub shim_exe: PathBuf,
}

fn make_rootfs(root: &Path) {
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-test")
            .tempdir()
            .unwrap();
        let bundle = dir.path().join("bundle");
        std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
        let rootfs_src = dir.path().join("rootfs-src");
        make_rootfs(&rootfs_src);
        let id = format!("{name}-{n}");
        let cgroup_parent = format!("berth-test-{}-{n}", std::process::id());
        let cgroup = format!("/{cgroup_parent}/{id}");
        let f = Fixture {
            socket: dir.path().join("shim.sock"),
            dir,
            bundle,
            rootfs_src,
            id,
            cgroup_parent,
            cgroup,
            shim_pid: None,
            shim_exe: PathBuf::from(env!("CARGO_BIN_EXE_berth-shim")),
        };
        f.write_spec(&["true"], |_| {});
        f
    }

    /// Writes config.json running `args`, then lets `edit` change it.
    pub fn write_spec(&self, args: &[&str], edit: impl FnOnce(&mut Value)) {
        let mut spec = json!({
            "ociVersion": "1.0.2-dev",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "cwd": "/",
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs"},
            "hostname": "berth-box",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}
            ],
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "cgroupsPath": self.cgroup,
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        edit(&mut spec);
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec).unwrap(),
        )
        .unwrap();
    }

    /// Writes config.json running `args` with berth's default hardening changed by
    /// `opts` (as berthd will), then lets `edit` change it.
    pub fn write_hardened(
        &self,
        args: &[&str],
        opts: &berth_shim::spec_defaults::SecurityOptions,
        edit: impl FnOnce(&mut Value),
    ) {
        let opts = opts.clone();
        self.write_spec(args, move |v| {
            let mut spec: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
            berth_shim::spec_defaults::apply(&mut spec, &opts).unwrap();
            *v = serde_json::to_value(&spec).unwrap();
            edit(v);
        });
    }

    /// The rootfs as a Create mount list: a bind mount of the prepared directory.
    pub fn rootfs_mounts(&self) -> Vec<berth_api::berth::shim::v1::Mount> {
        vec![berth_api::berth::shim::v1::Mount {
            r#type: "bind".into(),
            source: self.rootfs_src.display().to_string(),
            options: vec!["rbind".into(), "rw".into()],
        }]
    }

    /// Runs `berth-shim start` and connects.
    pub async fn start_shim(&mut self) -> ShimClient {
        let out = std::process::Command::new(&self.shim_exe)
            .args([
                "start",
                "--id",
                &self.id,
                "--namespace",
                "test",
                "--log-level",
                "debug",
            ])
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        self.shim_pid = Some(pid);
        self.connect().await
    }

    pub async fn connect(&self) -> ShimClient {
        ShimClient::connect(&self.socket).await.unwrap()
    }

    /// Makes a FIFO in the test dir.
    pub fn fifo(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        p
    }

    pub fn create_request(&self) -> berth_api::berth::shim::v1::CreateRequest {
        berth_api::berth::shim::v1::CreateRequest {
            id: self.id.clone(),
            bundle: self.bundle.display().to_string(),
            rootfs: self.rootfs_mounts(),
            ..Default::default()
        }
    }

    /// Host directories of the container's cgroup.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup_roots()
            .into_iter()
            .map(|r| r.join(self.cgroup.trim_start_matches('/')))
            .collect()
    }

    pub fn shim_alive(&self) -> bool {
        self.shim_pid
            .is_some_and(|p| Path::new(&format!("/proc/{p}")).exists() && !is_zombie(p))
    }

    /// Waits (bounded) for the shim process to exit.
    pub async fn wait_shim_exit(&self) -> bool {
        for _ in 0..200 {
            if !self.shim_alive() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Asserts nothing of the container is left: mounts under the bundle, cgroups.
    pub fn assert_clean(&self) {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = self.bundle.display().to_string();
        assert!(
            !mountinfo.contains(&bundle),
            "mounts left under {bundle}:\n{}",
            mountinfo
                .lines()
                .filter(|l| l.contains(&bundle))
                .collect::<Vec<_>>()
                .join("\n")
        );
        for d in self.cgroup_dirs() {
            assert!(!d.exists(), "cgroup {} left behind", d.display());
        }
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// The cgroup hierarchy roots (v1: one per mounted controller directory; v2: one).
pub fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    std::fs::read_dir(base)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.is_symlink() && p.file_name().is_some_and(|n| n != "unified"))
        .collect()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid
            && self.shim_alive()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::process::Command::new(env!("CARGO_BIN_EXE_berth-shim"))
            .args(["delete", "--id", &self.id, "--namespace", "test"])
            .arg("--bundle")
            .arg(&self.bundle)
            .output();
        for r in cgroup_roots() {
            let _ = std::fs::remove_dir(r.join(self.cgroup.trim_start_matches('/')));
            let _ = std::fs::remove_dir(r.join(&self.cgroup_parent));
        }
    }
}

/// Opens a FIFO for reading (before Create, as ctr does) and collects it to EOF.
impl Fixture {
    /// Runs the container whose spec is already written to its exit, deletes it and
    /// checks nothing is left: (status, stdout, stderr).
    pub async fn run_written(&mut self) -> (u32, String, String) {
        let c = self.start_shim().await;
        let out = self.fifo("out");
        let err = self.fifo("err");
        let mut req = self.create_request();
        req.stdout = out.display().to_string();
        req.stderr = err.display().to_string();
        c.create(req).await.unwrap();
        let out_text = collect(&out);
        let err_text = collect(&err);
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.wait("").await })
        };
        c.start("").await.unwrap();
        let status = tokio::time::timeout(std::time::Duration::from_secs(30), waiter)
            .await
            .expect("container did not exit")
            .unwrap()
            .unwrap()
            .exit_status;
        let state = c.state("").await.unwrap();
        assert_eq!(
            state.status,
            berth_api::berth::shim::v1::Status::Stopped as i32
        );
        c.delete("").await.unwrap();
        assert!(
            self.wait_shim_exit().await,
            "shim did not exit after delete"
        );
        self.assert_clean();
        (status, out_text.await.unwrap(), err_text.await.unwrap())
    }
}

pub fn collect(path: &Path) -> tokio::task::JoinHandle<String> {
    let rx = tokio::net::unix::pipe::OpenOptions::new()
        .open_receiver(path)
        .unwrap();
    tokio::spawn(async move {
        let mut rx = rx;
        let mut out = Vec::new();
        let _ = rx.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    })
}
