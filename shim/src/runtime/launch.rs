//! Parent side of process creation: clone a child that builds the container process
//! up to the point of exec and reports over a [`Channel`]; Start tells it to exec.
//!
//! Child -> shim: `ready` (with the pty master when there is a terminal) or
//! `error:<message>`. Shim -> child: `start`. After `start`, end of file on the channel
//! (its end is close-on-exec) means the exec succeeded; `error:<message>` means it failed.

use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::runtime::process::{self, Prepared};
use crate::sys::process::{Forked, clone_joined, exit_now, reap};
use crate::sys::socket::Channel;
use crate::sys::{CloneFlags, Syscalls};

const READY: &[u8] = b"ready";
const START: &[u8] = b"start";
const GO: &[u8] = b"go";
const ERROR: &[u8] = b"error:";

/// How long setup in the child may take before Create gives up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long exec may take after Start.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// What the child has when it is ready.
pub struct ChildReady {
    /// The exec to perform.
    pub prepared: Prepared,
    /// The pty master, for a terminal.
    pub pty_master: Option<OwnedFd>,
}

/// A child ready to exec, waiting for Start.
pub struct Created {
    /// Its pid (in the shim's pid namespace).
    pub pid: i32,
    /// The pty master, for a terminal.
    pub pty_master: Option<OwnedFd>,
    chan: Channel,
}

/// How to clone a container child.
pub struct CloneSpec<'a> {
    /// New namespaces.
    pub flags: CloneFlags,
    /// Namespaces the shim enters around the clone (pid: for its children).
    pub join: Vec<(&'a OwnedFd, CloneFlags)>,
    /// Descriptors the child keeps besides 0, 1, 2 and its channel.
    pub keep: &'a [RawFd],
    /// Runs in the shim right after the clone (user-namespace maps, cgroup membership
    /// of a child that cannot join by itself); the child waits for it.
    pub after_clone: Option<&'a dyn Fn(i32) -> Result<()>>,
}

/// Clones a child as `spec` says that runs `setup`, and waits until it is ready. The
/// child first makes itself non-dumpable (no process of the container may open its
/// /proc files while it runs shim code) and closes every descriptor above 2 but
/// `spec.keep` and its end of the channel.
pub fn spawn(
    sys: &dyn Syscalls,
    spec: CloneSpec<'_>,
    setup: impl FnOnce(&dyn Syscalls) -> Result<ChildReady>,
) -> Result<Created> {
    let (ours, theirs) = Channel::pair().map_err(|e| Error::sys("socketpair", "-", e))?;
    let forked = clone_joined(spec.flags, &spec.join).map_err(|e| Error::sys("clone", "-", e))?;
    let wait = spec.after_clone.is_some();
    let pid = match forked {
        Forked::Child => {
            drop(ours);
            child_main(sys, &theirs, spec.keep, wait, setup)
        }
        Forked::Parent(pid) => pid,
    };
    drop(theirs);
    if let Some(f) = spec.after_clone {
        let res = f(pid).and_then(|()| {
            ours.send(GO, None)
                .map_err(|e| Error::sys("signal container process", "-", e))
        });
        if let Err(e) = res {
            let _ = crate::sys::process::kill(pid, libc::SIGKILL);
            let _ = reap(pid);
            return Err(e);
        }
    }
    let msg = match ours.recv(Some(SETUP_TIMEOUT)) {
        Ok(m) => m,
        Err(e) => {
            let _ = crate::sys::process::kill(pid, libc::SIGKILL);
            let _ = reap(pid);
            return Err(Error::sys("wait for container process", "-", e));
        }
    };
    if msg.data == READY {
        return Ok(Created {
            pid,
            pty_master: msg.fd,
            chan: ours,
        });
    }
    let status = reap(pid).map(|r| r.status).unwrap_or(0);
    Err(Error::Child(match msg.data.strip_prefix(ERROR) {
        Some(text) => String::from_utf8_lossy(text).into_owned(),
        None => format!("container process exited during setup (status {status})"),
    }))
}

fn child_main(
    sys: &dyn Syscalls,
    chan: &Channel,
    keep: &[RawFd],
    wait: bool,
    setup: impl FnOnce(&dyn Syscalls) -> Result<ChildReady>,
) -> ! {
    if wait {
        match chan.recv(None) {
            Ok(m) if m.data == GO => {}
            _ => exit_now(1),
        }
    }
    let mut kept = keep.to_vec();
    kept.push(chan.raw());
    let early = sys
        .set_dumpable(false)
        .map_err(|e| Error::sys("make the child non-dumpable", Path::new("-"), e))
        .and_then(|()| {
            sys.close_fds_except(3, &kept)
                .map_err(|e| Error::sys("close the shim's descriptors", Path::new("-"), e))
        });
    let ready = match early.and_then(|()| setup(sys)) {
        Ok(r) => r,
        Err(e) => {
            let _ = chan.send(&[ERROR, e.to_string().as_bytes()].concat(), None);
            exit_now(1);
        }
    };
    let fd = ready.pty_master.as_ref().map(crate::sys::linux::raw);
    if chan.send(READY, fd).is_err() {
        exit_now(1);
    }
    drop(ready.pty_master);
    match chan.recv(None) {
        Ok(m) if m.data == START => {}
        _ => exit_now(1),
    }
    let err = process::exec(sys, &ready.prepared, &[chan.raw()]);
    let _ = chan.send(&[ERROR, err.to_string().as_bytes()].concat(), None);
    exit_now(127)
}

impl Created {
    /// Lets the child exec and waits until it did. On failure the child exits with 127.
    pub fn start(self) -> Result<i32> {
        self.chan
            .send(START, None)
            .map_err(|e| Error::sys("start container process", Path::new("-"), e))?;
        let msg = self
            .chan
            .recv(Some(EXEC_TIMEOUT))
            .map_err(|e| Error::sys("wait for exec", Path::new("-"), e))?;
        match msg.data.strip_prefix(ERROR) {
            Some(text) => Err(Error::Child(String::from_utf8_lossy(text).into_owned())),
            None => Ok(self.pid),
        }
    }
}
