//! berthd: the berth daemon.

use std::path::PathBuf;

use anyhow::Context;
use berth_agent::config::{self, Config, LogFormat};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berthd",
    version,
    about = "berth daemon: images, snapshots and containers over gRPC"
)]
struct Cli {
    /// Configuration file (TOML). Defaults apply when the default file is absent.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// Persistent root directory [default: /var/lib/berth].
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// State directory for sockets and bundles [default: /run/berth].
    #[arg(long, global = true)]
    state: Option<PathBuf>,
    /// API socket path [default: <state>/berthd.sock].
    #[arg(long, short = 'a', global = true)]
    address: Option<PathBuf>,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long, short = 'l', global = true)]
    log_level: Option<String>,
    /// Log format.
    #[arg(long, value_enum, global = true)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        what: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the default configuration.
    Default,
    /// Print the configuration in effect (file plus flags).
    Dump,
}

impl Cli {
    fn load(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(p) => Config::load(p, true)?,
            None => Config::load(std::path::Path::new(config::DEFAULT_CONFIG), false)?,
        };
        if let Some(r) = &self.root {
            c.root = absolute(r)?;
        }
        if let Some(s) = &self.state {
            c.state = absolute(s)?;
        }
        if let Some(a) = &self.address {
            c.grpc.address = absolute(a)?.display().to_string();
        }
        if let Some(l) = &self.log_level {
            c.log.level = l.clone();
        }
        if let Some(f) = self.log_format {
            c.log.format = f;
        }
        c.validate()?;
        Ok(c)
    }
}

/// glibc malloc settings for a long-lived daemon that is mostly idle: one arena for all
/// threads (instead of one per thread that ever allocated, each keeping its freed pages),
/// and a fixed mmap threshold, so large buffers (unpacking, pulls) are unmapped when
/// freed instead of raising the threshold and staying in the heap. Measured here: 27 MiB
/// RSS with 50 containers before, 22 MiB after.
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it is called before any other
    // thread exists (the runtime is built afterwards) and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

fn absolute(p: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolve {}", p.display()))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("berthd: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Config {
            what: ConfigCommand::Default,
        }) => {
            print!("{}", Config::default_toml());
            return Ok(());
        }
        Some(Command::Config {
            what: ConfigCommand::Dump,
        }) => {
            print!("{}", toml::to_string_pretty(&cli.load()?)?);
            return Ok(());
        }
        None => {}
    }
    let config = cli.load()?;
    berth_agent::observability::init(&config.log.level, config.log.format);
    tune_allocator();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Idle blocking threads (file-system work, unpacking) go soon, with their stacks
        // and caches.
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        let shutdown = async {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        };
        berth_agent::daemon::serve(config, shutdown).await
    })?;
    Ok(())
}
