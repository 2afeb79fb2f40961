//! `commit`: a new image from a container's changes.

use berth_api::berth::v1::CommitRequest;

use super::client;
use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct CommitArgs {
    /// Author (e.g. "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short = 'a', long)]
    author: Option<String>,
    /// Apply Dockerfile instructions to the created image (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// LABEL, USER, VOLUME, WORKDIR).
    #[arg(short = 'c', long = "change")]
    changes: Vec<String>,
    /// Commit message.
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Pause the container during commit.
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG].
    reference: Option<String>,
}

pub async fn run(g: &GlobalOptions, a: CommitArgs) -> anyhow::Result<i32> {
    let r = client(g)
        .await?
        .commit(CommitRequest {
            id: a.container,
            reference: a.reference.unwrap_or_default(),
            author: a.author.unwrap_or_default(),
            message: a.message.unwrap_or_default(),
            changes: a.changes,
            pause: Some(a.pause),
        })
        .await?
        .into_inner();
    println!("{}", r.image_id);
    Ok(0)
}
