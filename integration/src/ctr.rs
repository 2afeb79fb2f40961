//! Driving a daemon with Debian's real `ctr` (containerd 1.6): `ctr --address SOCK -n NS
//! ARGS...` with a timeout, a fifo directory of the test's own, and a clean environment.
//!
//! `ctr run`, `ctr tasks start` and `ctr tasks exec` get `--fifo-dir` inserted (unless the
//! arguments already choose one or a `--log-uri`), so ctr's stdio fifos live in a temp dir
//! of the test instead of `/run/containerd/fifo`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{Error, Result, io};
use crate::procs;

/// Where Debian's containerd package installs ctr.
pub const CTR: &str = "/usr/bin/ctr";
/// How long a ctr command may take unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished ctr command printed.
pub type CtrOutput = procs::Output;
/// A ctr running in the background.
pub type CtrChild = procs::Background;

/// A ctr bound to one daemon socket and namespace.
#[derive(Debug, Clone)]
pub struct Ctr {
    binary: PathBuf,
    address: PathBuf,
    namespace: String,
    timeout: Duration,
    fifo_dir: PathBuf,
    // Keeps an owned fifo directory alive as long as any clone of this Ctr.
    _fifo_owner: Option<Arc<TempDir>>,
}

impl Ctr {
    /// A ctr for the daemon at `address` in `namespace`, with its own temporary fifo
    /// directory. Fails if `/usr/bin/ctr` is missing (install the `containerd` package).
    pub fn new(address: impl Into<PathBuf>, namespace: &str) -> Result<Ctr> {
        let owner = tempfile::Builder::new()
            .prefix("berth-it-ctr-")
            .tempdir()
            .map_err(io("create a fifo dir for ctr"))?;
        let mut ctr = Ctr::with_fifo_dir(address, namespace, owner.path())?;
        ctr._fifo_owner = Some(Arc::new(owner));
        Ok(ctr)
    }

    /// A ctr whose fifos go under `fifo_dir` (which the caller owns and removes).
    pub fn with_fifo_dir(
        address: impl Into<PathBuf>,
        namespace: &str,
        fifo_dir: &Path,
    ) -> Result<Ctr> {
        let binary = std::env::var_os("BERTH_CTR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(CTR));
        if !binary.is_file() {
            return Err(Error::Missing {
                what: "ctr".into(),
                path: binary,
                hint: "install it with `apt-get install -y containerd`".into(),
            });
        }
        // ctr falls back to the default fifo dir for commands without --fifo-dir (attach).
        let _ = std::fs::create_dir_all("/run/containerd/fifo");
        Ok(Ctr {
            binary,
            address: address.into(),
            namespace: namespace.to_string(),
            timeout: DEFAULT_TIMEOUT,
            fifo_dir: fifo_dir.to_path_buf(),
            _fifo_owner: None,
        })
    }

    /// The same ctr in another namespace.
    pub fn in_namespace(&self, namespace: &str) -> Ctr {
        Ctr {
            namespace: namespace.to_string(),
            ..self.clone()
        }
    }

    /// The same ctr with another timeout per command.
    pub fn with_timeout(&self, timeout: Duration) -> Ctr {
        Ctr {
            timeout,
            ..self.clone()
        }
    }

    /// Its namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Its fifo directory.
    pub fn fifo_dir(&self) -> &Path {
        &self.fifo_dir
    }

    /// The full command line for `args`: global flags, then `args` with `--fifo-dir`
    /// inserted where ctr accepts it. Environment variables ctr reads are cleared.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        if let Some(at) = fifo_dir_position(&args) {
            args.insert(at, self.fifo_dir.display().to_string());
            args.insert(at, "--fifo-dir".to_string());
        }
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(&args)
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .env_remove("CONTAINERD_SNAPSHOTTER")
            .env_remove("CONTAINERD_RUNTIME");
        cmd
    }

    /// Runs `ctr ... args` to completion (killed after the timeout).
    pub fn run<I, S>(&self, args: I) -> Result<CtrOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        procs::run(&mut self.command(args), None, self.timeout)
    }

    /// Runs `ctr ... args` with `stdin` as its standard input.
    pub fn run_with_stdin<I, S>(&self, args: I, stdin: &[u8]) -> Result<CtrOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        procs::run(&mut self.command(args), Some(stdin), self.timeout)
    }

    /// Runs `ctr ... args` and returns its stdout; panics with the command line, status,
    /// stdout and stderr if it fails or times out.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args);
        let line = procs::describe(&cmd);
        let out =
            procs::run(&mut cmd, None, self.timeout).unwrap_or_else(|e| panic!("`{line}`: {e}"));
        if !out.success() {
            panic!(
                "`{line}` failed with {}\nstdout:\n{}\nstderr:\n{}",
                out.status, out.stdout, out.stderr
            );
        }
        out.stdout
    }

    /// Runs `ctr ... args`, expecting it to fail; returns the output (stderr holds ctr's
    /// message) and panics if it succeeds.
    pub fn fails<I, S>(&self, args: I) -> CtrOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args);
        let line = procs::describe(&cmd);
        let out =
            procs::run(&mut cmd, None, self.timeout).unwrap_or_else(|e| panic!("`{line}`: {e}"));
        if out.success() {
            panic!(
                "`{line}` succeeded but should have failed\nstdout:\n{}",
                out.stdout
            );
        }
        out
    }

    /// [`Ctr::run`] off the async runtime's threads (for `#[tokio::test]`s that serve
    /// something else meanwhile).
    pub async fn run_async<I, S>(&self, args: I) -> Result<CtrOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args = owned(args);
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.run(args))
            .await
            .expect("ctr runner thread")
    }

    /// [`Ctr::ok`] off the async runtime's threads.
    pub async fn ok_async<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args = owned(args);
        let this = self.clone();
        match tokio::task::spawn_blocking(move || this.ok(args)).await {
            Ok(out) => out,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Starts a long-running `ctr ... args` (`events`, `run` without `-d`, `tasks attach`)
    /// in the background; it is killed by PID when the handle drops.
    pub fn spawn<I, S>(&self, args: I) -> Result<CtrChild>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        procs::spawn(&mut self.command(args))
    }
}

fn owned<I, S>(args: I) -> Vec<std::ffi::OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    args.into_iter().map(|a| a.as_ref().to_owned()).collect()
}

/// Where `--fifo-dir DIR` goes in `args`, if the subcommand takes it and none is given.
fn fifo_dir_position(args: &[String]) -> Option<usize> {
    if args.iter().any(|a| {
        a == "--fifo-dir"
            || a.starts_with("--fifo-dir=")
            || a == "--log-uri"
            || a.starts_with("--log-uri=")
    }) {
        return None;
    }
    match args {
        [first, ..] if first == "run" => Some(1),
        [first, second, ..]
            if matches!(first.as_str(), "tasks" | "task" | "t")
                && matches!(second.as_str(), "start" | "exec") =>
        {
            Some(2)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fifo_dir_goes_after_the_subcommand() {
        assert_eq!(
            fifo_dir_position(&strings(&["run", "--rm", "img", "id"])),
            Some(1)
        );
        assert_eq!(fifo_dir_position(&strings(&["t", "start", "id"])), Some(2));
        assert_eq!(
            fifo_dir_position(&strings(&["tasks", "exec", "--exec-id", "x", "id"])),
            Some(2)
        );
        assert_eq!(fifo_dir_position(&strings(&["tasks", "ls"])), None);
        assert_eq!(fifo_dir_position(&strings(&["version"])), None);
        assert_eq!(
            fifo_dir_position(&strings(&["run", "--fifo-dir", "/x", "img", "id"])),
            None
        );
        assert_eq!(
            fifo_dir_position(&strings(&["run", "--log-uri=file:///x", "img", "id"])),
            None
        );
    }

    #[test]
    fn command_has_global_flags_first() {
        let ctr = Ctr::new("/tmp/sock", "ns1").unwrap();
        let cmd = ctr.command(["run", "--rm", "img", "c1"]);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            &args[..4],
            &["--address", "/tmp/sock", "--namespace", "ns1"]
        );
        assert_eq!(args[4], "run");
        assert_eq!(args[5], "--fifo-dir");
        assert_eq!(args[6], ctr.fifo_dir().display().to_string());
        assert_eq!(&args[7..], &["--rm", "img", "c1"]);
    }

    #[test]
    fn ctr_without_a_daemon_fails_quickly_with_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let ctr = Ctr::new(dir.path().join("none.sock"), "default")
            .unwrap()
            .with_timeout(Duration::from_secs(30));
        let out = ctr.fails(["--connect-timeout", "1s", "version"]);
        assert!(!out.stderr.is_empty() || !out.stdout.is_empty());
    }

    #[test]
    fn ctr_child_is_killed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let ctr = Ctr::new(dir.path().join("none.sock"), "default").unwrap();
        let child = ctr.spawn(["--help"]).unwrap();
        let out = child.wait(Duration::from_secs(10)).unwrap();
        assert!(out.stdout.contains("ctr"), "{}", out.stdout);
    }
}
