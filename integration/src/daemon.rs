//! The `berthd` harness: the real daemon binary on a fresh temporary root, state dir and
//! socket, ready once it answers the containerd Version RPC, and stopped when dropped,
//! with everything it started (shims, container processes, mounts) cleaned up.
//!
//! The binary is looked up in `$BERTH_BIN_DIR`, else in the cargo target directory of the
//! running test (`target/<profile>/`, the parent of `deps/`). `cargo test -p
//! berth-integration` does not build other packages' binaries: build them first
//! (`cargo build -p berth-agent -p berth-shim -p berth-ctl`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use berth_api::containerd::services::version::v1::version_client::VersionClient;
use tempfile::TempDir;
use tonic::transport::Channel;

use crate::ctr::Ctr;
use crate::error::{Error, Result, io};
use crate::names::{self, TestNames};
use crate::procs;

/// Environment variable naming the directory that holds `berthd`, `berth-shim`, `berthctl`.
pub const BIN_DIR_ENV: &str = "BERTH_BIN_DIR";
/// How long `stop` and drop wait after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How much of the log a failing test prints (its end).
const LOG_TAIL: usize = 64 * 1024;

/// The directory that holds berth's binaries: `$BERTH_BIN_DIR`, else the test
/// executable's `target/<profile>/`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    dir
}

/// The path of berth's binary `name` (`berthd`, `berthctl`, `berth-shim`), checked to
/// exist.
pub fn binary(name: &str) -> Result<PathBuf> {
    let path = bin_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Missing {
            what: name.to_string(),
            path,
            hint: format!(
                "build it first (`cargo build -p berth-agent -p berth-shim -p berth-ctl`) or set {BIN_DIR_ENV}"
            ),
        })
    }
}

/// How to start the daemon. `Default` is the standard test daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The daemon binary; `None` is `berthd` in [`bin_dir`].
    pub binary: Option<PathBuf>,
    /// `--log-level`.
    pub log_level: String,
    /// A config file's content, written into the temp dir and passed with `--config`;
    /// every `@DIR@` in it becomes the daemon's temp dir.
    pub config: Option<String>,
    /// More arguments, after the standard ones.
    pub args: Vec<String>,
    /// More environment variables.
    pub env: Vec<(String, String)>,
    /// How long to wait for the daemon to answer Version.
    pub ready_timeout: Duration,
    /// Directories outside the temp dir that the daemon may leave behind per namespace,
    /// removed on drop if empty; `@NS@` is each namespace handed out by
    /// [`Daemon::namespace`] (containerd: `/run/containerd/runc/@NS@`).
    pub empty_dirs_per_namespace: Vec<String>,
    /// Where the daemon's temp dir is made; `None` is the system temp dir.
    pub parent: Option<PathBuf>,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            binary: None,
            log_level: "debug".into(),
            config: None,
            args: Vec::new(),
            env: Vec::new(),
            ready_timeout: Duration::from_secs(20),
            empty_dirs_per_namespace: Vec::new(),
            parent: None,
        }
    }
}

/// A running `berthd` of one test. Dropping it stops the daemon (SIGTERM, then SIGKILL
/// after 10 s), kills every process left under its directories (shims, containers),
/// detaches mounts under them, removes its cgroup parent and bridge if created, and
/// deletes the directories. When the test is failing, the daemon's log is printed.
#[derive(Debug)]
pub struct Daemon {
    dir: Option<TempDir>,
    base: PathBuf,
    root: PathBuf,
    state: PathBuf,
    socket: PathBuf,
    log_path: PathBuf,
    fifo_dir: PathBuf,
    config_path: Option<PathBuf>,
    binary: PathBuf,
    options: DaemonOptions,
    child: Option<Child>,
    namespaces: Mutex<Vec<String>>,
    // Dropped after the processes are gone (field order), see Drop.
    names: TestNames,
}

impl Daemon {
    /// Starts `berthd` with the default options and waits until it answers Version.
    pub async fn start() -> Result<Daemon> {
        Daemon::start_with(DaemonOptions::default()).await
    }

    /// Starts the daemon with `options` and waits until it answers Version.
    pub async fn start_with(options: DaemonOptions) -> Result<Daemon> {
        let binary = match &options.binary {
            Some(path) if path.is_file() => path.clone(),
            Some(path) => {
                return Err(Error::Missing {
                    what: "daemon binary".into(),
                    path: path.clone(),
                    hint: "check DaemonOptions::binary".into(),
                });
            }
            None => binary("berthd")?,
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix("berth-it-");
        let dir = match &options.parent {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .map_err(io("create the daemon's temp dir"))?;
        let base = dir.path().to_path_buf();
        let root = base.join("root");
        let state = base.join("state");
        let fifo_dir = base.join("fifo");
        for d in [&root, &state, &fifo_dir] {
            std::fs::create_dir_all(d).map_err(io(format!("create {}", d.display())))?;
        }
        let config_path = match &options.config {
            Some(text) => {
                let path = base.join("config.toml");
                let text = text.replace("@DIR@", &base.display().to_string());
                std::fs::write(&path, text).map_err(io(format!("write {}", path.display())))?;
                Some(path)
            }
            None => None,
        };
        let mut daemon = Daemon {
            socket: base.join("berthd.sock"),
            log_path: base.join("berthd.log"),
            dir: Some(dir),
            base,
            root,
            state,
            fifo_dir,
            config_path,
            binary,
            options,
            child: None,
            namespaces: Mutex::new(Vec::new()),
            names: TestNames::new(),
        };
        daemon.spawn()?;
        daemon.wait_ready().await?;
        Ok(daemon)
    }

    /// The API socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The API socket path as a string (for `--address`).
    pub fn address(&self) -> String {
        self.socket.display().to_string()
    }

    /// The `--root` directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `--state` directory.
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// The test's temporary directory holding root, state, socket, log and fifos; a
    /// test may put its own files here too.
    pub fn dir(&self) -> &Path {
        &self.base
    }

    /// The config file passed with `--config`, if any.
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    /// The daemon's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the daemon process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// The unique names of this test (namespace, cgroup parent, bridge).
    pub fn names(&self) -> &TestNames {
        &self.names
    }

    /// The prefix of this test's names (`t<pid>-<n>`).
    pub fn prefix(&self) -> &str {
        &self.names.prefix
    }

    /// A fresh namespace name of this test, valid as a containerd identifier. On drop,
    /// cgroup directories named after it (`/sys/fs/cgroup/<controller>/<ns>`, where
    /// containers run by `ctr` go by default) are removed.
    pub fn namespace(&self) -> String {
        let ns = self.names.fresh("ns");
        self.namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ns.clone());
        ns
    }

    /// A new gRPC channel to the daemon. Its connection is driven by the harness's own
    /// background runtime, so it keeps answering HTTP/2 pings while the test's runtime is
    /// blocked (in `stop`, `restart` or drop): a daemon's graceful shutdown waits for them.
    /// Prefer it to connecting by hand.
    pub async fn channel(&self) -> Result<Channel> {
        connect_in_background(self.address())
            .await
            .map_err(|e| Error::Io {
                context: format!("connect to {}", self.socket.display()),
                source: std::io::Error::other(e),
            })
    }

    /// The daemon's log (stdout and stderr of every start so far).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// A `ctr` for this daemon in `namespace`, its fifos in this test's directory.
    /// Panics if `/usr/bin/ctr` is missing.
    pub fn ctr(&self, namespace: &str) -> Ctr {
        Ctr::with_fifo_dir(&self.socket, namespace, &self.fifo_dir)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A `berthctl --address SOCK` command for this daemon (add the subcommand).
    pub fn berthctl(&self) -> Result<Command> {
        let mut cmd = Command::new(binary("berthctl")?);
        cmd.arg("--address").arg(&self.socket);
        Ok(cmd)
    }

    /// Runs `berthctl --address SOCK args...` with a 60 s timeout.
    pub fn run_berthctl<I, S>(&self, args: I) -> Result<procs::Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.berthctl()?;
        cmd.args(args);
        procs::run(&mut cmd, None, Duration::from_secs(60))
    }

    /// Stops the daemon gracefully (SIGTERM, SIGKILL after 10 s) and returns how it
    /// exited; `None` when it was not running. Shims and containers are left alone.
    pub fn stop(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.take() {
            Some(mut child) => procs::terminate(&mut child, STOP_GRACE)
                .map(Some)
                .map_err(io("stop berthd")),
            None => Ok(None),
        }
    }

    /// Takes the daemon's temp dir out of the handle: dropping the daemon then stops it
    /// and cleans up as usual but leaves the files, which go when the returned dir is
    /// dropped. Benchmarks use it to delete a run's files only after every run, since on
    /// ext4 without a journal the inodes of a big recent delete slow later creates down.
    pub fn take_dir(&mut self) -> Option<TempDir> {
        self.dir.take()
    }

    /// Crashes the daemon: SIGKILL to its PID, nothing else (shims keep running).
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().map_err(io("kill berthd"))?;
            child.wait().map_err(io("reap berthd"))?;
        }
        Ok(())
    }

    /// Stops the daemon if it runs, starts it again on the same root, state, socket and
    /// options, and waits until it answers Version.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()?;
        self.wait_ready().await
    }

    fn spawn(&mut self) -> Result<()> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(io(format!("open {}", self.log_path.display())))?;
        let _ = writeln!(log, "=== harness: starting {} ===", self.binary.display());
        let stderr: File = log.try_clone().map_err(io("duplicate the log file"))?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--state")
            .arg(&self.state)
            .arg("--address")
            .arg(&self.socket)
            .arg("--log-level")
            .arg(&self.options.log_level);
        if let Some(config) = &self.config_path {
            cmd.arg("--config").arg(config);
        }
        cmd.args(&self.options.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .env("RUST_BACKTRACE", "1")
            .env("PATH", path_with(&bin_dir()));
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(io(format!("start {}", procs::describe(&cmd))))?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let timeout = self.options.ready_timeout;
        let deadline = Instant::now() + timeout;
        let mut last = String::from("socket not created yet");
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().map_err(io("wait for berthd"))?
            {
                self.child = None;
                return Err(Error::Exited {
                    what: format!("{} (before answering Version)", self.binary.display()),
                    status,
                    log: self.log(),
                });
            }
            if self.socket.exists() {
                match tokio::time::timeout(Duration::from_secs(2), self.version()).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => last = e,
                    Err(_) => last = "Version did not answer within 2 s".into(),
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "berthd to answer Version on {} (last: {last})",
                        self.socket.display()
                    ),
                    after: timeout,
                    log: self.log(),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn version(&self) -> Result<(), String> {
        let channel = connect_in_background(self.address()).await?;
        VersionClient::new(channel)
            .version(())
            .await
            .map(|_| ())
            .map_err(|s| format!("Version: {s}"))
    }
}

/// The runtime that drives the harness's gRPC connections, independent of the tests'.
fn background() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("berth-it-grpc")
            .enable_all()
            .build()
            .expect("start the harness's grpc runtime")
    })
}

/// Connects to `address` on the [`background`] runtime.
async fn connect_in_background(address: String) -> Result<Channel, String> {
    background()
        .spawn(async move { berth_api::client::connect(&address).await })
        .await
        .map_err(|e| format!("connect task: {e}"))?
        .map_err(|e| format!("connect: {e}"))
}

/// `$PATH` with `dir` in front, so the daemon finds `berth-shim` next to itself.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        let stopped = self.stop();
        let strays = procs::kill_processes_under(&self.base);
        let stuck = procs::unmount_under(&self.base);
        let namespaces =
            std::mem::take(self.namespaces.get_mut().unwrap_or_else(|e| e.into_inner()));
        for ns in &namespaces {
            names::remove_cgroup_tree(Path::new("/sys/fs/cgroup"), ns);
            for template in &self.options.empty_dirs_per_namespace {
                let _ = std::fs::remove_dir(template.replace("@NS@", ns));
            }
        }
        if failing {
            eprintln!(
                "--- berthd log ({}; stop: {stopped:?}; stray pids killed: {strays:?}) ---\n{}\n--- end of berthd log ---",
                self.log_path.display(),
                tail(&self.log(), LOG_TAIL)
            );
        }
        if !stuck.is_empty() {
            // Never delete through a mount: keep the directory and say so.
            eprintln!(
                "warning: mounts still under {} ({stuck:?}); the directory is kept",
                self.base.display()
            );
            if let Some(dir) = self.dir.take() {
                let _ = dir.keep();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_dir_is_the_profile_dir() {
        if std::env::var_os(BIN_DIR_ENV).is_none() {
            let dir = bin_dir();
            assert!(dir.join("deps").is_dir(), "{}", dir.display());
        }
    }

    #[test]
    fn missing_binary_says_how_to_build_it() {
        let err = binary("no-such-berth-binary").unwrap_err().to_string();
        assert!(err.contains("cargo build"), "{err}");
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(tail("aé", 1), "");
    }
}
