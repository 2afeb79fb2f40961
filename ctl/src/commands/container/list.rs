//! `berthctl ps`: docker's container table (or `-q`, `--format json`, a template).

use berth_api::berth::v1::{ContainerPort, ContainerSummary, ListContainersRequest};
use serde_json::{Value, json};

use super::client;
use crate::commands::image::list::print_rows;
use crate::global::{Format, GlobalOptions};
use crate::output::{docker_time, human_since, human_size, nanos};

#[derive(clap::Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display container IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long)]
    latest: bool,
    /// Show n last created containers (includes all states). (docker's `-n` is berthctl's
    /// namespace flag.)
    #[arg(long = "last", default_value_t = 0, allow_hyphen_values = true)]
    last: i32,
    /// Display total file sizes.
    #[arg(short = 's', long)]
    size: bool,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Filter output based on conditions provided (status=, name=, label=, ancestor=, ...).
    #[arg(short = 'f', long = "filter")]
    filters: Vec<String>,
}

/// docker's `0.0.0.0:8080->80/tcp, 443/tcp`.
pub fn ports_text(ports: &[ContainerPort]) -> String {
    ports
        .iter()
        .map(|p| {
            if p.public_port == 0 {
                format!("{}/{}", p.private_port, p.r#type)
            } else {
                format!(
                    "{}:{}->{}/{}",
                    p.ip, p.public_port, p.private_port, p.r#type
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// docker's `Ellipsis`: at most `n` characters, the last one `…` when cut.
fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

pub fn row(c: &ContainerSummary, no_trunc: bool) -> Value {
    let created = nanos(c.created.as_ref());
    let command = if no_trunc {
        format!("\"{}\"", c.command)
    } else {
        format!("\"{}\"", ellipsis(&c.command, 20))
    };
    let mut labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    let size = if c.size_rw > 0 || c.size_root_fs > 0 {
        format!(
            "{} (virtual {})",
            human_size(c.size_rw),
            human_size(c.size_root_fs)
        )
    } else {
        "0B".into()
    };
    json!({
        "ID": if no_trunc { c.id.clone() } else { c.id.chars().take(12).collect() },
        "Image": c.image,
        "Command": command,
        "CreatedAt": docker_time(created),
        "RunningFor": human_since(created),
        "Ports": ports_text(&c.ports),
        "State": c.state,
        "Status": c.status,
        "Size": size,
        "Names": c.names.iter().map(|n| n.trim_start_matches('/')).collect::<Vec<_>>().join(","),
        "Labels": labels.join(","),
        "Mounts": c.mounts.iter().map(|m| if m.name.is_empty() { m.source.clone() } else { m.name.clone() }).collect::<Vec<_>>().join(","),
        "Networks": c.networks.join(","),
    })
}

fn header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "RunningFor" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_uppercase(),
    }
}

pub async fn run(g: &GlobalOptions, a: PsArgs) -> anyhow::Result<i32> {
    if let Format::Other(f) = &g.format {
        anyhow::bail!("--format {f:?}: use table, json or a template");
    }
    let containers = client(g)
        .await?
        .list(ListContainersRequest {
            all: a.all,
            limit: a.last.max(0),
            latest: a.latest,
            size: a.size,
            filters: a.filters,
        })
        .await?
        .into_inner()
        .containers;
    let rows: Vec<Value> = containers.iter().map(|c| row(c, a.no_trunc)).collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let mut columns = vec![
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
    ];
    if a.size {
        columns.push("Size");
    }
    print_rows(&g.format, &rows, &columns, &header)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_commands_like_docker() {
        let ports = vec![
            ContainerPort {
                ip: "0.0.0.0".into(),
                private_port: 80,
                public_port: 8080,
                r#type: "tcp".into(),
            },
            ContainerPort {
                ip: String::new(),
                private_port: 443,
                public_port: 0,
                r#type: "tcp".into(),
            },
        ];
        assert_eq!(ports_text(&ports), "0.0.0.0:8080->80/tcp, 443/tcp");
        assert_eq!(
            ellipsis("sh -c 'sleep 1000; echo done'", 20),
            "sh -c 'sleep 1000; …"
        );
        let c = ContainerSummary {
            id: "0123456789abcdef".into(),
            names: vec!["/web".into()],
            command: "top".into(),
            ..Default::default()
        };
        let r = row(&c, false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Command"], "\"top\"");
    }
}
