//! Registry questions that are not about one image: `search` (a registry's catalog) and
//! `login` (checking credentials; the client stores them).

use crate::core::Core;
use crate::distribution::Credentials;
use crate::distribution::reference::DEFAULT_REGISTRY;
use crate::error::{Error, Result};

/// One search hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    /// `repo` on docker.io, `host/repo` elsewhere.
    pub name: String,
}

/// Splits `HOST/TERM` into the registry and the term; a term without a host-like first
/// component searches docker.io.
pub fn split_term(term: &str) -> (String, String) {
    if let Some((first, rest)) = term.split_once('/')
        && (first.contains(['.', ':']) || first == "localhost")
    {
        return (first.to_ascii_lowercase(), rest.to_string());
    }
    (DEFAULT_REGISTRY.to_string(), term.to_string())
}

/// Repositories of the registry named in `term` whose names contain the term.
pub async fn search(
    core: &Core,
    term: &str,
    credentials: Option<Credentials>,
    limit: Option<usize>,
) -> Result<Vec<SearchResult>> {
    let (registry, what) = split_term(term);
    if what.contains(char::is_whitespace) {
        return Err(Error::InvalidArgument(format!(
            "search term {what:?} must not contain spaces"
        )));
    }
    let names = core
        .registry
        .search(&registry, &what, credentials, limit)
        .await?;
    Ok(names
        .into_iter()
        .map(|n| SearchResult {
            name: if registry == DEFAULT_REGISTRY {
                n
            } else {
                format!("{registry}/{n}")
            },
        })
        .collect())
}

/// Checks `credentials` against `server` (a host; empty: docker.io).
pub async fn login(core: &Core, server: &str, credentials: &Credentials) -> Result<()> {
    let server = normalize_server(server);
    core.registry.login(&server, credentials).await?;
    Ok(())
}

/// A login server as a registry host: scheme and path dropped, docker.io's spellings
/// made `docker.io`.
pub fn normalize_server(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "" | "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY.to_string(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_and_servers() {
        assert_eq!(
            split_term("busybox"),
            ("docker.io".to_string(), "busybox".to_string())
        );
        assert_eq!(
            split_term("localhost:5000/bu"),
            ("localhost:5000".to_string(), "bu".to_string())
        );
        assert_eq!(
            split_term("library/busybox"),
            ("docker.io".to_string(), "library/busybox".to_string())
        );
        assert_eq!(normalize_server("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_server("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
