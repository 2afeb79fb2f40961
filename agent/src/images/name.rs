//! Image names: docker-style references (`[host[:port]/]path[:tag][@digest]`), as
//! containerd and docker store them (`docker.io/library/busybox:latest`).

use std::sync::OnceLock;

use regex::Regex;

use crate::error::{Error, Result};

/// Longest accepted name, tag and digest included.
pub const MAX_LENGTH: usize = 512;
/// Longest repository part (docker's limit).
const MAX_REPOSITORY: usize = 255;

fn grammar() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let domain_part = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let domain =
            format!(r"(?:{domain_part}(?:\.{domain_part})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?");
        let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
        // ASCII word characters, as docker's grammar means them. A Unicode `\w` repeated
        // 127 times compiles to a 7 MiB automaton that berthd would keep forever.
        let tag = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
        let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
        Regex::new(&format!(
            r"^(?P<repo>(?:{domain}/)?{component}(?:/{component})*)(?::{tag})?(?:@{digest})?$"
        ))
        .expect("reference grammar compiles")
    })
}

/// Checks an image name.
pub fn validate(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument(
            "image name must not be empty".into(),
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::InvalidArgument(format!(
            "image name {name:?} contains the character {c:?}; names cannot hold spaces or control characters"
        )));
    }
    if name.len() > MAX_LENGTH {
        return Err(Error::InvalidArgument(format!(
            "image name is {} bytes long, more than {MAX_LENGTH}",
            name.len()
        )));
    }
    let Some(caps) = grammar().captures(name) else {
        return Err(Error::InvalidArgument(format!(
            "image name {name:?} is not a valid reference: expected [host[:port]/]path[:tag][@digest] \
             with a lower-case path such as docker.io/library/busybox:latest"
        )));
    };
    let repo = caps.name("repo").map_or("", |m| m.as_str());
    // Only a first component that looks like a host (a dot, a port, localhost) may
    // have upper-case letters.
    if let Some((first, _)) = repo.split_once('/') {
        let host_like = first.contains(['.', ':', '[']) || first == "localhost";
        if !host_like && first.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(Error::InvalidArgument(format!(
                "image name {name:?}: the repository path must be lower-case"
            )));
        }
    }
    if repo.len() > MAX_REPOSITORY {
        return Err(Error::InvalidArgument(format!(
            "image name {name:?}: the repository part is longer than {MAX_REPOSITORY} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_references() {
        for ok in [
            "busybox",
            "busybox:latest",
            "docker.io/library/busybox:latest",
            "127.0.0.1:5000/a/b:1.0",
            "localhost:5000/x_y/z--w",
            "Registry.Example.com/ns/img@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "img:tag@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "import-2024-01-02:latest",
            "[::1]:5000/img:1",
        ] {
            validate(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "a b",
            "a\nb",
            "tab\there",
            "UPPER/case",
            "img:",
            "img@sha256:short",
            "/leading",
            "trailing/",
            "a//b",
            "img:-bad",
            "img:t\u{e9}",
            "-img",
            &format!("x:{}", "t".repeat(129)),
            &"a".repeat(600),
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }
}
