//! `berthctl image prune`.

use std::io::{BufRead, Write};

use berth_api::berth::v1::PruneImagesRequest;
use berth_api::berth::v1::removed_image::Item;

use super::client;
use crate::global::GlobalOptions;
use crate::output::human_size;

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove every image no container uses, not only dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Filter: until=TIME|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long = "filter")]
    filters: Vec<String>,
}

/// Asks `question`; true for y/Y.
pub fn confirm(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y")
}

pub async fn run(g: &GlobalOptions, a: PruneArgs) -> anyhow::Result<i32> {
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        if !confirm(&format!("{warning}\nAre you sure you want to continue?")) {
            return Ok(0);
        }
    }
    let r = client(g)
        .await?
        .prune(PruneImagesRequest {
            all: a.all,
            filters: a.filters,
        })
        .await?
        .into_inner();
    if !r.items.is_empty() {
        println!("Deleted Images:");
        for i in &r.items {
            match &i.item {
                Some(Item::Untagged(n)) => println!("untagged: {n}"),
                Some(Item::Deleted(d)) => println!("deleted: {d}"),
                None => {}
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r.space_reclaimed as i64)
    );
    Ok(0)
}
