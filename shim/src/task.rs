//! The processes of the task as the shim tracks them: life-cycle state, exit, stdio,
//! and the Wait calls parked until the exit.

use std::time::SystemTime;

use berth_api::berth::shim::v1::Status;

use crate::io::{ProcessIo, StdioConfig};
use crate::runtime::launch::Created;

/// A Wait call to answer at exit: (connection, request id).
pub type Waiter = (u32, u32);

/// An exit: status (128 + signal for a killed process) and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Exit status.
    pub status: u32,
    /// When it was reaped.
    pub at: SystemTime,
}

/// One process: the init process (exec id empty) or an exec'd one.
pub struct Proc {
    /// Exec id; empty for init.
    pub exec_id: String,
    /// Host pid.
    pub pid: i32,
    /// Stdio paths, for State.
    pub stdio: StdioConfig,
    /// Waiting for Start (holds the channel to the child).
    pub created: Option<Created>,
    /// Stdio copying.
    pub io: ProcessIo,
    /// Set when reaped.
    pub exit: Option<Exit>,
    /// Set once the exit was reported (output copied, waiters answered, event sent).
    pub reported: bool,
    /// Parked Wait calls.
    pub waiters: Vec<Waiter>,
}

impl Proc {
    /// A created process.
    pub fn new(exec_id: &str, created: Created, io: ProcessIo, stdio: StdioConfig) -> Proc {
        Proc {
            exec_id: exec_id.to_string(),
            pid: created.pid,
            stdio,
            created: Some(created),
            io,
            exit: None,
            reported: false,
            waiters: Vec::new(),
        }
    }

    /// Its status; `paused` is the container's freezer state.
    pub fn status(&self, paused: bool) -> Status {
        if self.exit.is_some() {
            Status::Stopped
        } else if self.created.is_some() {
            Status::Created
        } else if paused {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// True while it runs (started, not reaped).
    pub fn running(&self) -> bool {
        self.exit.is_none() && self.created.is_none()
    }
}
