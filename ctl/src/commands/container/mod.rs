//! `berthctl container ...` and docker's top-level container verbs (`run`, `create`,
//! `start`, `ps`, `logs`, `stop`, `kill`, `restart`, `pause`, `unpause`, `wait`,
//! `rename`, `attach`, `exec`, `rm`): one file per verb or family, helpers here.

pub mod attach;
pub mod exec;
pub mod flags;
pub mod inspect;
pub mod lifecycle;
pub mod list;
pub mod logs;
pub mod remove;
pub mod run;
pub mod session;
pub mod start;
pub mod tty;

use berth_api::berth::v1::containers_client::ContainersClient;
use berth_api::client::NsChannel;
use clap::Subcommand;

use crate::commands::tools;
use crate::global::GlobalOptions;

/// The client of berth.v1.Containers.
pub type Client = ContainersClient<NsChannel>;

pub async fn client(g: &GlobalOptions) -> anyhow::Result<Client> {
    Ok(ContainersClient::new(g.ns_channel().await?)
        .max_decoding_message_size(berth_api::client::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(berth_api::client::MAX_MESSAGE_SIZE))
}

#[derive(Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(run::CreateArgs),
    /// Start one or more stopped containers.
    Start(start::StartArgs),
    /// List containers.
    #[command(visible_aliases = ["ls", "list"])]
    Ps(list::PsArgs),
    /// Fetch the logs of a container.
    Logs(logs::LogsArgs),
    /// Stop one or more running containers.
    Stop(lifecycle::StopArgs),
    /// Kill one or more running containers.
    Kill(lifecycle::KillArgs),
    /// Restart one or more containers.
    Restart(lifecycle::StopArgs),
    /// Pause all processes within one or more containers.
    Pause(lifecycle::NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(lifecycle::NamesArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(lifecycle::NamesArgs),
    /// Rename a container.
    Rename(lifecycle::RenameArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(attach::AttachArgs),
    /// Execute a command in a running container.
    Exec(exec::ExecArgs),
    /// Display detailed information on one or more containers.
    Inspect(inspect::InspectArgs),
    /// Remove one or more containers.
    #[command(visible_alias = "remove")]
    Rm(remove::RmArgs),
    /// Remove all stopped containers.
    Prune(remove::PruneArgs),
    /// Display the running processes of a container.
    Top(tools::inspect::TopArgs),
    /// Display a live stream of container resource usage.
    Stats(tools::stats::StatsArgs),
    /// List port mappings of a container.
    Port(tools::inspect::PortArgs),
    /// Copy files between a container and the local file system.
    Cp(tools::cp::CpArgs),
    /// Inspect changes to files on a container's file system.
    Diff(tools::inspect::DiffArgs),
    /// Create a new image from a container's changes.
    Commit(tools::commit::CommitArgs),
    /// Export a container's file system as a tar archive.
    Export(tools::archive::ExportArgs),
}

/// Runs a container command; returns the exit code.
pub async fn run(g: &GlobalOptions, cmd: ContainerCommand) -> anyhow::Result<i32> {
    use ContainerCommand as C;
    match cmd {
        C::Run(a) => run::run(g, a).await,
        C::Create(a) => run::create(g, a).await,
        C::Start(a) => start::run(g, a).await,
        C::Ps(a) => list::run(g, a).await,
        C::Logs(a) => logs::run(g, a).await,
        C::Stop(a) => lifecycle::stop(g, a, false).await,
        C::Restart(a) => lifecycle::stop(g, a, true).await,
        C::Kill(a) => lifecycle::kill(g, a).await,
        C::Pause(a) => lifecycle::pause(g, a, true).await,
        C::Unpause(a) => lifecycle::pause(g, a, false).await,
        C::Wait(a) => lifecycle::wait(g, a).await,
        C::Rename(a) => lifecycle::rename(g, a).await,
        C::Attach(a) => attach::run(g, a).await,
        C::Exec(a) => exec::run(g, a).await,
        C::Inspect(a) => inspect::run(g, a, false).await,
        C::Rm(a) => remove::run(g, a).await,
        C::Prune(a) => remove::prune(g, a).await,
        C::Top(a) => tools::inspect::top(g, a).await,
        C::Stats(a) => tools::stats::run(g, a).await,
        C::Port(a) => tools::inspect::port(g, a).await,
        C::Cp(a) => tools::cp::run(g, a).await,
        C::Diff(a) => tools::inspect::diff(g, a).await,
        C::Commit(a) => tools::commit::run(g, a).await,
        C::Export(a) => tools::archive::export(g, a).await,
    }
}

/// docker's exit code when a container could not be started: 127 for a command that
/// was not found, 126 for one that cannot be executed, else 125.
pub fn start_failure_code(message: &str) -> i32 {
    let m = message.to_ascii_lowercase();
    if m.contains("not found in $path") || m.contains("no such file or directory") {
        127
    } else if m.contains("permission denied")
        || m.contains("is a directory")
        || m.contains("exec format error")
        || m.contains("not a directory")
    {
        126
    } else {
        125
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        global: GlobalOptions,
        #[command(subcommand)]
        command: ContainerCommand,
    }

    #[test]
    fn flags_do_not_clash_with_the_global_ones() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_tools_are_verbs_of_the_container_noun_too() {
        for verb in ["top", "stats", "port", "cp", "diff", "commit", "export"] {
            assert!(
                Cli::command().find_subcommand(verb).is_some(),
                "container {verb}"
            );
        }
        let cli = Cli::try_parse_from(["c", "cp", "web:/etc/hosts", "-"]).unwrap();
        assert!(matches!(cli.command, ContainerCommand::Cp(_)));
    }
}
