//! One module per noun; docker's top-level verbs map onto them.

pub mod container;
mod events;
pub mod image;
mod info;
mod namespace;
mod network;
mod registry;
mod system;
mod tools;
mod version;
mod volume;

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
    /// Manage containers.
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Create and run a new container from an image (container run).
    #[command(disable_help_flag = true)]
    Run(container::run::RunArgs),
    /// Create a new container (container create).
    #[command(disable_help_flag = true)]
    Create(container::run::CreateArgs),
    /// Start one or more stopped containers (container start).
    Start(container::start::StartArgs),
    /// List containers (container ls).
    Ps(container::list::PsArgs),
    /// Fetch the logs of a container (container logs).
    Logs(container::logs::LogsArgs),
    /// Stop one or more running containers (container stop).
    Stop(container::lifecycle::StopArgs),
    /// Kill one or more running containers (container kill).
    Kill(container::lifecycle::KillArgs),
    /// Restart one or more containers (container restart).
    Restart(container::lifecycle::StopArgs),
    /// Pause all processes within one or more containers (container pause).
    Pause(container::lifecycle::NamesArgs),
    /// Unpause all processes within one or more containers (container unpause).
    Unpause(container::lifecycle::NamesArgs),
    /// Block until containers stop, then print their exit codes (container wait).
    Wait(container::lifecycle::NamesArgs),
    /// Rename a container (container rename).
    Rename(container::lifecycle::RenameArgs),
    /// Attach to a running container (container attach).
    Attach(container::attach::AttachArgs),
    /// Execute a command in a running container (container exec).
    Exec(container::exec::ExecArgs),
    /// Remove one or more containers (container rm).
    Rm(container::remove::RmArgs),
    /// Display detailed information on containers or images.
    Inspect(container::inspect::InspectArgs),
    /// Display the running processes of a container (container top).
    Top(tools::inspect::TopArgs),
    /// Display a live stream of container resource usage (container stats).
    Stats(tools::stats::StatsArgs),
    /// List port mappings of a container (container port).
    Port(tools::inspect::PortArgs),
    /// Copy files between a container and the local file system (container cp).
    Cp(tools::cp::CpArgs),
    /// Inspect changes to files on a container's file system (container diff).
    Diff(tools::inspect::DiffArgs),
    /// Create a new image from a container's changes (container commit).
    Commit(tools::commit::CommitArgs),
    /// Export a container's file system as a tar archive (container export).
    Export(tools::archive::ExportArgs),
    /// Import a tar archive's contents as a new file system image (image import).
    Import(tools::archive::ImportArgs),
    /// Manage berth: disk usage, pruning, docker-style events, information.
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// List images (image ls).
    Images(image::list::ListArgs),
    /// Download an image from a registry (image pull).
    Pull(image::pull::PullArgs),
    /// Upload an image to a registry (image push).
    Push(image::push::PushArgs),
    /// Give an image another name (image tag).
    Tag(image::TagArgs),
    /// Remove images (image rm).
    Rmi(image::rm::RmArgs),
    /// Show the history of an image (image history).
    History(image::history::HistoryArgs),
    /// Write images to a tar archive (image save).
    Save(image::archive::SaveArgs),
    /// Read images from a tar archive (image load).
    Load(image::archive::LoadArgs),
    /// Search a registry for repositories.
    Search(registry::SearchArgs),
    /// Log in to a registry.
    Login(registry::LoginArgs),
    /// Log out from a registry.
    Logout(registry::LogoutArgs),
}

/// Runs a command; returns the process exit code.
pub async fn run(g: GlobalOptions, cmd: Command) -> anyhow::Result<i32> {
    use container::ContainerCommand as C;
    use image::ImageCommand as I;
    match cmd {
        Command::Container(c) => container::run(&g, c).await,
        Command::Run(a) => container::run(&g, C::Run(a)).await,
        Command::Create(a) => container::run(&g, C::Create(a)).await,
        Command::Start(a) => container::run(&g, C::Start(a)).await,
        Command::Ps(a) => container::run(&g, C::Ps(a)).await,
        Command::Logs(a) => container::run(&g, C::Logs(a)).await,
        Command::Stop(a) => container::run(&g, C::Stop(a)).await,
        Command::Kill(a) => container::run(&g, C::Kill(a)).await,
        Command::Restart(a) => container::run(&g, C::Restart(a)).await,
        Command::Pause(a) => container::run(&g, C::Pause(a)).await,
        Command::Unpause(a) => container::run(&g, C::Unpause(a)).await,
        Command::Wait(a) => container::run(&g, C::Wait(a)).await,
        Command::Rename(a) => container::run(&g, C::Rename(a)).await,
        Command::Attach(a) => container::run(&g, C::Attach(a)).await,
        Command::Exec(a) => container::run(&g, C::Exec(a)).await,
        Command::Rm(a) => container::run(&g, C::Rm(a)).await,
        Command::Inspect(a) => container::inspect::run(&g, a, true).await,
        Command::Version => version::run(&g).await.map(|()| 0),
        Command::Info => info::run(&g).await.map(|()| 0),
        Command::Namespace(c) => namespace::run(&g, c).await,
        Command::Events(a) => events::run(&g, a).await.map(|()| 0),
        Command::Top(a) => container::run(&g, C::Top(a)).await,
        Command::Stats(a) => container::run(&g, C::Stats(a)).await,
        Command::Port(a) => container::run(&g, C::Port(a)).await,
        Command::Cp(a) => container::run(&g, C::Cp(a)).await,
        Command::Diff(a) => container::run(&g, C::Diff(a)).await,
        Command::Commit(a) => container::run(&g, C::Commit(a)).await,
        Command::Export(a) => container::run(&g, C::Export(a)).await,
        Command::Import(a) => image::run(&g, I::Import(a)).await,
        Command::System(c) => system::run(&g, c).await,
        Command::Network(c) => network::run(&g, c).await,
        Command::Volume(c) => volume::run(&g, c).await,
        Command::Image(c) => image::run(&g, c).await,
        Command::Images(a) => image::run(&g, I::Ls(a)).await,
        Command::Pull(a) => image::run(&g, I::Pull(a)).await,
        Command::Push(a) => image::run(&g, I::Push(a)).await,
        Command::Tag(a) => image::run(&g, I::Tag(a)).await,
        Command::Rmi(a) => image::run(&g, I::Rm(a)).await,
        Command::History(a) => image::run(&g, I::History(a)).await,
        Command::Save(a) => image::run(&g, I::Save(a)).await,
        Command::Load(a) => image::run(&g, I::Load(a)).await,
        Command::Search(a) => registry::search(&g, a).await,
        Command::Login(a) => registry::login(&g, a).await,
        Command::Logout(a) => registry::logout(&g, a).await,
    }
}
