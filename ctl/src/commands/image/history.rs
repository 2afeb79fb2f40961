//! `berthctl history` / `image history`.

use berth_api::berth::v1::ImageHistoryRequest;
use serde_json::json;

use super::list::print_rows;
use super::{client, show_id};
use crate::global::{Format, GlobalOptions};
use crate::output::{human_since, human_size, nanos, rfc3339};

#[derive(clap::Args)]
pub struct HistoryArgs {
    /// Do not truncate the output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Print sizes and dates in human-readable form.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    /// A name or ID.
    image: String,
}

/// docker's `stringutils.Ellipsis`.
fn ellipsis(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let mut out: String = chars[..max - 1].iter().collect();
    out.push('…');
    out
}

fn header(field: &str) -> String {
    match field {
        "ID" => "IMAGE".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        "CreatedBy" => "CREATED BY".into(),
        other => other.to_uppercase(),
    }
}

pub async fn run(g: &GlobalOptions, a: HistoryArgs) -> anyhow::Result<i32> {
    if let Format::Other(f) = &g.format {
        anyhow::bail!("--format {f:?}: use table, json or a template");
    }
    let history = client(g)
        .await?
        .history(ImageHistoryRequest {
            name: a.image.clone(),
        })
        .await?
        .into_inner()
        .history;
    let rows: Vec<serde_json::Value> = history
        .iter()
        .map(|h| {
            let created = nanos(h.created.as_ref());
            let id = if h.id == "<missing>" {
                h.id.clone()
            } else {
                show_id(&h.id, a.no_trunc)
            };
            let created_by = h.created_by.replace('\t', " ");
            json!({
                "ID": id,
                "CreatedSince": if a.human { human_since(created) } else { rfc3339(created) },
                "CreatedAt": rfc3339(created),
                "CreatedBy": if a.no_trunc { created_by } else { ellipsis(&created_by, 45) },
                "Size": if a.human { human_size(h.size) } else { h.size.to_string() },
                "Comment": h.comment,
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    print_rows(
        &g.format,
        &rows,
        &["ID", "CreatedSince", "CreatedBy", "Size", "Comment"],
        &header,
    )?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ellipsis_like_docker() {
        assert_eq!(super::ellipsis("short", 45), "short");
        let long = "x".repeat(50);
        let e = super::ellipsis(&long, 45);
        assert_eq!(e.chars().count(), 45);
        assert!(e.ends_with('…'));
    }
}
