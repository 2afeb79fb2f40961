//! The task domain types the Tasks service and berth's own API share.

/// A process's state, numbered as containerd's `containerd.v1.types.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Unknown = 0,
    Created = 1,
    Running = 2,
    Stopped = 3,
    Paused = 4,
    Pausing = 5,
}

impl Status {
    pub fn from_wire(v: i32) -> Status {
        match v {
            1 => Status::Created,
            2 => Status::Running,
            3 => Status::Stopped,
            4 => Status::Paused,
            5 => Status::Pausing,
            _ => Status::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
            Status::Pausing => "pausing",
        }
    }
}

/// Where a process's standard streams go: FIFO paths (ctr's model), empty for none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// What one process of a task looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessState {
    pub container_id: String,
    /// Empty for the init process.
    pub exec_id: String,
    pub pid: u32,
    pub status: Status,
    pub stdio: Stdio,
    pub exit_status: u32,
    /// Nanoseconds since the Unix epoch, when exited.
    pub exited_at: Option<i64>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub pid: u32,
    /// The exit code, or 128 + signal.
    pub status: u32,
    /// Nanoseconds since the Unix epoch.
    pub at: i64,
}

/// The exit status reported for a task whose shim died.
pub const SHIM_DIED_STATUS: u32 = 255;

/// What creating a task takes.
#[derive(Debug, Clone, Default)]
pub struct CreateTask {
    pub container_id: String,
    /// Mounts making up the root filesystem; empty: the container's snapshot.
    pub rootfs: Vec<berth_snapshotter::Mount>,
    pub stdio: Stdio,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// A json-lines log of the output (berth's own containers).
    pub log_path: Option<std::path::PathBuf>,
}
