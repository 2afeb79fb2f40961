//! The `berth-shim` binary: command line over the [`berth_shim`] library.

use std::path::PathBuf;

use berth_shim::{ShimArgs, delete, observability, run, start};
use clap::{Parser, Subcommand};

/// berth-shim: one small process per container.
#[derive(Parser)]
#[command(name = "berth-shim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
