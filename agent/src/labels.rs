//! Labels: validation and field-mask updates shared by every labelled object.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Largest key plus value of one label, in bytes (containerd's limit).
pub const MAX_LABEL_SIZE: usize = 4096;

/// Labels of an object.
pub type Labels = BTreeMap<String, String>;

/// Checks every label's size and that keys are not empty.
pub fn validate(labels: &Labels) -> Result<()> {
    for (k, v) in labels {
        if k.is_empty() {
            return Err(Error::InvalidArgument("label key must not be empty".into()));
        }
        if k.len() + v.len() > MAX_LABEL_SIZE {
            return Err(Error::InvalidArgument(format!(
                "label {k:?}: key and value are {} bytes, more than the limit of {MAX_LABEL_SIZE}",
                k.len() + v.len()
            )));
        }
    }
    Ok(())
}

/// Applies the label part of an update mask.
///
/// `labels.<key>` sets that key from `update` (or removes it when `update` has no value
/// or an empty one); `labels` replaces all labels. Returns `Ok(false)` if `path` is not
/// about labels, so the caller can handle its own fields.
pub fn apply_mask_path(current: &mut Labels, update: &Labels, path: &str) -> Result<bool> {
    if path == "labels" {
        *current = update.clone();
        return Ok(true);
    }
    let Some(key) = path.strip_prefix("labels.") else {
        return Ok(false);
    };
    if key.is_empty() {
        return Err(Error::InvalidArgument(
            "field path \"labels.\" names no label".into(),
        ));
    }
    match update.get(key) {
        Some(v) if !v.is_empty() => {
            current.insert(key.to_string(), v.clone());
        }
        _ => {
            current.remove(key);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn mask_paths() {
        let mut cur = labels(&[("a", "1"), ("b", "2")]);
        let upd = labels(&[("a", "9"), ("c", "3"), ("b", "")]);
        assert!(apply_mask_path(&mut cur, &upd, "labels.a").unwrap());
        assert!(apply_mask_path(&mut cur, &upd, "labels.b").unwrap());
        assert!(apply_mask_path(&mut cur, &upd, "labels.zz").unwrap());
        assert_eq!(cur, labels(&[("a", "9")]));
        assert!(apply_mask_path(&mut cur, &upd, "labels").unwrap());
        assert_eq!(cur, upd);
        assert!(!apply_mask_path(&mut cur, &upd, "target").unwrap());
    }

    #[test]
    fn oversized_label_is_refused() {
        let big = labels(&[("k", &"v".repeat(MAX_LABEL_SIZE))]);
        assert!(validate(&big).unwrap_err().to_string().contains("\"k\""));
        assert!(validate(&labels(&[("", "v")])).is_err());
    }
}
