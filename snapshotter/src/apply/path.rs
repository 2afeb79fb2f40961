//! Normalising the paths written in tar entries: relative, no `..`, no NUL.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// A normalised relative path: non-empty components without `.`/`..`.
pub(crate) type Components = Vec<OsString>;

/// Splits a tar path into safe components; the error says why the path is refused.
/// An empty result is the root itself (`./`, `.`).
pub(crate) fn normalize(raw: &[u8]) -> Result<Components, &'static str> {
    if raw.starts_with(b"/") {
        return Err("absolute paths are not allowed");
    }
    if raw.contains(&0) {
        return Err("NUL byte in path");
    }
    let mut out = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => continue,
            b".." => return Err("'..' components are not allowed"),
            p => out.push(OsStr::from_bytes(p).to_os_string()),
        }
    }
    Ok(out)
}

/// `a/b/c` from components.
pub(crate) fn join(components: &[OsString]) -> OsString {
    let mut out = Vec::new();
    for (i, c) in components.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    OsString::from_vec(out)
}

/// Checks a single name (a whiteout target): non-empty, no `/`, not `.` or `..`.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<Vec<String>, &'static str> {
        normalize(s.as_bytes()).map(|v| v.into_iter().map(|c| c.into_string().unwrap()).collect())
    }

    #[test]
    fn normalizes() {
        assert_eq!(n("./usr/bin/").unwrap(), vec!["usr", "bin"]);
        assert_eq!(n("a//b/./c").unwrap(), vec!["a", "b", "c"]);
        assert!(n("./").unwrap().is_empty());
        assert!(n("/etc/passwd").is_err());
        assert!(n("a/../../etc").is_err());
        assert!(n("..").is_err());
        assert!(normalize(b"a\0b").is_err());
    }

    #[test]
    fn names() {
        assert!(valid_name(b"x"));
        assert!(!valid_name(b".."));
        assert!(!valid_name(b""));
        assert!(!valid_name(b"a/b"));
    }
}
