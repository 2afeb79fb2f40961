//! The crate's error type and the coarse kinds the daemon maps to gRPC codes.

use std::io;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the categories the gRPC edge maps to status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A key, name or parent does not exist (`NotFound`).
    NotFound,
    /// A key or name is already taken (`AlreadyExists`).
    AlreadyExists,
    /// The object is in the wrong state for the call (`FailedPrecondition`).
    FailedPrecondition,
    /// The request itself is malformed, or a layer is hostile or corrupt (`InvalidArgument`).
    InvalidArgument,
    /// The operation is not supported by this implementation (`Unimplemented`).
    NotImplemented,
    /// Anything else: I/O, metadata database, mount failures (`Internal`).
    Internal,
}

/// Errors of the snapshotters, layer apply and diff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A snapshot or parent is missing.
    #[error("{0}")]
    NotFound(String),
    /// A key or name is already in use.
    #[error("{0}")]
    AlreadyExists(String),
    /// The snapshot is in the wrong state for the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The operation is not implemented by this backend.
    #[error("not implemented: {0}")]
    NotImplemented(String),
    /// A layer entry was refused because applying it would be unsafe.
    #[error("layer entry {path:?} rejected: {reason}")]
    UnsafeEntry {
        /// The entry's path as written in the archive.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// The layer is not a valid (compressed) tar stream.
    #[error("invalid layer: {0}")]
    InvalidLayer(String),
    /// The uncompressed layer is larger than the configured limit.
    #[error("layer exceeds the limit of {limit} uncompressed bytes")]
    LimitExceeded {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A mount or unmount failed.
    #[error("{context}: {source}")]
    Mount {
        /// What was being mounted where.
        context: String,
        /// The errno returned by the kernel.
        #[source]
        source: nix::errno::Errno,
    },
    /// The metadata database failed.
    #[error("snapshot metadata: {0}")]
    Metadata(#[from] redb::Error),
    /// A metadata record could not be decoded.
    #[error("snapshot metadata record {key:?} is corrupt: {source}")]
    CorruptRecord {
        /// The key of the record.
        key: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// The category of this error, for mapping to a gRPC status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            Error::InvalidArgument(_)
            | Error::UnsafeEntry { .. }
            | Error::InvalidLayer(_)
            | Error::LimitExceeded { .. } => ErrorKind::InvalidArgument,
            Error::NotImplemented(_) => ErrorKind::NotImplemented,
            Error::Io { .. }
            | Error::Mount { .. }
            | Error::Metadata(_)
            | Error::CorruptRecord { .. } => ErrorKind::Internal,
        }
    }

    /// Wraps an I/O error with a description of what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps an errno (from `nix`) as an I/O error with context.
    pub(crate) fn errno(context: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::io(context, io::Error::from(errno))
    }

    /// True when this is a `NotFound` error.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// True when this is an `AlreadyExists` error.
    pub fn is_already_exists(&self) -> bool {
        self.kind() == ErrorKind::AlreadyExists
    }
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Metadata(e.into())
            }
        }
    )*};
}

redb_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
