//! The last steps before exec, shared by init and exec'd processes: stdio, terminal,
//! rlimits, OOM score, user and groups, working directory, executable lookup, exec.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxSeccomp, PosixRlimitType, Process};

use crate::error::{Error, Result};
use crate::runtime::hardening::{self, Final};
use crate::sys::{Errno, Syscalls};

/// Default PATH when the process has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process's standard descriptors in the child.
#[derive(Clone, Copy, Debug)]
pub enum Stdio {
    /// Three descriptors to put at 0, 1, 2.
    Fds([RawFd; 3]),
    /// A terminal slave: controlling terminal and 0, 1, 2.
    Terminal(RawFd),
}

/// What exec needs, all resolved.
#[derive(Debug, PartialEq, Eq)]
pub struct Prepared {
    /// Resolved executable path.
    pub exe: CString,
    /// Arguments (argv[0] as given).
    pub argv: Vec<CString>,
    /// Environment, `KEY=value`.
    pub env: Vec<CString>,
    /// Seccomp filter and the last capability drop, applied right before execve.
    pub last: Final,
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Spec(format!("{what} contains a NUL byte")))
}

/// New session, controlling terminal, and stdio on 0, 1, 2.
pub fn setup_stdio(sys: &dyn Syscalls, stdio: Stdio) -> Result<()> {
    sys.setsid()
        .map_err(|e| Error::sys("setsid", Path::new("-"), e))?;
    let fds = match stdio {
        Stdio::Terminal(slave) => {
            sys.set_controlling_terminal(slave)
                .map_err(|e| Error::sys("set controlling terminal", Path::new("pty"), e))?;
            [slave; 3]
        }
        Stdio::Fds(fds) => fds,
    };
    for (target, fd) in fds.into_iter().enumerate() {
        let target = RawFd::try_from(target).unwrap_or(0);
        sys.dup_onto(fd, target)
            .map_err(|e| Error::sys("dup2", Path::new("stdio"), e))?;
    }
    Ok(())
}

/// The libc resource number of an OCI rlimit type.
pub fn rlimit_resource(t: PosixRlimitType) -> i32 {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as i32
}

/// Applies the process's rlimits. A hard limit above the current one needs
/// CAP_SYS_RESOURCE: without it the limit is clamped to the current hard limit (logged).
pub fn apply_rlimits(sys: &dyn Syscalls, process: &Process) -> Result<()> {
    for r in process.rlimits().as_deref().unwrap_or(&[]) {
        let res = rlimit_resource(r.typ());
        let (soft, hard) = (r.soft(), r.hard());
        match sys.setrlimit(res, soft, hard) {
            Ok(()) => {}
            Err(Errno::EPERM) => {
                let (_, cur_hard) = sys
                    .getrlimit(res)
                    .map_err(|e| Error::sys("getrlimit", Path::new("-"), e))?;
                let hard2 = hard.min(cur_hard);
                let soft2 = soft.min(hard2);
                tracing::info!(
                    rlimit = ?r.typ(),
                    soft, hard, clamped_soft = soft2, clamped_hard = hard2,
                    "rlimit above the allowed hard limit; clamped"
                );
                sys.setrlimit(res, soft2, hard2)
                    .map_err(|e| Error::sys("setrlimit", Path::new("-"), e))?;
            }
            Err(e) => return Err(Error::sys("setrlimit", Path::new("-"), e)),
        }
    }
    Ok(())
}

/// Writes the OOM score adjustment. Lowering it needs CAP_SYS_RESOURCE: without it the
/// current value is kept (logged).
pub fn apply_oom_score_adj(sys: &dyn Syscalls, value: Option<i32>) -> Result<()> {
    let Some(v) = value else { return Ok(()) };
    let path = Path::new("/proc/self/oom_score_adj");
    match sys.write_file(path, v.to_string().as_bytes()) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM | Errno::EACCES) => {
            let current = sys
                .read_file(path)
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            tracing::info!(requested = v, current = %current, "oom_score_adj not permitted; kept the current value");
            Ok(())
        }
        Err(e) => Err(Error::sys("write", path, e)),
    }
}

/// Groups, gid, then uid (last: it drops the privileges the others need).
pub fn apply_user(sys: &dyn Syscalls, process: &Process) -> Result<()> {
    let user = process.user();
    if let Some(mask) = user.umask() {
        sys.umask(mask);
    }
    let gids = user.additional_gids().clone().unwrap_or_default();
    sys.setgroups(&gids)
        .map_err(|e| Error::sys("setgroups", Path::new("-"), e))?;
    sys.setgid(user.gid())
        .map_err(|e| Error::sys("setgid", Path::new("-"), e))?;
    sys.setuid(user.uid())
        .map_err(|e| Error::sys("setuid", Path::new("-"), e))?;
    Ok(())
}

/// The value of `key` in `KEY=value` environment entries.
fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
}

/// Finds `name` like execvp: as given when it has a slash, else in PATH.
pub fn resolve_exe(sys: &dyn Syscalls, name: &str, env: &[String]) -> Result<PathBuf> {
    if name.contains('/') {
        return match sys.is_dir(Path::new(name)) {
            Ok(Some(false)) => Ok(PathBuf::from(name)),
            Ok(Some(true)) => Err(Error::Child(format!("exec {name:?}: is a directory"))),
            _ => Err(Error::Child(format!(
                "exec {name:?}: no such file or directory"
            ))),
        };
    }
    let path = env_value(env, "PATH").unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if let Ok(Some(false)) = sys.is_dir(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::Child(format!(
        "exec {name:?}: executable file not found in $PATH"
    )))
}

/// Changes to the working directory, which must be inside the root: a path through a
/// descriptor that leads out of it (`/proc/self/fd/N`) is refused.
pub fn enter_cwd(sys: &dyn Syscalls, cwd: &Path) -> Result<()> {
    if !cwd.is_absolute() {
        return Err(Error::Spec(format!(
            "process.cwd {} is not absolute",
            cwd.display()
        )));
    }
    sys.chdir(cwd).map_err(|e| Error::sys("chdir", cwd, e))?;
    match sys.getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::Child(format!(
            "process.cwd {} is outside the container's root",
            cwd.display()
        ))),
    }
}

/// Everything after stdio for one process, ending with what exec needs: rlimits, OOM
/// score, capability bounding set, user, capabilities, no_new_privileges, cwd,
/// executable, and the seccomp filter compiled for the last step.
pub fn prepare(
    sys: &dyn Syscalls,
    process: &Process,
    seccomp: Option<&LinuxSeccomp>,
) -> Result<Prepared> {
    let args = process.args().clone().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err(Error::Spec("process.args is empty".into()));
    };
    let env = process.env().clone().unwrap_or_default();
    apply_rlimits(sys, process)?;
    apply_oom_score_adj(sys, process.oom_score_adj())?;
    let caps = hardening::cap_plan(sys, process)?;
    if let Some(c) = &caps {
        c.drop_bounding(sys)?;
        sys.set_keepcaps(true)
            .map_err(|e| Error::sys("set keepcaps", Path::new("-"), e))?;
    }
    apply_user(sys, process)?;
    if caps.is_some() {
        sys.set_keepcaps(false)
            .map_err(|e| Error::sys("clear keepcaps", Path::new("-"), e))?;
    }
    let last = hardening::apply_process(sys, process, caps.as_ref(), seccomp)?;
    enter_cwd(sys, process.cwd())?;
    let exe = resolve_exe(sys, arg0, &env)?;
    if exe.starts_with("/proc") {
        return Err(Error::Child(format!(
            "exec {}: executables under /proc are refused",
            exe.display()
        )));
    }
    Ok(Prepared {
        exe: cstring(&exe.to_string_lossy(), "executable path")?,
        argv: args
            .iter()
            .map(|a| cstring(a, "an argument"))
            .collect::<Result<_>>()?,
        env: env
            .iter()
            .map(|e| cstring(e, "an environment entry"))
            .collect::<Result<_>>()?,
        last,
    })
}

/// Resets signals, closes every descriptor above stdio but `keep` (the setup channel,
/// close-on-exec), loads the seccomp filter, drops the last capabilities and executes.
/// Returns only on failure.
pub fn exec(sys: &dyn Syscalls, p: &Prepared, keep: &[RawFd]) -> Error {
    if let Err(e) = sys.reset_signals() {
        return Error::sys("reset signals", Path::new("-"), e);
    }
    if let Err(e) = sys.close_fds_except(3, keep) {
        return Error::sys("close descriptors", Path::new("-"), e);
    }
    if let Err(e) = p.last.apply(sys) {
        return e;
    }
    let errno = sys.execve(&p.exe, &p.argv, &p.env);
    Error::Child(format!(
        "exec {:?}: {}",
        p.exe.to_string_lossy(),
        errno.desc()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Recorder;

    fn process(json: &str) -> Process {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rlimit_above_hard_is_clamped() {
        let sys = Recorder::new().with_rlimit(libc::RLIMIT_NOFILE as i32, 1024, 4096);
        sys.fail("setrlimit", Errno::EPERM);
        let p = process(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"rlimits":[{"type":"RLIMIT_NOFILE","hard":65536,"soft":65536}]}"#,
        );
        // The clamped retry fails too with this recorder: the attempt is what matters.
        let _ = apply_rlimits(&sys, &p);
        let calls = sys.calls_of("setrlimit");
        assert_eq!(
            calls[0],
            format!("setrlimit {} 65536 65536", libc::RLIMIT_NOFILE)
        );
        assert_eq!(
            calls[1],
            format!("setrlimit {} 4096 4096", libc::RLIMIT_NOFILE)
        );
    }

    #[test]
    fn oom_score_adj_refused_is_kept() {
        let sys = Recorder::new().with_contents("/proc/self/oom_score_adj", b"0\n");
        sys.fail("write_file", Errno::EACCES);
        apply_oom_score_adj(&sys, Some(-999)).unwrap();
        assert_eq!(sys.calls_of("write_file").len(), 1);
    }

    #[test]
    fn user_is_switched_last() {
        let sys = Recorder::new();
        let p = process(
            r#"{"cwd":"/","user":{"uid":1000,"gid":100,"additionalGids":[10,20],"umask":18}}"#,
        );
        apply_user(&sys, &p).unwrap();
        assert_eq!(
            sys.calls(),
            [
                "umask 22",
                "setgroups [10, 20]",
                "setgid 100",
                "setuid 1000"
            ]
        );
    }

    #[test]
    fn executable_lookup() {
        let sys = Recorder::new()
            .with_file("/bin/sh")
            .with_dir("/usr/bin/sh")
            .with_file("/opt/x");
        let env = vec!["PATH=/usr/bin:/bin".to_string()];
        assert_eq!(
            resolve_exe(&sys, "sh", &env).unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            resolve_exe(&sys, "/opt/x", &env).unwrap(),
            PathBuf::from("/opt/x")
        );
        let err = resolve_exe(&sys, "nope", &env).unwrap_err().to_string();
        assert!(err.contains("not found in $PATH"), "{err}");
        // No PATH: the default one.
        assert_eq!(
            resolve_exe(&sys, "sh", &[]).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }

    #[test]
    fn prepare_then_exec() {
        let sys = Recorder::new().with_file("/bin/echo");
        let p = process(
            r#"{"cwd":"/tmp","user":{"uid":0,"gid":0},"args":["echo","hi"],"env":["PATH=/bin","A=b"]}"#,
        );
        let prepared = prepare(&sys, &p, None).unwrap();
        assert_eq!(prepared.exe.to_str().unwrap(), "/bin/echo");
        let err = exec(&sys, &prepared, &[9]);
        assert!(err.to_string().contains("/bin/echo"));
        let calls = sys.calls();
        assert!(calls.contains(&"chdir /tmp".to_string()));
        let n = calls.len();
        assert_eq!(calls[n - 3], "reset_signals");
        assert_eq!(calls[n - 2], "close_fds_except 3 [9]");
        assert!(calls[n - 1].starts_with("execve \"/bin/echo\" [\"echo\", \"hi\"]"));
    }

    #[test]
    fn terminal_stdio() {
        let sys = Recorder::new();
        setup_stdio(&sys, Stdio::Terminal(7)).unwrap();
        assert_eq!(
            sys.calls(),
            [
                "setsid",
                "set_controlling_terminal 7",
                "dup_onto 7 0",
                "dup_onto 7 1",
                "dup_onto 7 2"
            ]
        );
    }
}
