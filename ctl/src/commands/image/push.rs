//! `berthctl push` / `image push`.

use berth_api::berth::v1::PushImageRequest;
use berth_api::berth::v1::push_image_progress::Event;

use super::progress::Display;
use super::{auth_for, client, registry_of};
use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct PushArgs {
    /// Print only the pushed reference and digest.
    #[arg(short, long)]
    quiet: bool,
    /// NAME[:TAG]
    image: String,
}

pub async fn run(g: &GlobalOptions, a: PushArgs) -> anyhow::Result<i32> {
    let auth = auth_for(&registry_of(&a.image))?;
    let mut stream = client(g)
        .await?
        .push(PushImageRequest {
            reference: a.image.clone(),
            auth,
        })
        .await?
        .into_inner();
    let mut display = Display::new(a.quiet);
    let mut pushed = None;
    while let Some(msg) = stream.message().await? {
        match msg.event {
            Some(Event::Layer(l)) => display.layer(&l),
            Some(Event::Status(s)) => display.status(&s),
            Some(Event::Image(i)) => pushed = Some(i),
            None => {}
        }
    }
    display.finish();
    drop(display);
    if a.quiet
        && let Some(p) = pushed
    {
        println!("{}", p.name);
    }
    Ok(0)
}
