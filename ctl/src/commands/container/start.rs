//! `berthctl start`: start containers; with `-a` attached to one (and `-i` its stdin).

use berth_api::berth::v1::{AttachOptions, InspectContainerRequest};

use super::run::start_or_code;
use super::{attach, client};
use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach container's STDIN.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn run(g: &GlobalOptions, a: StartArgs) -> anyhow::Result<i32> {
    let mut c = client(g).await?;
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        let name = &a.containers[0];
        let doc = c
            .inspect(InspectContainerRequest {
                id: name.clone(),
                size: false,
            })
            .await?
            .into_inner();
        let v: serde_json::Value = serde_json::from_slice(&doc.json)?;
        let stdin = a.interactive && v["Config"]["OpenStdin"] == true;
        let opened = attach::open(
            &mut c,
            AttachOptions {
                id: name.clone(),
                stdin,
                stdout: true,
                stderr: true,
                detach_keys: a.detach_keys.unwrap_or_default(),
                logs: false,
                size: None,
            },
        )
        .await?;
        let id = opened.id.clone();
        if let Some(code) = start_or_code(&mut c, &id).await {
            return Ok(code);
        }
        let end = attach::pump(opened, stdin, Some(c.clone())).await?;
        return Ok(attach::exit_code(&end));
    }
    let mut code = 0;
    for name in a.containers {
        match start_or_code(&mut c, &name).await {
            None => println!("{name}"),
            Some(_) => code = 1,
        }
    }
    Ok(code)
}
