//! Container names and IDs: docker's name rule, generated names for containers created
//! without one, and random 64-hex IDs.

use super::store::Store;
use crate::error::{Error, Result};

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring",
    "eager", "fearless", "gentle", "golden", "happy", "jolly", "keen", "kind", "lively", "lucid",
    "merry", "nimble", "noble", "patient", "proud", "quick", "quiet", "rapid", "serene", "sharp",
    "steady", "swift", "tidy", "vivid", "wise", "zealous",
];

const NOUNS: &[&str] = &[
    "anchor",
    "beacon",
    "buoy",
    "cargo",
    "compass",
    "current",
    "dock",
    "estuary",
    "ferry",
    "harbor",
    "helm",
    "island",
    "jetty",
    "keel",
    "lagoon",
    "lighthouse",
    "mast",
    "mooring",
    "narrows",
    "pier",
    "pilot",
    "quay",
    "reef",
    "rudder",
    "sail",
    "schooner",
    "shoal",
    "skiff",
    "sound",
    "strait",
    "tide",
    "tugboat",
    "wharf",
    "yacht",
];

/// docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading '/' is
/// dropped).
pub fn validate(name: &str) -> Result<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && n.len() >= 2
        && n.len() <= 253
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return Err(Error::InvalidArgument(format!(
            "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters"
        )));
    }
    Ok(n.to_string())
}

/// A fresh random container ID (64 hex digits) that is not all digits, so it can never
/// be mistaken for a number.
pub fn new_id() -> String {
    loop {
        let id = hex::encode(rand::random::<[u8; 32]>());
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return id;
        }
    }
}

/// A generated name (`adjective_noun`, with a number when those are taken) free in `ns`.
pub fn generate(store: &Store, ns: &str) -> Result<String> {
    for attempt in 0..64u32 {
        let a = ADJECTIVES[rand::random_range(0..ADJECTIVES.len())];
        let n = NOUNS[rand::random_range(0..NOUNS.len())];
        let name = if attempt < 8 {
            format!("{a}_{n}")
        } else {
            format!("{a}_{n}{}", rand::random_range(0..1000))
        };
        if !store.name_taken(ns, &name)? {
            return Ok(name);
        }
    }
    Err(Error::Internal(format!(
        "could not find a free container name in namespace {ns}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_name_rule() {
        assert_eq!(validate("/web").unwrap(), "web");
        assert_eq!(validate("a.b_c-1").unwrap(), "a.b_c-1");
        for bad in ["", "/", "a", "-web", "we b", "a/b", "_x"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
    }

    #[test]
    fn generated_names_are_valid() {
        let dir = tempfile::tempdir().unwrap();
        let md = std::sync::Arc::new(
            crate::metadata::Metadata::open(&dir.path().join("m.redb")).unwrap(),
        );
        let store = Store::open(md).unwrap();
        let n = generate(&store, "ns").unwrap();
        assert!(validate(&n).is_ok(), "{n}");
        assert!(n.contains('_'));
    }
}
