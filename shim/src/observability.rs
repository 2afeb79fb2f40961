//! Logging of the shim: tracing to stderr, which the daemon points at
//! `<bundle>/shim.log`.

use tracing_subscriber::filter::LevelFilter;

/// Installs the subscriber at `level` (`error`, `warn`, `info`, `debug`, `trace`).
pub fn init(level: &str) {
    let level: LevelFilter = level.parse().unwrap_or(LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}
