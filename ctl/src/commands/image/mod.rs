//! `berthctl image ...` and docker's top-level image verbs (`pull`, `push`, `images`,
//! `tag`, `rmi`, `history`, `save`, `load`): one file per verb, shared helpers here.

pub mod archive;
pub mod history;
pub mod inspect;
pub mod list;
pub mod progress;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rm;

use berth_api::berth::v1::images_client::ImagesClient;
use berth_api::berth::v1::{RegistryAuth, TagImageRequest};
use berth_api::client::NsChannel;
use clap::Subcommand;

use crate::credentials::{CredentialStore, StoredCredentials};
use crate::global::GlobalOptions;

/// The client of berth.v1.Images.
pub type Client = ImagesClient<NsChannel>;

/// An images client with room for large archive chunks.
pub async fn client(g: &GlobalOptions) -> anyhow::Result<Client> {
    Ok(ImagesClient::new(g.ns_channel().await?)
        .max_decoding_message_size(berth_api::client::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(berth_api::client::MAX_MESSAGE_SIZE))
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(list::ListArgs),
    /// Download an image from a registry.
    Pull(pull::PullArgs),
    /// Upload an image to a registry.
    Push(push::PushArgs),
    /// Give an image another name.
    Tag(TagArgs),
    /// Remove images.
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
    /// Show details of images.
    Inspect(inspect::InspectArgs),
    /// Show the history of an image.
    History(history::HistoryArgs),
    /// Write images to a tar archive.
    Save(archive::SaveArgs),
    /// Read images from a tar archive.
    Load(archive::LoadArgs),
    /// Remove unused images.
    Prune(prune::PruneArgs),
    /// Import a tar archive's contents as a new file system image.
    Import(crate::commands::tools::archive::ImportArgs),
}

/// Runs an image command; returns the exit code.
pub async fn run(g: &GlobalOptions, cmd: ImageCommand) -> anyhow::Result<i32> {
    match cmd {
        ImageCommand::Ls(a) => list::run(g, a).await,
        ImageCommand::Pull(a) => pull::run(g, a).await,
        ImageCommand::Push(a) => push::run(g, a).await,
        ImageCommand::Tag(a) => tag(g, a).await,
        ImageCommand::Rm(a) => rm::run(g, a).await,
        ImageCommand::Inspect(a) => inspect::run(g, a).await,
        ImageCommand::History(a) => history::run(g, a).await,
        ImageCommand::Save(a) => archive::save(g, a).await,
        ImageCommand::Import(a) => crate::commands::tools::archive::import(g, a).await,
        ImageCommand::Load(a) => archive::load(g, a).await,
        ImageCommand::Prune(a) => prune::run(g, a).await,
    }
}

#[derive(clap::Args)]
pub struct TagArgs {
    /// The image to name (a name or ID).
    source: String,
    /// The new name: [HOST[:PORT]/]NAME[:TAG].
    target: String,
}

async fn tag(g: &GlobalOptions, a: TagArgs) -> anyhow::Result<i32> {
    client(g)
        .await?
        .tag(TagImageRequest {
            source: a.source,
            target: a.target,
        })
        .await?;
    Ok(0)
}

/// The registry host a reference names (docker's rule: a first component with a '.', a
/// ':' or `localhost` is a host; otherwise docker.io).
pub fn registry_of(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.split_once('/') {
        Some((first, _))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            first.to_ascii_lowercase()
        }
        _ => "docker.io".into(),
    }
}

/// The stored credentials for `registry` as sent with a request (none: anonymous).
pub fn auth_for(registry: &str) -> anyhow::Result<Option<RegistryAuth>> {
    let store = match CredentialStore::from_env() {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    Ok(store.get(registry)?.map(|c| match c {
        StoredCredentials::Basic { username, password } => RegistryAuth {
            username,
            password,
            identity_token: String::new(),
        },
        StoredCredentials::IdentityToken { username, token } => RegistryAuth {
            username,
            password: String::new(),
            identity_token: token,
        },
    }))
}

/// The short ID (12 hex digits) of `sha256:<hex>`, or the full one with `no_trunc`.
pub fn show_id(id: &str, no_trunc: bool) -> String {
    if no_trunc {
        return id.to_string();
    }
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .take(12)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_of_references() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox:1"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/a/b:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/x"), "localhost");
        assert_eq!(
            registry_of("Reg.Example.com/x@sha256:ab"),
            "reg.example.com"
        );
        assert_eq!(show_id("sha256:0123456789abcdef", false), "0123456789ab");
        assert_eq!(show_id("sha256:01", true), "sha256:01");
    }
}
