//! Where requests for a registry go: its mirrors (pulls only) and then the host itself,
//! over HTTPS or plain HTTP, each with an HTTP client carrying that host's TLS settings.
//!
//! Plain HTTP is used only where configured (`plain_http = true`) and, by default, for
//! loopback hosts (127.0.0.0/8, ::1, `localhost`), as docker allows. berth does not try
//! HTTPS first for those: a local registry is almost always plain HTTP, and one protocol
//! per host keeps failures easy to read. Set `plain_http = false` to force HTTPS there.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use super::error::{Error, Result};
use crate::config::{RegistryConfig, RegistryHostConfig};

/// The real endpoint of `docker.io`.
pub const DOCKER_HUB_ENDPOINT: &str = "https://registry-1.docker.io";

/// One place requests for a registry can be sent.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Base URL without `/v2/` (`https://registry-1.docker.io`, `http://127.0.0.1:5000`,
    /// or a mirror URL, which may carry a path prefix).
    pub base: Url,
    /// The registry this endpoint serves, as written in references.
    pub registry: String,
    /// True for a configured mirror (no credentials are sent to mirrors).
    pub mirror: bool,
    pub(crate) client: reqwest::Client,
    /// The configured connect and read timeouts, for messages.
    pub(crate) timeouts: (Duration, Duration),
}

impl Endpoint {
    /// `base` + `/v2/` + `path` (path without a leading '/').
    pub fn url(&self, path: &str) -> Result<Url> {
        let mut s = self.base.as_str().trim_end_matches('/').to_string();
        s.push_str("/v2/");
        s.push_str(path);
        Url::parse(&s).map_err(|e| Error::Protocol(format!("bad request URL {s:?}: {e}")))
    }

    /// `host[:port]` of the base URL, used to key authentication state.
    pub fn authority(&self) -> String {
        authority(&self.base)
    }
}

/// `host[:port]` of a URL.
pub fn authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TlsKey {
    skip_verify: bool,
    ca_file: Option<PathBuf>,
}

/// The configured hosts and one HTTP client per distinct TLS setting.
pub struct Hosts {
    config: RegistryConfig,
    clients: HashMap<TlsKey, reqwest::Client>,
}

impl Hosts {
    /// Builds the clients; a CA file that cannot be read or parsed is an error naming it.
    pub fn new(config: &RegistryConfig) -> Result<Hosts> {
        let mut clients = HashMap::new();
        let default = TlsKey {
            skip_verify: false,
            ca_file: None,
        };
        clients.insert(default.clone(), build_client(config, "default", &default)?);
        for (host, h) in &config.hosts {
            let key = tls_key(h);
            if let std::collections::hash_map::Entry::Vacant(slot) = clients.entry(key) {
                let c = build_client(config, host, slot.key())?;
                slot.insert(c);
            }
        }
        Ok(Hosts {
            config: config.clone(),
            clients,
        })
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    fn timeouts(&self) -> (Duration, Duration) {
        (self.config.connect_timeout(), self.config.read_timeout())
    }

    fn client_for(&self, authority: &str) -> reqwest::Client {
        let key = self
            .config
            .hosts
            .get(authority)
            .map(tls_key)
            .unwrap_or(TlsKey {
                skip_verify: false,
                ca_file: None,
            });
        self.clients
            .get(&key)
            .or_else(|| self.clients.values().next())
            .cloned()
            .expect("a default client is always built")
    }

    /// The endpoints for `registry`: its mirrors first when `with_mirrors`, then the host.
    pub fn endpoints(&self, registry: &str, with_mirrors: bool) -> Result<Vec<Endpoint>> {
        let host_cfg = self.config.hosts.get(registry);
        let mut out = Vec::new();
        if with_mirrors && let Some(h) = host_cfg {
            for m in &h.mirrors {
                let base = Url::parse(m).map_err(|e| Error::Config {
                    host: registry.to_string(),
                    reason: format!("mirror {m:?}: {e}"),
                })?;
                let client = self.client_for(&authority(&base));
                out.push(Endpoint {
                    base,
                    registry: registry.to_string(),
                    mirror: true,
                    client,
                    timeouts: self.timeouts(),
                });
            }
        }
        let base = if registry == super::reference::DEFAULT_REGISTRY {
            DOCKER_HUB_ENDPOINT.to_string()
        } else {
            let plain = host_cfg
                .and_then(|h| h.plain_http)
                .unwrap_or_else(|| is_loopback_host(registry));
            format!("{}://{registry}", if plain { "http" } else { "https" })
        };
        let base = Url::parse(&base).map_err(|e| Error::Config {
            host: registry.to_string(),
            reason: format!("cannot build a URL from it: {e}"),
        })?;
        out.push(Endpoint {
            base,
            registry: registry.to_string(),
            mirror: false,
            client: self.client_for(registry),
            timeouts: self.timeouts(),
        });
        Ok(out)
    }
}

fn tls_key(h: &RegistryHostConfig) -> TlsKey {
    TlsKey {
        skip_verify: h.skip_verify,
        ca_file: h.ca_file.clone(),
    }
}

fn build_client(config: &RegistryConfig, host: &str, key: &TlsKey) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(config.connect_timeout())
        .read_timeout(config.read_timeout())
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true);
    if key.skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    if let Some(path) = &key.ca_file {
        let pem = std::fs::read(path).map_err(|e| Error::Config {
            host: host.to_string(),
            reason: format!("read ca_file {}: {e}", path.display()),
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Config {
            host: host.to_string(),
            reason: format!(
                "ca_file {} is not a PEM certificate bundle: {e}",
                path.display()
            ),
        })?;
        if certs.is_empty() {
            return Err(Error::Config {
                host: host.to_string(),
                reason: format!("ca_file {} holds no certificate", path.display()),
            });
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| Error::Config {
        host: host.to_string(),
        reason: format!("build the HTTP client: {e}"),
    })
}

/// True for `localhost`, 127.0.0.0/8 and ::1, with or without a port.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6 == Ipv6Addr::LOCALHOST,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1:5000",
            "128.0.0.1",
            "[::2]:1",
            "localhost.example",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn endpoints_follow_the_config() {
        let mut hosts = BTreeMap::new();
        hosts.insert(
            "docker.io".to_string(),
            RegistryHostConfig {
                mirrors: vec![
                    "http://127.0.0.1:5000".into(),
                    "https://m.example/prefix".into(),
                ],
                ..Default::default()
            },
        );
        hosts.insert(
            "reg.example:5000".to_string(),
            RegistryHostConfig {
                plain_http: Some(true),
                skip_verify: true,
                ..Default::default()
            },
        );
        hosts.insert(
            "localhost:6000".to_string(),
            RegistryHostConfig {
                plain_http: Some(false),
                ..Default::default()
            },
        );
        let cfg = RegistryConfig {
            hosts,
            ..Default::default()
        };
        let h = Hosts::new(&cfg).unwrap();
        let urls = |r: &str, m: bool| -> Vec<String> {
            h.endpoints(r, m)
                .unwrap()
                .iter()
                .map(|e| e.url("x/manifests/latest").unwrap().to_string())
                .collect()
        };
        assert_eq!(
            urls("docker.io", true),
            [
                "http://127.0.0.1:5000/v2/x/manifests/latest",
                "https://m.example/prefix/v2/x/manifests/latest",
                "https://registry-1.docker.io/v2/x/manifests/latest"
            ]
        );
        assert_eq!(
            urls("docker.io", false),
            ["https://registry-1.docker.io/v2/x/manifests/latest"]
        );
        assert_eq!(
            urls("reg.example:5000", true),
            ["http://reg.example:5000/v2/x/manifests/latest"]
        );
        assert_eq!(
            urls("127.0.0.1:5000", true),
            ["http://127.0.0.1:5000/v2/x/manifests/latest"]
        );
        assert_eq!(
            urls("localhost:6000", true),
            ["https://localhost:6000/v2/x/manifests/latest"]
        );
        assert_eq!(
            urls("quay.io", true),
            ["https://quay.io/v2/x/manifests/latest"]
        );
    }

    #[test]
    fn bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let mut hosts = BTreeMap::new();
        hosts.insert(
            "r.example".to_string(),
            RegistryHostConfig {
                ca_file: Some(ca.clone()),
                ..Default::default()
            },
        );
        let cfg = RegistryConfig {
            hosts,
            ..Default::default()
        };
        let e = Hosts::new(&cfg).err().unwrap().to_string();
        assert!(e.contains("r.example") && e.contains("ca.pem"), "{e}");
    }
}
