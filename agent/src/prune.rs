//! docker's prune filters, shared by `container prune`, `image prune` and `network
//! prune`: `until=` (created before) and `label=` / `label!=`.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::images::list::{Filters, labels_match};

/// The `until`, `label` and `label!` values of a parsed filter list.
#[derive(Debug, Default)]
pub struct PruneFilter {
    until: Vec<i64>,
    labels: Vec<String>,
    not_labels: Vec<String>,
}

impl PruneFilter {
    /// Reads the prune keys of `f` (which may hold other keys, such as `dangling`).
    pub fn from_filters(f: &Filters) -> Result<PruneFilter> {
        Ok(PruneFilter {
            until: f
                .get("until")
                .iter()
                .map(|v| parse_until(v))
                .collect::<Result<_>>()?,
            labels: f.get("label").to_vec(),
            not_labels: f.get("label!").to_vec(),
        })
    }

    /// Parses `filters`, which may use only the prune keys.
    pub fn parse(filters: &[String]) -> Result<PruneFilter> {
        PruneFilter::from_filters(&Filters::parse(filters, &["until", "label", "label!"])?)
    }

    /// Whether an object with these labels, created at `created` (Unix nanoseconds),
    /// passes: created before every `until`, and matching the label filters.
    pub fn passes(&self, labels: &BTreeMap<String, String>, created: i64) -> bool {
        self.until.iter().all(|u| created < *u)
            && labels_match(labels, &self.labels, false)
            && labels_match(labels, &self.not_labels, true)
    }
}

/// `until=`: an RFC 3339 time, Unix seconds, or a duration before now (`24h`).
pub fn parse_until(v: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return t
            .timestamp_nanos_opt()
            .ok_or_else(|| Error::InvalidArgument(format!("until={v} is out of range")));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return Ok((secs * 1e9) as i64);
    }
    let d = humantime::parse_duration(v).map_err(|e| {
        Error::InvalidArgument(format!(
            "invalid filter 'until={v}': expected a time, Unix seconds or a duration like 24h ({e})"
        ))
    })?;
    let now = berth_api::time::to_unix_nanos(std::time::SystemTime::now());
    Ok(now - d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_values() {
        assert_eq!(
            parse_until("2024-01-02T00:00:00Z").unwrap(),
            1_704_153_600_000_000_000
        );
        assert_eq!(parse_until("10").unwrap(), 10_000_000_000);
        let now = berth_api::time::to_unix_nanos(std::time::SystemTime::now());
        let t = parse_until("1h").unwrap();
        assert!((now - t - 3_600_000_000_000).abs() < 5_000_000_000);
        assert!(parse_until("soon").is_err());
    }

    #[test]
    fn passes_until_and_labels() {
        let f = PruneFilter::parse(&[
            "until=100".into(),
            "label=team".into(),
            "label!=keep=yes".into(),
        ])
        .unwrap();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let old = 99 * 1_000_000_000;
        assert!(f.passes(&labels(&[("team", "a")]), old));
        assert!(!f.passes(&labels(&[("team", "a")]), 100 * 1_000_000_000));
        assert!(!f.passes(&labels(&[]), old));
        assert!(!f.passes(&labels(&[("team", "a"), ("keep", "yes")]), old));
        assert!(PruneFilter::parse(&["dangling=true".into()]).is_err());
    }
}
