//! `stats`: CPU, memory, network, block I/O and pids of containers, as a table redrawn
//! every second, or once with `--no-stream`.

use std::io::Write;

use berth_api::berth::v1::{ContainerStats, StatsRequest};

use super::client;
use crate::global::{Format, GlobalOptions};
use crate::output::human_size;

#[derive(clap::Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    all: bool,
    /// Print one sample and exit.
    #[arg(long = "no-stream")]
    no_stream: bool,
    /// Do not truncate IDs.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    containers: Vec<String>,
}

/// Binary units, as docker prints memory (`1.5MiB`).
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .chars()
            .take(5)
            .collect::<String>()
            .trim_end_matches('.')
            .to_string()
            + UNITS[i]
    }
}

fn row(s: &ContainerStats, no_trunc: bool) -> Vec<String> {
    let id = if no_trunc {
        s.id.clone()
    } else {
        s.id.chars().take(12).collect()
    };
    if !s.running {
        return vec![
            id,
            s.name.clone(),
            "0.00%".into(),
            "0B / 0B".into(),
            "0.00%".into(),
            "0B / 0B".into(),
            "0B / 0B".into(),
            "0".into(),
        ];
    }
    vec![
        id,
        s.name.clone(),
        format!("{:.2}%", s.cpu_percent),
        format!(
            "{} / {}",
            binary_size(s.memory_usage),
            binary_size(s.memory_limit)
        ),
        format!("{:.2}%", s.memory_percent),
        format!(
            "{} / {}",
            human_size(s.net_rx as i64),
            human_size(s.net_tx as i64)
        ),
        format!(
            "{} / {}",
            human_size(s.block_read as i64),
            human_size(s.block_write as i64)
        ),
        s.pids.to_string(),
    ]
}

const TITLES: [&str; 8] = [
    "CONTAINER ID",
    "NAME",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
];

fn render(batch: &[ContainerStats], no_trunc: bool) -> String {
    let rows: Vec<Vec<String>> = batch.iter().map(|s| row(s, no_trunc)).collect();
    let mut widths: Vec<usize> = TITLES.iter().map(|t| t.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{:<w$}   ", c, w = widths[i]));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(TITLES.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

pub async fn run(g: &GlobalOptions, a: StatsArgs) -> anyhow::Result<i32> {
    let mut stream = client(g)
        .await?
        .stats(StatsRequest {
            ids: a.containers,
            all: a.all,
            stream: !a.no_stream,
            interval_ms: 0,
        })
        .await?
        .into_inner();
    loop {
        let batch = tokio::select! {
            m = stream.message() => match m? {
                Some(b) => b.stats,
                None => return Ok(0),
            },
            _ = tokio::signal::ctrl_c() => return Ok(0),
        };
        if g.format == Format::Json {
            for s in &batch {
                println!(
                    "{}",
                    serde_json::json!({
                        "ID": s.id, "Name": s.name, "CPUPerc": s.cpu_percent,
                        "MemUsage": s.memory_usage, "MemLimit": s.memory_limit,
                        "MemPerc": s.memory_percent, "NetRx": s.net_rx, "NetTx": s.net_tx,
                        "BlockRead": s.block_read, "BlockWrite": s.block_write, "PIDs": s.pids,
                    })
                );
            }
            continue;
        }
        let mut out = std::io::stdout().lock();
        if !a.no_stream {
            // Clear the screen and go home, as docker redraws.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        write!(out, "{}", render(&batch, a.no_trunc))?;
        out.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_in_binary_units() {
        assert_eq!(binary_size(512), "512B");
        assert_eq!(binary_size(1536), "1.5KiB");
        assert_eq!(binary_size(3 * 1024 * 1024 * 1024), "3GiB");
    }
}
