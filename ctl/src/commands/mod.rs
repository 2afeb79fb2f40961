//! One module per noun; docker's top-level verbs map onto them.

mod events;
mod info;
mod namespace;
mod version;

use clap::Subcommand;

use crate::global::GlobalOptions;

#[derive(Subcommand)]
pub enum Command {
    /// Show client and server versions.
    Version,
    /// Show daemon and host information.
    Info,
    /// Manage namespaces.
    #[command(subcommand, visible_alias = "ns")]
    Namespace(namespace::NamespaceCommand),
    /// Stream events from berthd until interrupted.
    Events(events::EventsArgs),
}

/// Runs a command; returns the process exit code.
pub async fn run(g: GlobalOptions, cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Version => version::run(&g).await.map(|()| 0),
        Command::Info => info::run(&g).await.map(|()| 0),
        Command::Namespace(c) => namespace::run(&g, c).await,
        Command::Events(a) => events::run(&g, a).await.map(|()| 0),
    }
}
