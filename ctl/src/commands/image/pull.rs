//! `berthctl pull` / `image pull`.

use berth_api::berth::v1::PullImageRequest;
use berth_api::berth::v1::pull_image_progress::Event;

use super::progress::Display;
use super::{auth_for, client, registry_of};
use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct PullArgs {
    /// Download every tag of the repository.
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    /// The platform to pull (os/arch[/variant]); the host's by default.
    #[arg(long)]
    platform: Option<String>,
    /// Print only the image name.
    #[arg(short, long)]
    quiet: bool,
    /// The snapshotter to unpack into.
    #[arg(long, default_value = "")]
    snapshotter: String,
    /// NAME[:TAG|@DIGEST]
    image: String,
}

pub async fn run(g: &GlobalOptions, a: PullArgs) -> anyhow::Result<i32> {
    let auth = auth_for(&registry_of(&a.image))?;
    let mut stream = client(g)
        .await?
        .pull(PullImageRequest {
            reference: a.image.clone(),
            all_tags: a.all_tags,
            platform: a.platform.unwrap_or_default(),
            auth,
            snapshotter: a.snapshotter,
        })
        .await?
        .into_inner();
    let mut display = Display::new(a.quiet);
    let mut names = Vec::new();
    while let Some(msg) = stream.message().await? {
        match msg.event {
            Some(Event::Layer(l)) => display.layer(&l),
            Some(Event::Status(s)) => display.status(&s),
            Some(Event::Image(i)) => names.push(i.name),
            None => {}
        }
    }
    display.finish();
    drop(display);
    if a.all_tags {
        // docker prints the repository once.
        if let Some(first) = names.first() {
            let repo = first
                .rsplit_once(':')
                .filter(|(_, t)| !t.contains('/'))
                .map_or(first.as_str(), |(r, _)| r);
            println!("{repo}");
        }
    } else {
        for n in names {
            println!("{n}");
        }
    }
    Ok(0)
}
