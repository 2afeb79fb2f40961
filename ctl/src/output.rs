//! Printing: tables for people, JSON for programs, and error messages.

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

/// A borderless table like docker's.
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| h.to_string()));
    // docker separates columns by three spaces.
    for c in t.column_iter_mut() {
        c.set_padding((0, 3));
    }
    t
}

/// Prints a table without trailing spaces.
pub fn print_table(t: &Table) {
    for line in t.to_string().lines() {
        println!("{}", line.trim_end());
    }
}

/// Prints a value as pretty JSON.
pub fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `k=v,k2=v2` from labels, sorted.
pub fn labels_text<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut v: Vec<String> = labels
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    v.sort();
    v.join(",")
}

/// A wire timestamp as RFC 3339 in UTC.
pub fn time_text(ts: Option<&prost_types::Timestamp>) -> String {
    berth_api::time::to_system(ts)
        .map(|t| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        })
        .unwrap_or_default()
}

/// An error for a person: gRPC statuses show their message, not their debug form.
pub fn describe(e: &anyhow::Error) -> String {
    if let Some(s) = e.downcast_ref::<tonic::Status>() {
        return status_text(s);
    }
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = match cause.downcast_ref::<tonic::Status>() {
            Some(s) => status_text(s),
            None => cause.to_string(),
        };
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

fn status_text(s: &tonic::Status) -> String {
    if s.message().is_empty() {
        format!("{:?}", s.code())
    } else {
        s.message().to_string()
    }
}

/// A size as docker prints it: decimal units, three significant digits (`4.26MB`).
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes.max(0) as f64;
    let mut i = 0;
    while size >= 1000.0 && i + 1 < UNITS.len() {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", significant(size, 3), UNITS[i])
}

/// `%.Ng` without the exponent form: `n` significant digits, trailing zeros dropped.
fn significant(v: f64, n: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (n - 1 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// How long ago `nanos` (Unix nanoseconds) was, as docker says it (`2 weeks ago`).
pub fn human_since(nanos: i64) -> String {
    if nanos <= 0 {
        return "N/A".into();
    }
    let now = berth_api::time::to_unix_nanos(std::time::SystemTime::now());
    let secs = ((now - nanos) / 1_000_000_000).max(0);
    format!("{} ago", human_duration(secs))
}

/// docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let minutes = secs / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{days} days")
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", days / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", days / 30)
    } else {
        format!("{} years", days / 365)
    }
}

/// Unix nanoseconds as docker's `CreatedAt` (`2024-01-02 03:04:05 +0000 UTC`).
pub fn docker_time(nanos: i64) -> String {
    if nanos <= 0 {
        return String::new();
    }
    chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(nanos)
        .format("%Y-%m-%d %H:%M:%S %z UTC")
        .to_string()
}

/// Unix nanoseconds as RFC 3339 (docker inspect's `Created`).
pub fn rfc3339(nanos: i64) -> String {
    if nanos <= 0 {
        return String::new();
    }
    chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Unix nanoseconds of a wire timestamp (0 when unset).
pub fn nanos(ts: Option<&prost_types::Timestamp>) -> i64 {
    berth_api::time::to_system(ts)
        .map(berth_api::time::to_unix_nanos)
        .unwrap_or(0)
}

/// A daemon's error as docker prints it.
pub fn daemon_error(s: &tonic::Status) -> String {
    format!("Error response from daemon: {}", status_text(s))
}

/// Writes the chunks `next` yields to `path` (or standard output when `None`). A file
/// is written next to its target and renamed at the end, so a failed transfer leaves
/// no file; `buffer` is the write buffer's size.
pub async fn write_chunks(
    path: Option<&std::path::Path>,
    buffer: usize,
    mut next: impl AsyncFnMut() -> anyhow::Result<Option<Vec<u8>>>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let (mut out, tmp): (Box<dyn Write>, Option<std::path::PathBuf>) = match path {
        Some(path) => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let tmp = dir.unwrap_or(std::path::Path::new(".")).join(format!(
                ".{}.{}.tmp",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
                std::process::id()
            ));
            let f = std::fs::File::create(&tmp)
                .map_err(|e| anyhow::anyhow!("create {}: {e}", tmp.display()))?;
            (
                Box::new(std::io::BufWriter::with_capacity(buffer, f)),
                Some(tmp),
            )
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let result: anyhow::Result<()> = async {
        while let Some(data) = next().await? {
            out.write_all(&data)?;
        }
        out.flush()?;
        Ok(())
    }
    .await;
    drop(out);
    match (result, tmp, path) {
        (Ok(()), Some(tmp), Some(path)) => std::fs::rename(&tmp, path)
            .map_err(|e| anyhow::anyhow!("rename {} to {}: {e}", tmp.display(), path.display())),
        (Err(e), Some(tmp), _) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
        (r, _, _) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_550), "4.26MB");
        assert_eq!(human_size(1_240_000), "1.24MB");
        assert_eq!(human_size(745_000), "745kB");
        assert_eq!(human_size(5_000_000), "5MB");
        assert_eq!(human_size(12_345_678_901), "12.3GB");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(100 * 86400), "3 months");
        assert_eq!(
            docker_time(1_704_164_645_000_000_000),
            "2024-01-02 03:04:05 +0000 UTC"
        );
    }
}
