#![doc = include_str!("../README.md")]

mod delete;
mod error;
mod io;
mod observability;
mod run;
mod runtime;
mod server;
mod service;
mod start;
mod sys;
mod task;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// berth-shim: one small process per container.
#[derive(Parser)]
#[command(name = "berth-shim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by the commands.
#[derive(Args, Clone, Debug)]
pub struct ShimArgs {
    /// Container id.
    #[arg(long)]
    id: String,
    /// containerd namespace of the container.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Bundle directory (config.json, rootfs).
    #[arg(long)]
    bundle: PathBuf,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: String,
}

#[derive(Subcommand)]
enum Command {
    /// Start a detached shim serving SOCKET; prints its pid once it listens.
    Start {
        #[command(flatten)]
        args: ShimArgs,
        /// Unix socket to serve.
        #[arg(long)]
        socket: PathBuf,
    },
    /// Serve SOCKET in the foreground (debugging).
    Run {
        #[command(flatten)]
        args: ShimArgs,
        /// Unix socket to serve.
        #[arg(long)]
        socket: PathBuf,
    },
    /// Clean up after a shim that died: kill the container, unmount its rootfs, remove
    /// its cgroup.
    Delete {
        #[command(flatten)]
        args: ShimArgs,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Start { args, socket } => start::start(&args, &socket),
        Command::Run { args, socket } => {
            observability::init(&args.log_level);
            run::serve(&args, &socket, None)
        }
        Command::Delete { args } => {
            observability::init(&args.log_level);
            delete::delete(&args)
        }
    }
}
