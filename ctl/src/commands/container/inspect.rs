//! `berthctl container inspect` and the top-level `inspect`, which looks for a
//! container first and then an image, as docker does.

use berth_api::berth::v1::{InspectContainerRequest, InspectImageRequest};
use serde_json::Value;

use super::client;
use crate::commands::image;
use crate::global::{Format, GlobalOptions};
use crate::template::Template;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format the output using the given Go template (`{{.State.Pid}}`); the global
    /// `--format` does the same.
    #[arg(short = 'f')]
    template: Option<String>,
    /// Display total file sizes.
    #[arg(short = 's', long)]
    size: bool,
    /// Names or IDs.
    #[arg(required = true)]
    names: Vec<String>,
}

/// Inspects containers (and, with `images_too`, images where no container matches).
pub async fn run(g: &GlobalOptions, a: InspectArgs, images_too: bool) -> anyhow::Result<i32> {
    let template = match (a.template, &g.format) {
        (Some(t), _) => Some(Template::parse(&t)?),
        (None, Format::Template(t)) => Some(Template::parse(t)?),
        _ => None,
    };
    let mut c = client(g).await?;
    let mut images = None;
    let mut found: Vec<Value> = Vec::new();
    let mut code = 0;
    for name in &a.names {
        match c
            .inspect(InspectContainerRequest {
                id: name.clone(),
                size: a.size,
            })
            .await
        {
            Ok(r) => {
                found.push(serde_json::from_slice(&r.into_inner().json)?);
                continue;
            }
            Err(e) if e.code() == tonic::Code::NotFound => {}
            Err(e) => {
                eprintln!("{}", crate::output::daemon_error(&e));
                code = 1;
                continue;
            }
        }
        if images_too {
            if images.is_none() {
                images = Some(image::client(g).await?);
            }
            if let Some(ic) = images.as_mut()
                && let Ok(r) = ic.inspect(InspectImageRequest { name: name.clone() }).await
                && let Some(i) = r.into_inner().image
            {
                found.push(image::inspect::to_json(&i));
                continue;
            }
        }
        eprintln!("Error: No such object: {name}");
        code = 1;
    }
    match template {
        Some(t) => {
            for v in &found {
                println!("{}", t.render(v)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&found)?),
    }
    Ok(code)
}
