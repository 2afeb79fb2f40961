//! `berthctl images` / `image ls`: a row per tag (or repository digest) of each image.

use berth_api::berth::v1::{ImageSummary, ListImagesRequest};
use serde_json::{Value, json};

use super::{client, show_id};
use crate::global::{Format, GlobalOptions};
use crate::output::{docker_time, human_since, human_size, nanos, print_table, table};
use crate::template::{Template, align_tabs};

#[derive(clap::Args)]
pub struct ListArgs {
    /// Show all images (berth keeps no intermediate images; accepted for docker's -a).
    #[arg(short, long)]
    all: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Filter: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE,
    /// label=KEY[=VALUE].
    #[arg(short = 'f', long = "filter")]
    filters: Vec<String>,
    /// Do not truncate IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Only images of this repository (and tag): REPOSITORY[:TAG].
    repository: Option<String>,
}

/// One row as docker's formatter sees it.
pub fn rows(images: &[ImageSummary], no_trunc: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for i in images {
        let created = nanos(i.created.as_ref());
        let base = |repo: &str, tag: &str, digest: &str| {
            json!({
                "Containers": i.containers.to_string(),
                "CreatedAt": docker_time(created),
                "CreatedSince": human_since(created),
                "Digest": digest,
                "ID": show_id(&i.id, no_trunc),
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": human_size(i.size),
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(i.size),
            })
        };
        let digest_of = |repo: &str| {
            i.repo_digests
                .iter()
                .find_map(|d| {
                    d.split_once('@')
                        .filter(|(r, _)| *r == repo)
                        .map(|(_, d)| d)
                })
                .unwrap_or("<none>")
                .to_string()
        };
        if !i.repo_tags.is_empty() {
            for t in &i.repo_tags {
                let (repo, tag) = split_tag(t);
                out.push(base(repo, tag, &digest_of(repo)));
            }
        } else if !i.repo_digests.is_empty() {
            for d in &i.repo_digests {
                let (repo, digest) = d.split_once('@').unwrap_or((d.as_str(), "<none>"));
                out.push(base(repo, "<none>", digest));
            }
        } else {
            out.push(base("<none>", "<none>", "<none>"));
        }
    }
    out
}

/// `repo:tag` split at the tag's ':' (not a registry port's).
pub fn split_tag(t: &str) -> (&str, &str) {
    match t.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => (r, tag),
        _ => (t, "<none>"),
    }
}

/// docker's header for a field.
pub fn header(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        "SharedSize" => "SHARED SIZE".into(),
        "UniqueSize" => "UNIQUE SIZE".into(),
        "VirtualSize" => "VIRTUAL SIZE".into(),
        other => other.to_uppercase(),
    }
}

/// Prints rows through `--format`: json lines, a template, or the default table.
pub fn print_rows(
    format: &Format,
    rows: &[Value],
    columns: &[&str],
    header_of: &dyn Fn(&str) -> String,
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            for r in rows {
                println!("{}", serde_json::to_string(r)?);
            }
        }
        Format::Template(t) => {
            let t = Template::parse(t)?;
            let mut text = String::new();
            if t.is_table() {
                text.push_str(&t.header(header_of));
                text.push('\n');
            }
            for r in rows {
                text.push_str(&t.render(r)?);
                text.push('\n');
            }
            if t.is_table() {
                print!("{}", align_tabs(&text));
            } else {
                print!("{text}");
            }
        }
        Format::Table | Format::Other(_) => {
            let headers: Vec<String> = columns.iter().map(|c| header_of(c)).collect();
            let h: Vec<&str> = headers.iter().map(String::as_str).collect();
            let mut tbl = table(&h);
            for r in rows {
                tbl.add_row(
                    columns
                        .iter()
                        .map(|c| r[*c].as_str().unwrap_or_default().to_string())
                        .collect::<Vec<_>>(),
                );
            }
            print_table(&tbl);
        }
    }
    Ok(())
}

pub async fn run(g: &GlobalOptions, a: ListArgs) -> anyhow::Result<i32> {
    if let Format::Other(f) = &g.format {
        anyhow::bail!("--format {f:?}: use table, json or a template");
    }
    let mut filters = a.filters;
    if let Some(r) = a.repository {
        filters.push(format!("reference={r}"));
    }
    let images = client(g)
        .await?
        .list(ListImagesRequest {
            all: a.all,
            filters,
        })
        .await?
        .into_inner()
        .images;
    let rows = rows(&images, a.no_trunc);
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let columns: &[&str] = if a.digests {
        &["Repository", "Tag", "Digest", "ID", "CreatedSince", "Size"]
    } else {
        &["Repository", "Tag", "ID", "CreatedSince", "Size"]
    };
    print_rows(&g.format, &rows, columns, &header)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_tag_digest_or_none() {
        let img = ImageSummary {
            id: format!("sha256:{}", "a".repeat(64)),
            repo_tags: vec!["busybox:latest".into(), "127.0.0.1:5000/bb:v1".into()],
            repo_digests: vec!["busybox@sha256:dd".into()],
            size: 4_261_550,
            ..Default::default()
        };
        let r = rows(std::slice::from_ref(&img), false);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0]["Repository"], "busybox");
        assert_eq!(r[0]["Digest"], "sha256:dd");
        assert_eq!(r[1]["Repository"], "127.0.0.1:5000/bb");
        assert_eq!(r[1]["Tag"], "v1");
        assert_eq!(r[1]["Digest"], "<none>");
        assert_eq!(r[0]["ID"], "aaaaaaaaaaaa");
        assert_eq!(r[0]["Size"], "4.26MB");
        let dangling = ImageSummary {
            id: "sha256:b".into(),
            ..Default::default()
        };
        let r = rows(&[dangling], true);
        assert_eq!(r[0]["Repository"], "<none>");
        assert_eq!(r[0]["ID"], "sha256:b");
        assert_eq!(
            split_tag("localhost:5000/x"),
            ("localhost:5000/x", "<none>")
        );
    }
}
