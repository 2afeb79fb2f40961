//! The shim's error type; [`Error::code`] gives the protocol's status code.

use std::path::PathBuf;

use berth_api::shim::frame::code;
use nix::errno::Errno;

/// Everything that can go wrong in the shim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed while working on `path` (or on the object named there).
    #[error("{op} {path}: {errno}")]
    Sys {
        /// The operation (mount, setns, ...).
        op: &'static str,
        /// What it acted on.
        path: PathBuf,
        /// The kernel's answer.
        errno: Errno,
    },
    /// A file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// config.json or a process/resources JSON could not be used.
    #[error("invalid spec: {0}")]
    Spec(String),
    /// A request carried an unusable argument.
    #[error("{0}")]
    InvalidArgument(String),
    /// cgroup work failed.
    #[error("cgroup {path}: {message}")]
    Cgroup {
        /// cgroup path.
        path: String,
        /// What failed.
        message: String,
    },
    /// The container process reported a failure before exec.
    #[error("{0}")]
    Child(String),
    /// No such process.
    #[error("{0} not found")]
    NotFound(String),
    /// The process or id exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The call does not fit the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A bounded buffer is full.
    #[error("{0}")]
    ResourceExhausted(String),
}

impl Error {
    /// A failed system call on `path`.
    pub fn sys(op: &'static str, path: impl Into<PathBuf>, errno: Errno) -> Error {
        Error::Sys {
            op,
            path: path.into(),
            errno,
        }
    }

    /// A failed file operation on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The protocol status code for this error.
    pub fn code(&self) -> u32 {
        match self {
            Error::Spec(_) | Error::InvalidArgument(_) => code::INVALID_ARGUMENT,
            Error::NotFound(_) => code::NOT_FOUND,
            Error::AlreadyExists(_) => code::ALREADY_EXISTS,
            Error::FailedPrecondition(_) => code::FAILED_PRECONDITION,
            Error::ResourceExhausted(_) => code::RESOURCE_EXHAUSTED,
            Error::Sys { .. } | Error::Io { .. } | Error::Cgroup { .. } | Error::Child(_) => {
                code::INTERNAL
            }
        }
    }
}

/// Result with the shim's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
