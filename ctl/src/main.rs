//! berthctl: berth's docker-style command line. A client only: everything goes
//! through berthd's gRPC API.

mod commands;
mod credentials;
mod global;
mod output;
mod template;

use clap::Parser;

use crate::commands::Command;
use crate::global::GlobalOptions;

#[derive(Parser)]
#[command(
    name = "berthctl",
    version,
    about = "Run and manage containers with berth"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    #[command(subcommand)]
    command: Command,
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthctl: start the async runtime: {e}");
            std::process::exit(125);
        }
    };
    let code = match runtime.block_on(commands::run(cli.global, cli.command)) {
        Ok(code) => code,
        // docker's conventions: 1 when the daemon refused, 125 when the tool failed.
        Err(e) => match e.downcast_ref::<tonic::Status>() {
            Some(s) => {
                eprintln!("{}", output::daemon_error(s));
                1
            }
            None => {
                eprintln!("berthctl: {}", output::describe(&e));
                125
            }
        },
    };
    std::process::exit(code);
}
