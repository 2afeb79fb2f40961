//! docker's event filters: `type=`, `event=`, `container=`, `image=`, `volume=`,
//! `network=`, `label=`. Values of one key are alternatives; different keys must all
//! match. `container=`, `volume=` and `network=` select events of that type whose actor
//! ID (or a prefix of it) or name is the value; `image=` matches an image event's ID or
//! name, or a container event's image.

use std::collections::BTreeMap;

use super::{Event, Kind};
use crate::error::{Error, Result};

const KEYS: &[&str] = &[
    "type",
    "event",
    "container",
    "image",
    "volume",
    "network",
    "label",
    "scope",
];

/// Parsed `--filter` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    by_key: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// Parses `KEY=VALUE` filters.
    pub fn parse(filters: &[String]) -> Result<EventFilter> {
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in filters {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                Error::InvalidArgument(format!("bad format of filter {f:?} (expected name=value)"))
            })?;
            if !KEYS.contains(&k) {
                return Err(Error::InvalidArgument(format!(
                    "invalid filter {k:?} (one of {})",
                    KEYS.join(", ")
                )));
            }
            if k == "type" && Kind::parse(v).is_none() {
                return Err(Error::InvalidArgument(format!(
                    "invalid event type {v:?} (container, image, volume or network)"
                )));
            }
            by_key.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(EventFilter { by_key })
    }

    fn exact(&self, key: &str, value: &str) -> bool {
        self.by_key
            .get(key)
            .is_none_or(|vs| vs.iter().any(|v| v == value))
    }

    /// A `container=`/`volume=`/`network=` key: events of that type whose actor ID
    /// starts with, or whose name is, one of the values.
    fn fuzzy(&self, key: &str, kind: Kind, e: &Event) -> bool {
        let Some(vs) = self.by_key.get(key) else {
            return true;
        };
        if e.kind != kind {
            return false;
        }
        let name = e.attributes.get("name").map(String::as_str);
        vs.iter()
            .any(|v| (!v.is_empty() && e.actor.starts_with(v.as_str())) || name == Some(v))
    }

    fn image(&self, e: &Event) -> bool {
        let Some(vs) = self.by_key.get("image") else {
            return true;
        };
        let mut candidates: Vec<&str> = Vec::new();
        match e.kind {
            Kind::Image => {
                candidates.push(&e.actor);
                if let Some(n) = e.attributes.get("name") {
                    candidates.push(n);
                }
            }
            Kind::Container => {
                if let Some(i) = e.attributes.get("image") {
                    candidates.push(i);
                }
            }
            _ => return false,
        }
        vs.iter()
            .any(|v| candidates.iter().any(|c| image_matches(c, v)))
    }

    fn labels(&self, e: &Event) -> bool {
        let Some(vs) = self.by_key.get("label") else {
            return true;
        };
        vs.iter().all(|v| match v.split_once('=') {
            Some((k, val)) => e.attributes.get(k).is_some_and(|a| a == val),
            None => e.attributes.contains_key(v.as_str()),
        })
    }

    /// Whether the event passes every filter.
    pub fn matches(&self, e: &Event) -> bool {
        self.exact("type", e.kind.as_str())
            && self.exact("event", &e.action)
            && self.exact("scope", "local")
            && self.fuzzy("container", Kind::Container, e)
            && self.fuzzy("volume", Kind::Volume, e)
            && self.fuzzy("network", Kind::Network, e)
            && self.image(e)
            && self.labels(e)
    }
}

/// Whether the image text `have` (an ID or a name) is what `want` names: equal, equal
/// without a `:latest` tag or a `docker.io/library/` prefix, or an ID prefix.
fn image_matches(have: &str, want: &str) -> bool {
    fn norm(s: &str) -> &str {
        let s = s
            .strip_prefix("docker.io/library/")
            .or_else(|| s.strip_prefix("docker.io/"))
            .unwrap_or(s);
        s.strip_suffix(":latest").unwrap_or(s)
    }
    if have == want || norm(have) == norm(want) {
        return true;
    }
    let hex = have.strip_prefix("sha256:").unwrap_or(have);
    let w = want.strip_prefix("sha256:").unwrap_or(want);
    w.len() >= 4 && w.bytes().all(|b| b.is_ascii_hexdigit()) && hex.starts_with(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::attrs;

    fn ev(kind: Kind, action: &str, actor: &str, a: BTreeMap<String, String>) -> Event {
        Event {
            time: 0,
            namespace: String::new(),
            kind,
            action: action.into(),
            actor: actor.into(),
            attributes: a,
        }
    }

    fn f(v: &[&str]) -> EventFilter {
        EventFilter::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn keys_and_values_combine_like_docker() {
        let start = ev(
            Kind::Container,
            "start",
            "abcdef0123",
            attrs([
                ("name", "web"),
                ("image", "busybox:latest"),
                ("tier", "front"),
            ]),
        );
        let tag = ev(
            Kind::Image,
            "tag",
            "sha256:0123abcd",
            attrs([("name", "busybox:v2")]),
        );
        assert!(f(&[]).matches(&start));
        assert!(f(&["type=container"]).matches(&start));
        assert!(!f(&["type=image"]).matches(&start));
        assert!(f(&["type=image", "type=container"]).matches(&start));
        assert!(f(&["event=start", "event=die"]).matches(&start));
        assert!(!f(&["event=die"]).matches(&start));
        assert!(f(&["container=web"]).matches(&start));
        assert!(f(&["container=abcd"]).matches(&start));
        assert!(!f(&["container=web"]).matches(&tag));
        assert!(f(&["image=busybox"]).matches(&start));
        assert!(f(&["image=0123abcd"]).matches(&tag));
        assert!(f(&["image=busybox:v2"]).matches(&tag));
        assert!(!f(&["image=other"]).matches(&start));
        assert!(f(&["label=tier"]).matches(&start));
        assert!(f(&["label=tier=front"]).matches(&start));
        assert!(!f(&["label=tier=back"]).matches(&start));
        assert!(!f(&["type=container", "event=die"]).matches(&start));
        assert!(EventFilter::parse(&["bogus=1".into()]).is_err());
        assert!(EventFilter::parse(&["type=plugin".into()]).is_err());
        assert!(EventFilter::parse(&["novalue".into()]).is_err());
    }
}
