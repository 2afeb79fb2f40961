//! The one error type of the test kit: every failure names the object it concerns.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// What can go wrong while setting up or driving a test environment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path or program.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A program or file the tests depend on is not installed or not built.
    #[error("{what} not found at {}: {hint}", path.display())]
    Missing {
        /// What is missing (a binary, a package).
        what: String,
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it.
        hint: String,
    },
    /// A process did not become ready, or did not finish, in time.
    #[error("timed out after {after:?} waiting for {what}{}", log_suffix(log))]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long was waited.
        after: Duration,
        /// The process's log, if any.
        log: String,
    },
    /// A process exited while it was expected to run.
    #[error("{what} exited early with {status}{}", log_suffix(log))]
    Exited {
        /// The process.
        what: String,
        /// How it exited.
        status: ExitStatus,
        /// Its log.
        log: String,
    },
    /// A registry call failed or answered something unexpected.
    #[error("registry {url}: {message}")]
    Registry {
        /// The URL called.
        url: String,
        /// What went wrong, with the status and body when there was an answer.
        message: String,
    },
    /// A fixture could not be built or written.
    #[error("fixture {name}: {message}")]
    Fixture {
        /// The fixture (or file) concerned.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// A JSON document could not be encoded or decoded.
    #[error("json of {what}: {source}")]
    Json {
        /// The document.
        what: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// The result type of the test kit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn log_suffix(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("\n--- log ---\n{log}\n--- end of log ---")
    }
}

/// Builds a closure that wraps an `io::Error` with `context`, for `map_err`.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
