//! `berthctl rm` and `container prune`.

use berth_api::berth::v1::{PruneContainersRequest, RemoveContainerRequest};

use super::client;
use crate::commands::image::prune::confirm;
use crate::global::GlobalOptions;
use crate::output::{daemon_error, human_size};

#[derive(clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short = 'v', long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values (until=24h, label=KEY[=VALUE], label!=...).
    #[arg(long = "filter")]
    filters: Vec<String>,
}

pub async fn run(g: &GlobalOptions, a: RmArgs) -> anyhow::Result<i32> {
    let mut c = client(g).await?;
    let mut code = 0;
    for id in a.containers {
        match c
            .remove(RemoveContainerRequest {
                id: id.clone(),
                force: a.force,
                volumes: a.volumes,
            })
            .await
        {
            Ok(_) => println!("{id}"),
            Err(s) => {
                eprintln!("{}", daemon_error(&s));
                code = 1;
            }
        }
    }
    Ok(code)
}

pub async fn prune(g: &GlobalOptions, a: PruneArgs) -> anyhow::Result<i32> {
    if !a.force
        && !confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        )
    {
        return Ok(0);
    }
    let r = client(g)
        .await?
        .prune(PruneContainersRequest { filters: a.filters })
        .await?
        .into_inner();
    if !r.deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &r.deleted {
            println!("{id}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r.space_reclaimed as i64)
    );
    Ok(0)
}
