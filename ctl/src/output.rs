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
