//! One module per noun; docker's top-level verbs map onto them.

mod events;
pub mod image;
mod info;
mod namespace;
mod registry;
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
    use image::ImageCommand as I;
    match cmd {
        Command::Version => version::run(&g).await.map(|()| 0),
        Command::Info => info::run(&g).await.map(|()| 0),
        Command::Namespace(c) => namespace::run(&g, c).await,
        Command::Events(a) => events::run(&g, a).await.map(|()| 0),
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
