//! containerd's identifier rules, used for namespaces, containers, leases and snapshots
//! keys that become path components: runs of letters and digits joined by single `.`,
//! `_` or `-`, at most 76 characters.

use crate::error::{Error, Result};

/// Longest accepted identifier.
pub const MAX_LENGTH: usize = 76;

/// Checks an identifier; `what` names the kind of object in the message.
pub fn validate(what: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{what} identifier must not be empty"
        )));
    }
    if id.len() > MAX_LENGTH {
        return Err(Error::InvalidArgument(format!(
            "{what} identifier {id:?} is {} characters long, more than {MAX_LENGTH}",
            id.len()
        )));
    }
    let bytes = id.as_bytes();
    let mut prev_sep = true;
    for &b in bytes {
        let sep = matches!(b, b'.' | b'_' | b'-');
        if sep && prev_sep || !(sep || b.is_ascii_alphanumeric()) {
            return Err(invalid(what, id));
        }
        prev_sep = sep;
    }
    if prev_sep {
        return Err(invalid(what, id));
    }
    Ok(())
}

fn invalid(what: &str, id: &str) -> Error {
    Error::InvalidArgument(format!(
        "{what} identifier {id:?} is invalid: use letters and digits, joined by single '.', '_' or '-'"
    ))
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_containerd_identifiers() {
        for ok in [
            "default",
            "k8s.io",
            "a",
            "a-b_c.d",
            "A1",
            "0",
            "x".repeat(76).as_str(),
        ] {
            validate("namespace", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn rejects_bad_identifiers() {
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a/b",
            "a b",
            "é",
            ".",
            "x".repeat(77).as_str(),
        ] {
            assert!(validate("namespace", bad).is_err(), "{bad:?} accepted");
        }
    }
}
