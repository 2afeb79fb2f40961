//! `berthctl volume create|ls|inspect|rm|prune` over berth.v1.Volumes.

use berth_api::berth::v1::volumes_client::VolumesClient;
use berth_api::berth::v1::{
    CreateVolumeRequest, InspectVolumeRequest, ListVolumesRequest, PruneVolumesRequest,
    RemoveVolumeRequest, Volume,
};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::commands::image::prune::confirm;
use crate::global::{Format, GlobalOptions};
use crate::output::{daemon_error, human_size, print_json, print_table, rfc3339, table};

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused volumes (anonymous ones; all with -a).
    Prune(PruneArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Volume driver name.
    #[arg(short = 'd', long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume (KEY=VALUE).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Set driver specific options (KEY=VALUE).
    #[arg(short = 'o', long = "opt")]
    opts: Vec<String>,
    /// The name (default: a random one).
    name: Option<String>,
}

#[derive(clap::Args)]
pub struct LsArgs {
    /// Filter output (dangling=, name=, label=, driver=).
    #[arg(short = 'f', long = "filter")]
    filters: Vec<String>,
    /// Only display volume names.
    #[arg(short = 'q', long)]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// Do not fail on volumes that do not exist.
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short = 'a', long)]
    all: bool,
    /// Provide filter values (label=, label!=).
    #[arg(long = "filter")]
    filters: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
}

fn pairs(
    items: Vec<String>,
    what: &str,
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    items
        .into_iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None if what == "label" => Ok((i, String::new())),
            None => anyhow::bail!("invalid {what} {i:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// docker's `volume inspect` document.
fn doc(v: &Volume) -> Value {
    let mut d = json!({
        "CreatedAt": rfc3339(crate::output::nanos(v.created_at.as_ref())),
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": v.options,
        "Scope": v.scope,
        "Berth": {"Anonymous": v.anonymous, "UsedBy": v.users},
    });
    if v.size >= 0 {
        d["UsageData"] = json!({"Size": v.size, "RefCount": v.users.len()});
    }
    d
}

pub async fn run(g: &GlobalOptions, cmd: VolumeCommand) -> anyhow::Result<i32> {
    let mut c = VolumesClient::new(g.ns_channel().await?);
    match cmd {
        VolumeCommand::Create(a) => {
            let v = c
                .create(CreateVolumeRequest {
                    name: a.name.unwrap_or_default(),
                    driver: a.driver,
                    labels: pairs(a.labels, "label")?,
                    driver_opts: pairs(a.opts, "option")?,
                })
                .await?
                .into_inner()
                .volume
                .unwrap_or_default();
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let vols = c
                .list(ListVolumesRequest {
                    filters: a.filters,
                    size: false,
                })
                .await?
                .into_inner()
                .volumes;
            if a.quiet {
                for v in &vols {
                    println!("{}", v.name);
                }
            } else if g.format == Format::Json {
                for v in &vols {
                    println!("{}", doc(v));
                }
            } else {
                let mut t = table(&["DRIVER", "VOLUME NAME"]);
                for v in &vols {
                    t.add_row(vec![v.driver.clone(), v.name.clone()]);
                }
                print_table(&t);
            }
            Ok(0)
        }
        VolumeCommand::Inspect(a) => {
            let mut docs = Vec::new();
            let mut code = 0;
            for name in a.volumes {
                match c.inspect(InspectVolumeRequest { name, size: true }).await {
                    Ok(r) => docs.push(doc(&r.into_inner().volume.unwrap_or_default())),
                    Err(s) => {
                        eprintln!("{}", daemon_error(&s));
                        code = 1;
                    }
                }
            }
            print_json(&docs)?;
            Ok(code)
        }
        VolumeCommand::Rm(a) => {
            let mut code = 0;
            for name in a.volumes {
                match c
                    .remove(RemoveVolumeRequest {
                        name: name.clone(),
                        force: a.force,
                    })
                    .await
                {
                    Ok(_) => println!("{name}"),
                    Err(s) => {
                        eprintln!("{}", daemon_error(&s));
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune(a) => {
            let what = if a.all {
                "all volumes not used by at least one container"
            } else {
                "all anonymous local volumes not used by at least one container"
            };
            if !a.force
                && !confirm(&format!(
                    "WARNING! This will remove {what}.\nAre you sure you want to continue?"
                ))
            {
                return Ok(0);
            }
            let r = c
                .prune(PruneVolumesRequest {
                    all: a.all,
                    filters: a.filters,
                })
                .await?
                .into_inner();
            if !r.deleted.is_empty() {
                println!("Deleted Volumes:");
                for n in &r.deleted {
                    println!("{n}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                human_size(r.space_reclaimed as i64)
            );
            Ok(0)
        }
    }
}
