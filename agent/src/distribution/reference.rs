//! Image references as docker writes them: `name`, `name:tag`, `name@digest`,
//! `name:tag@digest`, `host[:port]/path/name:tag`, parsed, validated and normalised
//! (`busybox` -> `docker.io/library/busybox:latest`), and shown back in docker's short
//! "familiar" form (`busybox:latest`).
//!
//! Rules (docker's): the first path component is a registry host when it contains `.` or
//! `:`, is `localhost`, or has upper-case letters; otherwise the registry is `docker.io`,
//! where one-component names live under `library/`. Repository path components are
//! lower-case letters and digits joined by `.`, `_`, `__` or runs of `-`; the whole name is
//! at most 255 characters. A tag is `[\w][\w.-]{0,127}`. A digest is `sha256:<64 hex>` or
//! `sha512:<128 hex>`.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;
use super::error::{Error, Result};

/// The registry of references without a host.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The namespace of one-component names on docker.io.
pub const OFFICIAL_NAMESPACE: &str = "library";
/// The tag of references that name neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository name, registry included.
pub const MAX_NAME_LENGTH: usize = 255;
/// Longest tag.
pub const MAX_TAG_LENGTH: usize = 128;

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference and normalises it; with neither tag nor digest the tag is
    /// `latest`.
    pub fn parse(s: &str) -> Result<Reference> {
        let mut r = Self::parse_any(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses a repository name without tag or digest (`busybox`, `host:5000/a/b`), for
    /// operations on a whole repository such as listing its tags.
    pub fn parse_name(s: &str) -> Result<Reference> {
        let r = Self::parse_any(s)?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(invalid(
                s,
                "expected a repository name without tag or digest",
            ));
        }
        Ok(r)
    }

    /// Parses without adding the default tag.
    fn parse_any(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(invalid(s, "the reference is empty"));
        }
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                s,
                "a 64-character hexadecimal string is an image ID, not a repository name",
            ));
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(s, &format!("it contains {c:?}")));
        }

        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                if d.is_empty() {
                    return Err(invalid(s, "the digest after '@' is empty"));
                }
                let digest = Digest::parse(d).map_err(|e| match e {
                    Error::InvalidDigest { reason, .. } => {
                        invalid(s, &format!("digest {d:?}: {reason}"))
                    }
                    other => other,
                })?;
                (rest, Some(digest))
            }
            None => (s, None),
        };

        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(&rest[i + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(s, tag)?;
        }
        if name.is_empty() {
            return Err(invalid(s, "the repository name is empty"));
        }

        let (registry, path) = split_registry(name);
        let registry = match registry {
            Some(host) => {
                validate_host(s, host)?;
                let host = host.to_ascii_lowercase();
                if host == "index.docker.io" || host == "registry-1.docker.io" {
                    DEFAULT_REGISTRY.to_string()
                } else {
                    host
                }
            }
            None => DEFAULT_REGISTRY.to_string(),
        };
        validate_path(s, path)?;
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}/{path}")
        } else {
            path.to_string()
        };
        let full = registry.len() + 1 + repository.len();
        if full > MAX_NAME_LENGTH {
            return Err(invalid(
                s,
                &format!(
                    "the repository name is {full} characters long, more than {MAX_NAME_LENGTH}"
                ),
            ));
        }
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry host, with its port (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, no tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What a manifest request names: the digest when there is one, else the tag
    /// (`latest` when neither was given).
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// This repository with `tag` instead of any tag or digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        validate_tag(tag, tag)?;
        Ok(Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// This reference pinned to `digest` (the tag is kept, as in `name:tag@digest`).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The repository alone, without tag or digest.
    pub fn without_object(&self) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: None,
        }
    }

    /// The short name docker shows: `busybox`, `user/repo`, `host:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The short form docker shows: `busybox:latest`, `busybox@sha256:...`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        push_object(&mut s, self.tag.as_deref(), self.digest.as_ref());
        s
    }
}

impl fmt::Display for Reference {
    /// The full normalised form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        push_object(&mut s, self.tag.as_deref(), self.digest.as_ref());
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

fn push_object(s: &mut String, tag: Option<&str>, digest: Option<&Digest>) {
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(&d.to_string());
    }
}

fn invalid(reference: &str, reason: &str) -> Error {
    Error::InvalidReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    }
}

/// Splits a registry host off `name` when the first component is one.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// Checks a tag: `[\w][\w.-]{0,127}`.
fn validate_tag(reference: &str, tag: &str) -> Result<()> {
    if tag.is_empty() {
        return Err(invalid(reference, "the tag after ':' is empty"));
    }
    if tag.len() > MAX_TAG_LENGTH {
        return Err(invalid(
            reference,
            &format!(
                "tag {tag:?} is {} characters long, more than {MAX_TAG_LENGTH}",
                tag.len()
            ),
        ));
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let first = chars.next().unwrap_or_default();
    if !word(first) {
        return Err(invalid(
            reference,
            &format!("tag {tag:?} must start with a letter, digit or '_'"),
        ));
    }
    if let Some(c) = chars.find(|&c| !(word(c) || c == '.' || c == '-')) {
        return Err(invalid(
            reference,
            &format!("tag {tag:?} contains {c:?}; tags are letters, digits, '_', '.' and '-'"),
        ));
    }
    Ok(())
}

/// Checks a registry host: DNS-like labels or a bracketed IPv6 address, optional port.
fn validate_host(reference: &str, host: &str) -> Result<()> {
    let bad = |why: &str| invalid(reference, &format!("registry host {host:?}: {why}"));
    let (addr, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("unclosed '[' in IPv6 address"))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address"));
        }
        match after {
            "" => (None, None),
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(bad("expected ':port' after the IPv6 address")),
            },
        }
    } else {
        match host.split_once(':') {
            Some((a, p)) => (Some(a), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5)
    {
        return Err(bad("the port must be a number"));
    }
    if let Some(addr) = addr {
        if addr.is_empty() {
            return Err(bad("the host name is empty"));
        }
        for label in addr.split('.') {
            let ok = !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(bad(
                    "host names are letters, digits and '-' in labels joined by '.'",
                ));
            }
        }
    }
    Ok(())
}

/// Checks the repository path: lower-case components joined by '/'.
fn validate_path(reference: &str, path: &str) -> Result<()> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(invalid(reference, "repository name must be lowercase"));
    }
    for component in path.split('/') {
        if !valid_component(component) {
            let why = if component.is_empty() {
                "the repository path has an empty component".to_string()
            } else {
                format!(
                    "repository path component {component:?} is invalid: use lower-case \
                     letters and digits, joined by '.', '_', '__' or '-'"
                )
            };
            return Err(invalid(reference, &why));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalises_valid_references() {
        let d512 = format!("sha512:{}", "0".repeat(128));
        type Case<'a> = (
            String,
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<String>,
            String,
        );
        let cases: Vec<Case> = vec![
            // input, registry, repository, tag, digest, familiar
            (
                "busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
                "busybox:latest".into(),
            ),
            (
                "busybox:1.36".into(),
                "docker.io",
                "library/busybox",
                Some("1.36"),
                None,
                "busybox:1.36".into(),
            ),
            (
                "user/repo".into(),
                "docker.io",
                "user/repo",
                Some("latest"),
                None,
                "user/repo:latest".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
                "busybox:latest".into(),
            ),
            (
                "index.docker.io/library/busybox:x".into(),
                "docker.io",
                "library/busybox",
                Some("x"),
                None,
                "busybox:x".into(),
            ),
            (
                "docker.io/library/a/b".into(),
                "docker.io",
                "library/a/b",
                Some("latest"),
                None,
                "library/a/b:latest".into(),
            ),
            (
                format!("busybox@{D}"),
                "docker.io",
                "library/busybox",
                None,
                Some(D.into()),
                format!("busybox@{D}"),
            ),
            (
                format!("busybox:1@{D}"),
                "docker.io",
                "library/busybox",
                Some("1"),
                Some(D.into()),
                format!("busybox:1@{D}"),
            ),
            (
                "localhost/foo".into(),
                "localhost",
                "foo",
                Some("latest"),
                None,
                "localhost/foo:latest".into(),
            ),
            (
                "localhost:5000/a/b/c:v1.0-rc_1".into(),
                "localhost:5000",
                "a/b/c",
                Some("v1.0-rc_1"),
                None,
                "localhost:5000/a/b/c:v1.0-rc_1".into(),
            ),
            (
                "127.0.0.1:5000/x".into(),
                "127.0.0.1:5000",
                "x",
                Some("latest"),
                None,
                "127.0.0.1:5000/x:latest".into(),
            ),
            (
                "Registry.Example.com/team/app:_t".into(),
                "registry.example.com",
                "team/app",
                Some("_t"),
                None,
                "registry.example.com/team/app:_t".into(),
            ),
            (
                "[::1]:5000/img".into(),
                "[::1]:5000",
                "img",
                Some("latest"),
                None,
                "[::1]:5000/img:latest".into(),
            ),
            (
                "quay.io/a__b/c.d-e---f:T".into(),
                "quay.io",
                "a__b/c.d-e---f",
                Some("T"),
                None,
                "quay.io/a__b/c.d-e---f:T".into(),
            ),
            (
                format!("h.io/x@{d512}"),
                "h.io",
                "x",
                None,
                Some(d512.clone()),
                format!("h.io/x@{d512}"),
            ),
        ];
        for (input, registry, repository, tag, digest, familiar) in cases {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.repository(), repository, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest().map(|d| d.to_string()), digest, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            // The full form parses back to the same reference.
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{input}");
        }
        assert_eq!(
            Reference::parse("busybox").unwrap().to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(Reference::parse(&format!("a@{D}")).unwrap().object(), D);
        assert_eq!(Reference::parse("a:v2").unwrap().object(), "v2");
    }

    #[test]
    fn refuses_malformed_references() {
        let long_tag = format!("busybox:{}", "t".repeat(129));
        let long_name = format!("h.io/{}", "a".repeat(260));
        let image_id = "a".repeat(64);
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            ("BusyBox", "must be lowercase"),
            ("user/Repo", "must be lowercase"),
            ("busybox:", "tag after ':' is empty"),
            ("busybox:-x", "must start with"),
            ("busybox:a+b", "contains '+'"),
            (&long_tag, "more than 128"),
            ("busybox@", "digest after '@' is empty"),
            ("busybox@sha256:abc", "64 hex digits"),
            ("busybox@md5:abc", "unsupported digest algorithm"),
            ("a//b", "empty component"),
            ("/busybox", "empty component"),
            ("busybox/", "empty component"),
            ("a_-b", "is invalid"),
            ("a...b", "is invalid"),
            ("-a", "is invalid"),
            ("a___b", "is invalid"),
            ("host:port/x", "port must be a number"),
            ("h_o.st/x", "host names are"),
            ("[::1/x", "unclosed"),
            ("[zz]:1/x", "not an IPv6"),
            ("bad host/x", "contains ' '"),
            (":tag", "repository name is empty"),
            (&long_name, "more than 255"),
            (&image_id, "image ID"),
        ];
        for (input, want) in cases {
            let err = Reference::parse(input)
                .err()
                .unwrap_or_else(|| panic!("{input:?} parsed"))
                .to_string();
            assert!(err.contains(want), "{input:?}: {err}");
            assert!(err.contains("invalid reference format"), "{input:?}: {err}");
        }
    }

    #[test]
    fn names_and_tags() {
        let r = Reference::parse_name("busybox").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert!(Reference::parse_name("busybox:1").is_err());
        let t = r.with_tag("musl").unwrap();
        assert_eq!(t.familiar(), "busybox:musl");
        assert!(r.with_tag("no/slash").is_err());
        let d = t.with_digest(Digest::parse(D).unwrap());
        assert_eq!(d.object(), D);
        assert_eq!(d.without_object().name(), "docker.io/library/busybox");
    }
}
