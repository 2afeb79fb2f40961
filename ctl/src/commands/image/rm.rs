//! `berthctl rmi` / `image rm`.

use berth_api::berth::v1::RemoveImageRequest;
use berth_api::berth::v1::removed_image::Item;

use super::client;
use crate::global::GlobalOptions;
use crate::output::daemon_error;

#[derive(clap::Args)]
pub struct RmArgs {
    /// Remove even when several repositories or a container use the image.
    #[arg(short, long)]
    force: bool,
    /// Accepted for docker compatibility (berth keeps no untagged parents).
    #[arg(long)]
    no_prune: bool,
    /// Names or IDs.
    #[arg(required = true)]
    images: Vec<String>,
}

pub async fn run(g: &GlobalOptions, a: RmArgs) -> anyhow::Result<i32> {
    let mut c = client(g).await?;
    let mut code = 0;
    for name in a.images {
        match c
            .remove(RemoveImageRequest {
                name: name.clone(),
                force: a.force,
            })
            .await
        {
            Ok(r) => {
                for item in r.into_inner().items {
                    match item.item {
                        Some(Item::Untagged(n)) => println!("Untagged: {n}"),
                        Some(Item::Deleted(d)) => println!("Deleted: {d}"),
                        None => {}
                    }
                }
            }
            Err(e) => {
                eprintln!("{}", daemon_error(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}
