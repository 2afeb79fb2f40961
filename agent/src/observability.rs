//! Logging set-up for berthd: `tracing` to stderr, as text or JSON.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`.
pub fn init(level: &str, format: LogFormat) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(directives(level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// A plain level applies to berth's own code; the HTTP/2 stack below stays at info, where
/// debug would log every frame.
fn directives(level: &str) -> String {
    match level {
        "trace" | "debug" => {
            format!("{level},h2=info,hyper=info,hyper_util=info,tower=info,tonic=info")
        }
        other => other.to_string(),
    }
}
