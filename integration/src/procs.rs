//! Processes the tests start: running a command with a timeout, stopping a child by its
//! PID, and cleaning up what a daemon left behind under a test's own temporary directory
//! (stray processes, mounts). Nothing here ever selects a process by its name.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result, io};

/// How often a waiting loop looks again.
const POLL: Duration = Duration::from_millis(10);

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// How it exited.
    pub status: ExitStatus,
    /// Its standard output, lossily decoded.
    pub stdout: String,
    /// Its standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs `cmd` to completion, feeding it `stdin`, and kills it (by PID) if it takes longer
/// than `timeout`.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    let what = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(io(format!("spawn {what}")))?;
    let feeder = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let data = data.to_vec();
        // A child that exits without reading its input makes this write fail: that is its
        // answer, not ours, so the error is dropped.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let status = match wait_timeout(&mut child, timeout).map_err(io(format!("wait for {what}")))? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let out = stdout.join().unwrap_or_default();
            let err = stderr.join().unwrap_or_default();
            return Err(Error::Timeout {
                what,
                after: timeout,
                log: format!("stdout:\n{out}\nstderr:\n{err}"),
            });
        }
    };
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// A printable form of a command line, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// The command as a line a POSIX shell runs as is (every word single-quoted).
pub fn shell_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|w| format!("'{}'", w.to_string_lossy().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn drain<R: Read + Send + 'static>(mut pipe: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits up to `timeout` for `child` to exit; `None` when it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(POLL);
    }
}

/// Stops `child`: SIGTERM to its PID, up to `grace` to exit, then SIGKILL. Returns how it
/// exited.
pub fn terminate(child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    signal(child.id(), Signal::SIGTERM);
    if let Some(status) = wait_timeout(child, grace)? {
        return Ok(status);
    }
    child.kill()?;
    child.wait()
}

/// Sends `sig` to the process `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, sig: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// The PIDs of processes that belong to a test's directory `dir`: their command line
/// names a path inside it, or their root or working directory lies inside it (container
/// processes after pivot_root). The calling process is never included.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let base = entry.path();
        let by_cmdline = std::fs::read(base.join("cmdline"))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .any(|arg| mentions(OsStr::new(&*String::from_utf8_lossy(arg)), dir))
            })
            .unwrap_or(false);
        let by_link = ["root", "cwd"].iter().any(|link| {
            std::fs::read_link(base.join(link))
                .map(|target| target.starts_with(dir))
                .unwrap_or(false)
        });
        if by_cmdline || by_link {
            pids.push(pid);
        }
    }
    pids
}

/// Whether the argument `arg` names `dir` or a path inside it, alone or embedded
/// (`--root=/tmp/x`, `unix:///tmp/x/sock`).
fn mentions(arg: &OsStr, dir: &Path) -> bool {
    let arg = arg.to_string_lossy();
    let dir = dir.to_string_lossy();
    arg.ends_with(dir.as_ref()) || arg.contains(&format!("{dir}/"))
}

/// SIGKILLs every process that belongs to `dir` (see [`processes_under`]), several rounds
/// so that children started meanwhile are caught too, and returns the PIDs killed.
pub fn kill_processes_under(dir: &Path) -> Vec<u32> {
    let mut killed = Vec::new();
    for _ in 0..5 {
        let pids = processes_under(dir);
        if pids.is_empty() {
            break;
        }
        for &pid in &pids {
            signal(pid, Signal::SIGKILL);
        }
        killed.extend(pids);
        thread::sleep(Duration::from_millis(50));
    }
    killed.sort_unstable();
    killed.dedup();
    killed
}

/// The mount points of this mount namespace at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut points: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    points
}

/// Decodes mountinfo's octal escapes (`\040` for a space).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches every mount at or under `dir` (deepest first, several rounds for stacked
/// mounts), so that removing the directory never reaches into a mounted filesystem.
/// Returns the mount points that could not be detached.
pub fn unmount_under(dir: &Path) -> Vec<PathBuf> {
    for _ in 0..8 {
        let points = mounts_under(dir);
        if points.is_empty() {
            return Vec::new();
        }
        for point in &points {
            let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    mounts_under(dir)
}

/// Looks for `program` in the directories of `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_captures_output_and_status() {
        let out = run(
            Command::new("/bin/sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            None,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn run_feeds_stdin() {
        let out = run(
            &mut Command::new("/bin/cat"),
            Some(b"hello"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.stdout, "hello");
    }

    #[test]
    fn run_kills_on_timeout() {
        let started = Instant::now();
        let err = run(
            Command::new("/bin/sleep").arg("30"),
            None,
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn terminate_stops_a_child() {
        let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
        let status = terminate(&mut child, Duration::from_secs(5)).unwrap();
        assert!(!status.success());
    }

    #[test]
    fn finds_and_kills_processes_by_their_directory() {
        let dir = tempfile::Builder::new()
            .prefix("berth-it-")
            .tempdir()
            .unwrap();
        let marker = dir.path().join("marker");
        // `read` is a builtin: the shell never forks a child that would, until it execs,
        // carry the marker in its command line too.
        let mut child = Command::new("/bin/sh")
            .args(["-c", "read line", "sh"])
            .arg(&marker)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Until the child has exec'd, its command line is still the test's own.
        let deadline = Instant::now() + Duration::from_secs(5);
        while processes_under(dir.path()).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(processes_under(dir.path()), vec![child.id()]);
        let other = tempfile::Builder::new()
            .prefix("berth-it-")
            .tempdir()
            .unwrap();
        assert!(processes_under(other.path()).is_empty());
        assert_eq!(kill_processes_under(dir.path()), vec![child.id()]);
        assert!(!child.wait().unwrap().success());
    }

    #[test]
    fn mentions_respects_path_boundaries() {
        let dir = Path::new("/tmp/berth-it-abc");
        assert!(mentions(OsStr::new("/tmp/berth-it-abc"), dir));
        assert!(mentions(OsStr::new("/tmp/berth-it-abc/state"), dir));
        assert!(mentions(OsStr::new("--root=/tmp/berth-it-abc/root"), dir));
        assert!(mentions(OsStr::new("unix:///tmp/berth-it-abc/sock"), dir));
        assert!(!mentions(OsStr::new("/tmp/berth-it-abcd/state"), dir));
        assert!(!mentions(OsStr::new("/tmp"), dir));
    }

    #[test]
    fn unescapes_mountinfo_fields() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
    }

    #[test]
    fn unmounts_everything_under_a_directory() {
        let dir = tempfile::Builder::new()
            .prefix("berth-it-")
            .tempdir()
            .unwrap();
        let a = dir.path().join("a");
        let b = a.join("b");
        std::fs::create_dir_all(&a).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &a,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        std::fs::create_dir_all(&b).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &b,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        assert_eq!(mounts_under(dir.path()), vec![b.clone(), a.clone()]);
        assert!(unmount_under(dir.path()).is_empty());
        assert!(mounts_under(dir.path()).is_empty());
    }
}

/// Starts `cmd` in the background with its output collected; it is killed (by PID) when
/// the handle drops.
pub fn spawn(cmd: &mut Command) -> Result<Background> {
    let line = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(format!("spawn {line}")))?;
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let readers = vec![
        collect(child.stdout.take().expect("piped"), stdout.clone()),
        collect(child.stderr.take().expect("piped"), stderr.clone()),
    ];
    Ok(Background {
        line,
        child,
        stdout,
        stderr,
        readers,
    })
}

fn collect<R: Read + Send + 'static>(
    mut pipe: R,
    into: Arc<Mutex<Vec<u8>>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// A command running in the background; killed (by PID) when dropped.
#[derive(Debug)]
pub struct Background {
    line: String,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl Background {
    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has printed on stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// What it has printed on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Waits until its stdout contains `needle` and returns the stdout so far; fails after
    /// `timeout` or when it exits without printing it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.stdout();
            if out.contains(needle) {
                return Ok(out);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the readers catch the last bytes before deciding.
                thread::sleep(Duration::from_millis(50));
                let out = self.stdout();
                if out.contains(needle) {
                    return Ok(out);
                }
                return Err(Error::Exited {
                    what: format!("`{}` (waiting for {needle:?})", self.line),
                    status,
                    log: format!("stdout:\n{out}\nstderr:\n{}", self.stderr()),
                });
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{needle:?} from `{}`", self.line),
                    after: timeout,
                    log: format!("stdout:\n{out}\nstderr:\n{}", self.stderr()),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for it to exit by itself and returns its output.
    pub fn wait(mut self, timeout: Duration) -> Result<Output> {
        match wait_timeout(&mut self.child, timeout)
            .map_err(io(format!("wait for {}", self.line)))?
        {
            Some(status) => Ok(self.finish(status)),
            None => Err(Error::Timeout {
                what: format!("`{}` to exit", self.line),
                after: timeout,
                log: format!("stdout:\n{}\nstderr:\n{}", self.stdout(), self.stderr()),
            }),
        }
    }

    /// Stops it (SIGTERM, then SIGKILL after 5 s) and returns its output.
    pub fn stop(mut self) -> Result<Output> {
        let status = terminate(&mut self.child, Duration::from_secs(5))
            .map_err(io(format!("stop {}", self.line)))?;
        Ok(self.finish(status))
    }

    fn finish(&mut self, status: std::process::ExitStatus) -> Output {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Output {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
