//! `top`, `port` and `diff`: what runs in a container, its published ports, and what it
//! changed in its file system.

use berth_api::berth::v1::{ChangeKind, ChangesRequest, PortRequest, TopRequest};

use super::client;
use crate::global::{Format, GlobalOptions};
use crate::output::print_json;

#[derive(clap::Args)]
pub struct TopArgs {
    container: String,
    /// `ps` options (e.g. `aux`, `-o pid,comm`); default: `-ef`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

#[derive(clap::Args)]
pub struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]: only this mapping.
    port: Option<String>,
}

#[derive(clap::Args)]
pub struct DiffArgs {
    container: String,
}

pub async fn top(g: &GlobalOptions, a: TopArgs) -> anyhow::Result<i32> {
    let t = client(g)
        .await?
        .top(TopRequest {
            id: a.container,
            ps_args: a.ps_args,
        })
        .await?
        .into_inner();
    if g.format == Format::Json {
        let rows: Vec<_> = t.processes.iter().map(|r| &r.columns).collect();
        print_json(&serde_json::json!({"Titles": t.titles, "Processes": rows}))?;
        return Ok(0);
    }
    // Columns padded to their widest cell, the last one left as it is (a command line).
    let mut widths: Vec<usize> = t.titles.iter().map(|s| s.len()).collect();
    for r in &t.processes {
        for (i, c) in r.columns.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.len());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!(
                    "{:<w$}   ",
                    c,
                    w = widths.get(i).copied().unwrap_or(0)
                ));
            }
        }
        out
    };
    println!("{}", line(&t.titles));
    for r in &t.processes {
        println!("{}", line(&r.columns));
    }
    Ok(0)
}

pub async fn port(g: &GlobalOptions, a: PortArgs) -> anyhow::Result<i32> {
    let ports = client(g)
        .await?
        .port(PortRequest {
            id: a.container.clone(),
        })
        .await?
        .into_inner()
        .ports;
    let wanted = a.port.as_deref().map(|p| match p.split_once('/') {
        Some((n, proto)) => (n.to_string(), proto.to_ascii_lowercase()),
        None => (p.to_string(), "tcp".to_string()),
    });
    let mut found = false;
    for p in &ports {
        let key = (p.private_port.to_string(), p.r#type.clone());
        match &wanted {
            Some(w) if *w == key => println!("{}:{}", p.ip, p.public_port),
            Some(_) => continue,
            None => println!(
                "{}/{} -> {}:{}",
                p.private_port, p.r#type, p.ip, p.public_port
            ),
        }
        found = true;
    }
    if let (Some((n, proto)), false) = (&wanted, found) {
        anyhow::bail!("no public port '{n}/{proto}' published for {}", a.container);
    }
    Ok(0)
}

pub async fn diff(g: &GlobalOptions, a: DiffArgs) -> anyhow::Result<i32> {
    let changes = client(g)
        .await?
        .changes(ChangesRequest { id: a.container })
        .await?
        .into_inner()
        .changes;
    for c in changes {
        let letter = match ChangeKind::try_from(c.kind).unwrap_or(ChangeKind::Modified) {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        };
        println!("{letter} {}", c.path);
    }
    Ok(0)
}
