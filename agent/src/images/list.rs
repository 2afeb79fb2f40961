//! `docker images`: one summary per image ID, newest first, with docker's filters
//! (`dangling`, `reference`, `before`, `since`, `label`).

use std::collections::BTreeMap;

use crate::content::Digest;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::images::catalog::{self, Group, Sizes};

/// One image as `images` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: Digest,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix nanoseconds.
    pub created: i64,
    pub content_size: i64,
    pub unpacked_size: i64,
    pub size: i64,
    /// (chain ID, bytes) of each unpacked layer, see [`Sizes::layers`].
    pub layers: Vec<(String, i64)>,
    pub containers: i64,
    pub labels: BTreeMap<String, String>,
    pub target: Digest,
    pub dangling: bool,
}

/// Parsed `key=value` filters: keys AND, values of one key OR.
#[derive(Debug, Clone, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses filters; only `allowed` keys are accepted.
    pub fn parse(filters: &[String], allowed: &[&str]) -> Result<Filters> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in filters {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                Error::InvalidArgument(format!("bad format of filter (expected name=value): {f}"))
            })?;
            let k = k.trim().to_ascii_lowercase();
            if !allowed.contains(&k.as_str()) {
                return Err(Error::InvalidArgument(format!("invalid filter '{k}'")));
            }
            m.entry(k).or_default().push(v.to_string());
        }
        Ok(Filters(m))
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The one boolean value of `key`, if given.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            [] => Ok(None),
            [v] => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(Error::InvalidArgument(format!(
                    "invalid filter '{key}={v}': expected true or false"
                ))),
            },
            _ => Err(Error::InvalidArgument(format!(
                "filter '{key}' can be given once"
            ))),
        }
    }
}

/// Whether `labels` pass every `label=` filter (`KEY` present, or `KEY=VALUE`); with
/// `negate` (`label!=`), whether they fail every one.
pub fn labels_match(labels: &BTreeMap<String, String>, wanted: &[String], negate: bool) -> bool {
    wanted.iter().all(|w| {
        let hit = match w.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(w.as_str()),
        };
        hit != negate
    })
}

/// Go's `path.Match`: `*` and `?` do not match `/`; `[...]` classes with ranges and `^`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, length consumed including ']').
        let mut i = 0;
        let negate = matches!(p.first(), Some('^' | '!'));
        if negate {
            i += 1;
        }
        let mut hit = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((hit != negate, i + 1));
            }
            first = false;
            let mut lo = p[i];
            if lo == '\\' && i + 1 < p.len() {
                i += 1;
                lo = p[i];
            }
            let mut hi = lo;
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                hi = p[i + 2];
                i += 2;
            }
            if lo <= c && c <= hi {
                hit = true;
            }
            i += 1;
        }
        None
    }
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => {
                let rest = &p[1..];
                for k in 0..=t.len() {
                    if go(rest, &t[k..]) {
                        return true;
                    }
                    if k < t.len() && t[k] == '/' {
                        break;
                    }
                }
                false
            }
            Some('?') => !t.is_empty() && t[0] != '/' && go(&p[1..], &t[1..]),
            Some('[') => match (t.first(), class(&p[1..], *t.first().unwrap_or(&'\0'))) {
                (Some(&c), Some((true, n))) if c != '/' => go(&p[1 + n..], &t[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// Whether any of the image's tags matches `pattern` (docker's reference filter: the
/// familiar `repo:tag`, else the familiar repository name).
fn reference_match(group: &Group, pattern: &str) -> bool {
    group.entries.iter().any(|e| {
        if e.is_dangling() {
            return false;
        }
        match e.reference() {
            Some(r) => {
                glob_match(pattern, &r.familiar())
                    || glob_match(pattern, &r.familiar_name())
                    || glob_match(pattern, &r.to_string())
            }
            None => glob_match(pattern, &e.record.name),
        }
    })
}

/// Whether a familiar `repo:tag` (or `repo`) matches a reference pattern.
fn name_match(pattern: &str, name: &str) -> bool {
    if glob_match(pattern, name) {
        return true;
    }
    let repo = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => r,
        _ => name,
    };
    glob_match(pattern, repo)
        || crate::distribution::Reference::parse(name)
            .is_ok_and(|r| glob_match(pattern, &r.to_string()))
}

/// The summary of one group.
pub async fn summary(core: &Core, ns: &str, g: &Group, snapshotter: &str) -> Result<Summary> {
    let sizes = match g.image() {
        Some(i) => catalog::sizes(core, ns, i, snapshotter).await,
        None => Sizes::default(),
    };
    let repo_tags = g.repo_tags();
    let repo_digests = g.repo_digests(core, ns);
    let dangling = repo_tags.is_empty() && repo_digests.is_empty();
    let containers = catalog::containers_using(core, ns, &g.names())?.len() as i64;
    Ok(Summary {
        id: g.id.clone(),
        repo_tags,
        repo_digests,
        created: g.created(),
        content_size: sizes.content,
        unpacked_size: sizes.unpacked,
        size: sizes.shown(),
        layers: sizes.layers,
        containers,
        labels: g
            .image()
            .and_then(|i| i.config.config.as_ref())
            .and_then(|c| c.labels.clone())
            .unwrap_or_default(),
        target: g
            .entries
            .first()
            .map(|e| e.record.target.digest.clone())
            .unwrap_or_else(|| g.id.clone()),
        dangling,
    })
}

/// The images of `ns` that pass `filters`, newest first. `all` is accepted for docker's
/// `-a` (berth keeps no intermediate images).
pub async fn list(core: &Core, ns: &str, _all: bool, filters: &[String]) -> Result<Vec<Summary>> {
    let f = Filters::parse(
        filters,
        &[
            "dangling",
            "reference",
            "before",
            "since",
            "label",
            "label!",
        ],
    )?;
    let groups = catalog::groups(core, ns).await?;
    let time_of = |what: &str, input: &str| -> Result<i64> {
        catalog::find_in(core, ns, groups.clone(), input)
            .map(|found| found.group.created())
            .map_err(|e| match e {
                Error::NotFound(_) | Error::Missing(_) => Error::InvalidArgument(format!(
                    "invalid filter '{what}={input}': No such image: {input}"
                )),
                other => other,
            })
    };
    let before: Vec<i64> = f
        .get("before")
        .iter()
        .map(|v| time_of("before", v))
        .collect::<Result<_>>()?;
    let since: Vec<i64> = f
        .get("since")
        .iter()
        .map(|v| time_of("since", v))
        .collect::<Result<_>>()?;
    let dangling = f.bool("dangling")?;
    let mut out = Vec::new();
    for g in &groups {
        let mut s = summary(core, ns, g, "").await?;
        if let Some(d) = dangling
            && s.dangling != d
        {
            continue;
        }
        // Without a dangling filter, docker lists dangling images too (as <none>).
        // With reference filters, only the matching names are listed.
        let refs = f.get("reference");
        if !refs.is_empty() {
            if !refs.iter().any(|p| reference_match(g, p)) {
                continue;
            }
            let keep = |name: &str| refs.iter().any(|p| name_match(p, name));
            s.repo_tags.retain(|t| keep(t));
            s.repo_digests
                .retain(|d| keep(d.split_once('@').map_or(d.as_str(), |(r, _)| r)));
        }
        if before.iter().any(|t| s.created >= *t) || since.iter().any(|t| s.created <= *t) {
            continue;
        }
        if !labels_match(&s.labels, f.get("label"), false)
            || !labels_match(&s.labels, f.get("label!"), true)
        {
            continue;
        }
        out.push(s);
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("*", "library/busybox"));
        assert!(glob_match("*/*", "library/busybox"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(glob_match("[a-c]usybox", "busybox"));
        assert!(!glob_match("[^a-c]usybox", "busybox"));
        assert!(!glob_match("busy", "busybox"));
        assert!(glob_match("", ""));
    }

    #[test]
    fn filters_parse_and_labels_match() {
        let f = Filters::parse(
            &["dangling=true".into(), "label=a=1".into(), "label=b".into()],
            &["dangling", "label"],
        )
        .unwrap();
        assert_eq!(f.bool("dangling").unwrap(), Some(true));
        assert_eq!(f.get("label").len(), 2);
        let e = Filters::parse(&["nope=1".into()], &["dangling"]).unwrap_err();
        assert!(e.to_string().contains("invalid filter 'nope'"), "{e}");
        assert!(Filters::parse(&["x".into()], &["x"]).is_err());
        let labels: BTreeMap<String, String> =
            [("a".to_string(), "1".to_string()), ("b".into(), "".into())]
                .into_iter()
                .collect();
        assert!(labels_match(&labels, &["a=1".into(), "b".into()], false));
        assert!(!labels_match(&labels, &["a=2".into()], false));
        assert!(labels_match(&labels, &["c".into()], true));
        assert!(!labels_match(&labels, &["a".into()], true));
    }
}
