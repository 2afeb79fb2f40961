//! `berthctl logs`: a container's logged output, also after it exited; `-f` follows.

use berth_api::berth::v1::{ContainerLogsRequest, OutputStream};
use std::io::Write;

use super::client;
use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line).
    #[arg(long, default_value = "all")]
    tail: String,
    /// Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m).
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp or relative time.
    #[arg(long)]
    until: Option<String>,
    /// Show timestamps.
    #[arg(short = 't', long)]
    timestamps: bool,
    container: String,
}

/// A time as docker's `--since`/`--until` take it: RFC 3339, Unix seconds, or a
/// duration before now (`10m`).
pub fn parse_time(s: &str) -> anyhow::Result<prost_types::Timestamp> {
    let nanos = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        t.timestamp_nanos_opt()
            .ok_or_else(|| anyhow::anyhow!("time {s:?} is out of range"))?
    } else if let Ok(secs) = s.parse::<f64>() {
        (secs * 1e9) as i64
    } else if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        t.and_utc().timestamp_nanos_opt().unwrap_or(0)
    } else {
        let d = humantime::parse_duration(s).map_err(|_| {
            anyhow::anyhow!("invalid time {s:?}: expected a timestamp or a duration like 10m")
        })?;
        berth_api::time::to_unix_nanos(std::time::SystemTime::now()) - d.as_nanos() as i64
    };
    Ok(berth_api::time::from_unix_nanos(nanos))
}

pub async fn run(g: &GlobalOptions, a: LogsArgs) -> anyhow::Result<i32> {
    let tail = match a.tail.as_str() {
        "all" | "" => -1,
        n => n
            .parse::<i64>()
            .map_err(|_| anyhow::anyhow!("invalid --tail {n:?}: a number or \"all\""))?,
    };
    let mut stream = client(g)
        .await?
        .logs(ContainerLogsRequest {
            id: a.container,
            follow: a.follow,
            tail,
            since: a.since.as_deref().map(parse_time).transpose()?,
            until: a.until.as_deref().map(parse_time).transpose()?,
            timestamps: a.timestamps,
            stdout: true,
            stderr: true,
        })
        .await?
        .into_inner();
    while let Some(f) = stream.message().await? {
        if f.stream == OutputStream::Stderr as i32 {
            let mut e = std::io::stderr().lock();
            e.write_all(&f.data)?;
            e.flush()?;
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(&f.data)?;
            o.flush()?;
        }
    }
    Ok(0)
}
