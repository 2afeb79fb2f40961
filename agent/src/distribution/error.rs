//! The distribution module's error type and its mapping onto berthd's error kinds.

/// What went wrong talking to a registry or reading what it sent. Messages name the
/// reference, registry, URL or digest involved and say what to do when that is known.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid reference format {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },
    #[error("invalid platform {platform:?}: {reason}")]
    InvalidPlatform { platform: String, reason: String },
    #[error("unsupported media type {media_type:?} {context}")]
    UnsupportedMediaType { media_type: String, context: String },
    #[error(
        "manifest {reference} is larger than the {limit} byte limit ({}{size} bytes)",
        if *at_least { "at least " } else { "" }
    )]
    ManifestTooLarge {
        reference: String,
        size: u64,
        /// True when reading stopped at `size` bytes without knowing the whole size.
        at_least: bool,
        limit: u64,
    },
    #[error("invalid manifest {reference}: {reason}")]
    InvalidManifest { reference: String, reason: String },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what}: not found in {registry}{detail}")]
    NotFound {
        what: String,
        registry: String,
        detail: String,
    },
    #[error(
        "{action} access to {registry} denied: authentication required; \
         run `berthctl login {login_host}` and try again{detail}"
    )]
    LoginRequired {
        action: String,
        registry: String,
        login_host: String,
        detail: String,
    },
    #[error("{action} access to {registry} denied: the credentials were refused{detail}")]
    Unauthorized {
        action: String,
        registry: String,
        detail: String,
    },
    #[error("{action} access to {registry} denied{detail}")]
    Denied {
        action: String,
        registry: String,
        detail: String,
    },
    #[error("registry {registry} is unreachable at {url}: {reason}")]
    Unreachable {
        registry: String,
        url: String,
        reason: String,
    },
    #[error("{method} {url}: registry answered {status}{detail}")]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{url}: {reason}")]
    Transfer { url: String, reason: String },
    #[error("token server {realm}: {reason}")]
    Token { realm: String, reason: String },
    #[error("{0}")]
    Protocol(String),
    #[error("no manifest for platform {platform} in {reference} (it has: {available})")]
    NoMatchingPlatform {
        platform: String,
        reference: String,
        available: String,
    },
    #[error("registry configuration for {host}: {reason}")]
    Config { host: String, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// True for failures worth another attempt: the network, a 5xx or 429 answer.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Transfer { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

impl From<Error> for crate::error::Error {
    fn from(e: Error) -> Self {
        use crate::error::Error as E;
        let msg = e.to_string();
        match e {
            Error::InvalidReference { .. }
            | Error::InvalidDigest { .. }
            | Error::InvalidPlatform { .. } => E::InvalidArgument(msg),
            Error::NotFound { .. } | Error::NoMatchingPlatform { .. } => E::NotFound(msg),
            Error::UnsupportedMediaType { .. }
            | Error::ManifestTooLarge { .. }
            | Error::InvalidManifest { .. }
            | Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::LoginRequired { .. }
            | Error::Unauthorized { .. }
            | Error::Denied { .. }
            | Error::Config { .. } => E::FailedPrecondition(msg),
            Error::Unreachable { .. }
            | Error::Transfer { .. }
            | Error::Token { .. }
            | Error::Status { .. }
            | Error::Protocol(_) => E::Unavailable(msg),
            Error::Io { context, source } => E::Io { context, source },
        }
    }
}

/// Result with the distribution error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
