//! Volumes and system-wide verbs as docker's commands see them (berth.v1.Volumes, System):
//! docker's filters, removal refused with the names of the containers in the way,
//! pruning, and docker-style events. The objects themselves belong to
//! [`volumes`](crate::volumes).

pub mod system;
pub mod volumes;

use crate::error::{Error, Result};

/// `KEY=VALUE` filters split, each key checked against `keys`.
pub fn parse_filters<'a>(filters: &'a [String], keys: &[&str]) -> Result<Vec<(&'a str, &'a str)>> {
    filters
        .iter()
        .map(|f| {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                Error::InvalidArgument(format!("bad format of filter {f:?} (expected name=value)"))
            })?;
            // `label!=` arrives split at its `=`.
            let k = k.trim();
            if !keys.contains(&k) {
                return Err(Error::InvalidArgument(format!(
                    "invalid filter {k:?} (one of {})",
                    keys.join(", ")
                )));
            }
            Ok((k, v))
        })
        .collect()
}

/// A `label=KEY[=VALUE]` filter against labels.
pub fn label_matches<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    filter: &str,
) -> bool {
    let (key, value) = match filter.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (filter, None),
    };
    labels
        .into_iter()
        .any(|(k, v)| k == key && value.is_none_or(|want| v == want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_labels() {
        let f = vec!["label!=a=b".to_string(), "name=x".to_string()];
        let p = parse_filters(&f, &["label!", "name"]).unwrap();
        assert_eq!(p, vec![("label!", "a=b"), ("name", "x")]);
        assert!(parse_filters(&["bogus=1".to_string()], &["name"]).is_err());
        let labels: std::collections::BTreeMap<String, String> =
            [("a".to_string(), "b".to_string())].into();
        assert!(label_matches(&labels, "a"));
        assert!(label_matches(&labels, "a=b"));
        assert!(!label_matches(&labels, "a=c"));
    }
}
