//! `berthctl system df|prune|events|info` over berth.v1.System.

use berth_api::berth::v1::system_client::SystemClient;
use berth_api::berth::v1::{DfRequest, EventsRequest, SystemPruneRequest, removed_image};
use clap::Subcommand;

use crate::commands::image::prune::confirm;
use crate::global::{Format, GlobalOptions};
use crate::output::{human_since, human_size, nanos, print_table, rfc3339, table};

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Show disk usage of images, containers and volumes.
    Df(DfArgs),
    /// Remove unused data: stopped containers, unused networks, dangling images (and
    /// unused anonymous volumes with --volumes).
    Prune(PruneArgs),
    /// Get real-time docker-style events from berthd.
    Events(EventsArgs),
    /// Display system-wide information.
    Info,
}

#[derive(clap::Args)]
pub struct DfArgs {
    /// Show detailed information on space usage.
    #[arg(short = 'v', long)]
    verbose: bool,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short = 'a', long)]
    all: bool,
    /// Prune anonymous volumes.
    #[arg(long)]
    volumes: bool,
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values (label=, label!=, until=).
    #[arg(long = "filter")]
    filters: Vec<String>,
}

#[derive(clap::Args)]
pub struct EventsArgs {
    /// Show events created since this time (RFC 3339, Unix seconds, or a duration
    /// like 10m before now).
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this time.
    #[arg(long)]
    until: Option<String>,
    /// Filter output (type=, event=, container=, image=, volume=, network=, label=).
    #[arg(short = 'f', long = "filter")]
    filters: Vec<String>,
}

/// `system df -v`: one table per kind.
fn df_verbose(d: &berth_api::berth::v1::DfResponse) -> anyhow::Result<()> {
    println!("Images space usage:\n");
    let mut t = table(&[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ]);
    for i in &d.images {
        let short: String =
            i.id.trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect();
        let created = human_since(nanos(i.created.as_ref()));
        let tags = if i.repo_tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            i.repo_tags.clone()
        };
        for tag in tags {
            let (repo, t2) = tag.rsplit_once(':').unwrap_or((&tag, "<none>"));
            t.add_row(vec![
                repo.to_string(),
                t2.to_string(),
                short.clone(),
                created.clone(),
                human_size(i.size),
                human_size(i.shared_size),
                human_size(i.unique_size),
                i.containers.to_string(),
            ]);
        }
    }
    print_table(&t);
    println!("\nContainers space usage:\n");
    let mut t = table(&[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
    ]);
    for c in &d.containers {
        t.add_row(vec![
            c.id.chars().take(12).collect(),
            c.image.clone(),
            format!("\"{}\"", c.command),
            c.local_volumes.to_string(),
            human_size(c.size),
            human_since(nanos(c.created.as_ref())),
            c.status.clone(),
            c.name.clone(),
        ]);
    }
    print_table(&t);
    println!("\nLocal Volumes space usage:\n");
    let mut t = table(&["VOLUME NAME", "LINKS", "SIZE"]);
    for v in &d.volumes {
        t.add_row(vec![
            v.name.clone(),
            v.links.to_string(),
            human_size(v.size),
        ]);
    }
    print_table(&t);
    Ok(())
}

/// A time as docker's `--since`/`--until` take it.
fn parse_time(v: &str) -> anyhow::Result<prost_types::Timestamp> {
    let nanos: i64 = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        t.timestamp_nanos_opt()
            .ok_or_else(|| anyhow::anyhow!("time {v} is out of range"))?
    } else if let Ok(secs) = v.parse::<f64>() {
        (secs * 1e9) as i64
    } else {
        let d = humantime::parse_duration(v).map_err(|e| {
            anyhow::anyhow!(
                "invalid time {v:?}: expected RFC 3339, Unix seconds or a duration ({e})"
            )
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        now.saturating_sub(d).as_nanos() as i64
    };
    Ok(prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    })
}

pub async fn run(g: &GlobalOptions, cmd: SystemCommand) -> anyhow::Result<i32> {
    let mut c = SystemClient::new(g.ns_channel().await?);
    match cmd {
        SystemCommand::Info => crate::commands::info::run(g).await?,
        SystemCommand::Df(a) => {
            let d = c.df(DfRequest { verbose: a.verbose }).await?.into_inner();
            if g.format == Format::Json {
                for l in &d.summary {
                    println!(
                        "{}",
                        serde_json::json!({"Type": l.r#type, "TotalCount": l.total,
                            "Active": l.active, "Size": human_size(l.size),
                            "Reclaimable": human_size(l.reclaimable)})
                    );
                }
                return Ok(0);
            }
            if a.verbose {
                return df_verbose(&d).map(|()| 0);
            }
            let mut t = table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
            for l in &d.summary {
                let pct = if l.size > 0 {
                    format!(" ({}%)", l.reclaimable * 100 / l.size)
                } else {
                    String::new()
                };
                t.add_row(vec![
                    l.r#type.clone(),
                    l.total.to_string(),
                    l.active.to_string(),
                    human_size(l.size),
                    format!("{}{pct}", human_size(l.reclaimable)),
                ]);
            }
            print_table(&t);
        }
        SystemCommand::Prune(a) => {
            let mut what = vec![
                "all stopped containers",
                "all networks not used by at least one container",
            ];
            what.push(if a.all {
                "all images without at least one container associated to them"
            } else {
                "all dangling images"
            });
            if a.volumes {
                what.push("all anonymous volumes not used by at least one container");
            }
            let text = what
                .iter()
                .map(|w| format!("  - {w}"))
                .collect::<Vec<_>>()
                .join("\n");
            if !a.force
                && !confirm(&format!(
                    "WARNING! This will remove:\n{text}\n\nAre you sure you want to continue?"
                ))
            {
                return Ok(0);
            }
            let r = c
                .prune(SystemPruneRequest {
                    all: a.all,
                    volumes: a.volumes,
                    filters: a.filters,
                })
                .await?
                .into_inner();
            let section = |title: &str, items: &[String]| {
                if !items.is_empty() {
                    println!("{title}:");
                    for i in items {
                        println!("{i}");
                    }
                    println!();
                }
            };
            section("Deleted Containers", &r.containers);
            section("Deleted Networks", &r.networks);
            section("Deleted Volumes", &r.volumes);
            let images: Vec<String> = r
                .images
                .iter()
                .filter_map(|i| match &i.item {
                    Some(removed_image::Item::Untagged(n)) => Some(format!("untagged: {n}")),
                    Some(removed_image::Item::Deleted(d)) => Some(format!("deleted: {d}")),
                    None => None,
                })
                .collect();
            section("Deleted Images", &images);
            println!(
                "Total reclaimed space: {}",
                human_size(r.space_reclaimed as i64)
            );
        }
        SystemCommand::Events(a) => {
            let req = EventsRequest {
                since: a.since.as_deref().map(parse_time).transpose()?,
                until: a.until.as_deref().map(parse_time).transpose()?,
                filters: a.filters,
            };
            let mut stream = c.events(req).await?.into_inner();
            loop {
                let e = tokio::select! {
                    m = stream.message() => match m? {
                        Some(e) => e,
                        None => return Ok(0),
                    },
                    _ = tokio::signal::ctrl_c() => return Ok(0),
                };
                let nanos = crate::output::nanos(e.time.as_ref());
                if g.format == Format::Json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "Type": e.r#type, "Action": e.action,
                            "Actor": {"ID": e.actor_id, "Attributes": e.attributes},
                            "scope": e.scope, "time": nanos / 1_000_000_000, "timeNano": nanos,
                        })
                    );
                    continue;
                }
                let mut attrs: Vec<String> = e
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                attrs.sort();
                println!(
                    "{} {} {} {} ({})",
                    rfc3339(nanos),
                    e.r#type,
                    e.action,
                    e.actor_id,
                    attrs.join(", ")
                );
            }
        }
    }
    Ok(0)
}
