//! berthd's configuration: a versioned TOML file, one struct per section, every field
//! defaulted, unknown keys refused. Command-line flags override the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The configuration format version this berthd reads and writes.
pub const VERSION: u32 = 1;

/// Default persistent root.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";
/// Default state directory (lost at reboot).
pub const DEFAULT_STATE: &str = "/run/berth";
/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/berth/config.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Format version of this file; must be 1.
    pub version: u32,
    /// Persistent data: metadata database, content, snapshots, volumes.
    pub root: PathBuf,
    /// Runtime state: sockets, task bundles; lost at reboot.
    pub state: PathBuf,
    pub grpc: GrpcConfig,
    pub log: LogConfig,
    pub registry: RegistryConfig,
    pub gc: GcConfig,
    pub runtime: RuntimeConfig,
    pub network: NetworkConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Unix socket path. Empty means `<state>/berthd.sock`.
    pub address: String,
    /// Group owning the socket (mode 0660). 0 is root.
    pub gid: u32,
    /// Largest message accepted, in bytes.
    pub max_recv_message_size: usize,
    /// Largest message sent, in bytes.
    pub max_send_message_size: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// trace, debug, info, warn or error (or a tracing filter directive).
    pub level: String,
    /// text or json.
    pub format: LogFormat,
}

/// How berthd talks to image registries (`[registry]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Connect timeout for one endpoint, e.g. "10s" or "500ms". An unreachable registry
    /// fails within this time (per endpoint tried).
    pub timeout: String,
    /// Longest silence while reading a response before the request is given up (and,
    /// for blob downloads, resumed), e.g. "60s".
    pub read_timeout: String,
    /// How many times a blob transfer is retried (with exponential backoff) after a
    /// dropped connection, a truncated body or a 5xx answer; also how often other
    /// requests are retried after a 5xx or 429 answer.
    pub retries: u32,
    /// Per-registry settings keyed by host as written in references ("docker.io",
    /// "registry.example.com:5000", "127.0.0.1:5000").
    pub hosts: BTreeMap<String, RegistryHostConfig>,
}

/// Settings of one registry host (`[registry.hosts."HOST"]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryHostConfig {
    /// Base URLs tried, in order, before the host itself for pulls, e.g.
    /// `["http://127.0.0.1:5000"]`. Pushes always go to the host itself.
    pub mirrors: Vec<String>,
    /// Speak plain HTTP to the host. Unset: HTTPS, except for loopback hosts
    /// (127.0.0.0/8, ::1, localhost) which use HTTP unless this is set to false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_http: Option<bool>,
    /// Accept any TLS certificate from the host.
    pub skip_verify: bool,
    /// PEM file with extra CA certificates trusted for the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            timeout: "10s".into(),
            read_timeout: "60s".into(),
            retries: 5,
            hosts: BTreeMap::new(),
        }
    }
}

/// How containers run (`[runtime]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The `berth-shim` binary; empty: the one next to berthd, else from `PATH`.
    pub shim: String,
    /// Log level of the shims (their logs go to `<bundle>/shim.log`); empty: berthd's.
    pub shim_log_level: String,
}

/// Garbage collection of content (and later snapshots) nothing refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcConfig {
    /// How often to collect even when nothing was deleted (expired leases, stale
    /// ingests); "0s" turns the periodic collection off.
    #[serde(with = "duration_text")]
    pub interval: Duration,
    /// How long after a delete the collection runs (deletes close together share one).
    #[serde(with = "duration_text")]
    pub schedule_delay: Duration,
    /// Unfinished writes untouched for this long are removed, unless a lease holds them.
    #[serde(with = "duration_text")]
    pub ingest_max_age: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval: Duration::from_secs(30 * 60),
            schedule_delay: Duration::from_millis(100),
            ingest_max_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl RegistryConfig {
    /// The connect timeout; the default when the value does not parse (validate refuses it).
    pub fn connect_timeout(&self) -> Duration {
        humantime::parse_duration(&self.timeout).unwrap_or(Duration::from_secs(10))
    }

    /// The read timeout; the default when the value does not parse (validate refuses it).
    pub fn read_timeout(&self) -> Duration {
        humantime::parse_duration(&self.read_timeout).unwrap_or(Duration::from_secs(60))
    }

    /// Checks durations, mirror URLs and CA files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("registry.timeout", &self.timeout),
            ("registry.read_timeout", &self.read_timeout),
        ] {
            match humantime::parse_duration(value) {
                Ok(d) if !d.is_zero() => {}
                Ok(_) => {
                    return Err(ConfigError::Invalid(format!(
                        "{key} = {value:?} must be more than zero"
                    )));
                }
                Err(e) => {
                    return Err(ConfigError::Invalid(format!(
                        "{key} = {value:?} is not a duration (like \"10s\" or \"500ms\"): {e}"
                    )));
                }
            }
        }
        if self.retries > 100 {
            return Err(ConfigError::Invalid(format!(
                "registry.retries = {} is more than 100",
                self.retries
            )));
        }
        for (host, h) in &self.hosts {
            if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
                return Err(ConfigError::Invalid(format!(
                    "registry.hosts.{host:?}: a key is a host with an optional port, like \"registry.example.com:5000\""
                )));
            }
            for m in &h.mirrors {
                let ok = (m.starts_with("http://") || m.starts_with("https://"))
                    && m.split_once("://").is_some_and(|(_, rest)| {
                        !rest.is_empty() && !rest.starts_with('/') && !rest.contains(['?', '#'])
                    });
                if !ok {
                    return Err(ConfigError::Invalid(format!(
                        "registry.hosts.{host:?}.mirrors: {m:?} is not an http:// or https:// URL"
                    )));
                }
            }
            if let Some(ca) = &h.ca_file
                && !ca.is_absolute()
            {
                return Err(ConfigError::Invalid(format!(
                    "registry.hosts.{host:?}.ca_file = {:?} must be an absolute path",
                    ca.display()
                )));
            }
        }
        Ok(())
    }
}

/// Container networking (`[network]`): the default `bridge` network, address pools of
/// user-defined networks, published ports. See docs/networking.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Bridge interface of the default `bridge` network (at most 15 characters).
    pub bridge: String,
    /// Subnet of the default network, e.g. "10.88.0.0/16".
    pub subnet: String,
    /// Gateway (the bridge's address) of the default network. Empty: the subnet's first
    /// address.
    pub gateway: String,
    /// MTU of bridges and container interfaces.
    pub mtu: u32,
    /// Host ports handed out for `-p CPORT` and `-P`, inclusive, e.g. "32768-60999".
    pub port_range: String,
    /// Serve published ports from a user-space proxy in berthd as well as with DNAT (it
    /// is what answers connections to 127.0.0.1). Off: loopback is DNATed by the kernel
    /// (route_localnet on the bridge) and the host port is only held.
    pub userland_proxy: bool,
    /// Masquerade (source NAT) traffic leaving a network's subnet for other interfaces.
    pub masquerade: bool,
    /// Turn on net.ipv4.ip_forward when a bridge is set up (containers reach the outside
    /// and published ports are reachable from other machines only with it).
    pub ip_forward: bool,
    /// Pools user-defined networks without `--subnet` take their subnet from, in order;
    /// a subnet overlapping a host route or another network is skipped.
    pub default_address_pools: Vec<AddressPool>,
    /// The host's resolver configuration that containers' resolv.conf is made from.
    pub resolv_conf: PathBuf,
}

/// A range that subnets of one size are carved from (`{ base = "172.17.0.0/16", size = 16 }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bridge: "berth0".into(),
            subnet: "10.88.0.0/16".into(),
            gateway: String::new(),
            mtu: 1500,
            port_range: "32768-60999".into(),
            userland_proxy: true,
            masquerade: true,
            ip_forward: true,
            default_address_pools: vec![
                AddressPool {
                    base: "172.17.0.0/16".into(),
                    size: 16,
                },
                AddressPool {
                    base: "172.18.0.0/15".into(),
                    size: 16,
                },
                AddressPool {
                    base: "172.20.0.0/14".into(),
                    size: 16,
                },
                AddressPool {
                    base: "172.24.0.0/14".into(),
                    size: 16,
                },
                AddressPool {
                    base: "172.28.0.0/14".into(),
                    size: 16,
                },
                AddressPool {
                    base: "192.168.0.0/16".into(),
                    size: 20,
                },
            ],
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }
}

impl NetworkConfig {
    /// The port range as (first, last).
    pub fn port_range(&self) -> Result<(u16, u16), ConfigError> {
        let bad = || {
            ConfigError::Invalid(format!(
                "network.port_range = {:?} must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535",
                self.port_range
            ))
        };
        let (a, b) = self.port_range.split_once('-').ok_or_else(bad)?;
        let a: u16 = a.trim().parse().map_err(|_| bad())?;
        let b: u16 = b.trim().parse().map_err(|_| bad())?;
        if a == 0 || a > b {
            return Err(bad());
        }
        Ok((a, b))
    }

    /// Checks names, addresses, the MTU and the port range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::network::validate_config(self).map_err(ConfigError::Invalid)?;
        self.port_range()?;
        Ok(())
    }
}

/// Durations written as text ("100ms", "30m", "24h").
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration such as \"100ms\", \"30m\" or \"24h\": {e}"
            ))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: VERSION,
            root: PathBuf::from(DEFAULT_ROOT),
            state: PathBuf::from(DEFAULT_STATE),
            grpc: GrpcConfig::default(),
            log: LogConfig::default(),
            registry: RegistryConfig::default(),
            gc: GcConfig::default(),
            runtime: RuntimeConfig::default(),
            network: NetworkConfig::default(),
        }
    }
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            address: String::new(),
            gid: 0,
            max_recv_message_size: 16 << 20,
            max_send_message_size: 16 << 20,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads `path`. A missing file is the defaults only when `required` is false.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.into(),
                source,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::new(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.version != VERSION {
            return Err(ConfigError::Invalid(format!(
                "version = {} is not supported; this berthd reads version {VERSION}",
                self.version
            )));
        }
        for (name, p) in [("root", &self.root), ("state", &self.state)] {
            if !p.is_absolute() {
                return Err(ConfigError::Invalid(format!(
                    "{name} = {:?} must be an absolute path",
                    p.display()
                )));
            }
        }
        if self.grpc.max_recv_message_size < (2 << 20) {
            return Err(ConfigError::Invalid(
                "grpc.max_recv_message_size must be at least 2 MiB (clients write 1 MiB chunks)"
                    .into(),
            ));
        }
        if self.gc.schedule_delay > Duration::from_secs(3600) {
            return Err(ConfigError::Invalid(
                "gc.schedule_delay must be at most 1h (deleted content would linger)".into(),
            ));
        }
        if self.gc.ingest_max_age < Duration::from_secs(60) {
            return Err(ConfigError::Invalid(
                "gc.ingest_max_age must be at least 1m (slow downloads would be removed mid-way)"
                    .into(),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::Invalid(format!(
                "log.level = {:?} is not a level (trace, debug, info, warn, error)",
                self.log.level
            )));
        }
        self.registry.validate()?;
        self.network.validate()
    }

    /// The socket path, derived from the state directory when not set.
    pub fn address(&self) -> PathBuf {
        if self.grpc.address.is_empty() {
            self.state.join("berthd.sock")
        } else {
            PathBuf::from(&self.grpc.address)
        }
    }

    /// The defaults as TOML, what `berthd config default` prints.
    pub fn default_toml() -> String {
        toml::to_string_pretty(&Config::default()).expect("defaults serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        let text = Config::default_toml();
        assert_eq!(Config::parse(&text).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::parse("version = 1\nbogus = 2\n").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = Config::parse("[grpc]\nadress = \"/x\"\n").unwrap_err();
        assert!(err.to_string().contains("adress"), "{err}");
    }

    #[test]
    fn wrong_version_is_refused() {
        let err = Config::parse("version = 2\n").unwrap_err();
        assert!(err.to_string().contains("version = 2"), "{err}");
    }

    #[test]
    fn partial_file_keeps_defaults() {
        let c = Config::parse("root = \"/tmp/x\"\n[log]\nformat = \"json\"\n").unwrap();
        assert_eq!(c.root, PathBuf::from("/tmp/x"));
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.level, "info");
        assert_eq!(c.address(), PathBuf::from("/run/berth/berthd.sock"));
    }

    #[test]
    fn registry_section_parses_and_validates() {
        let c = Config::parse(
            r#"
[registry]
timeout = "2s"
retries = 2
[registry.hosts."docker.io"]
mirrors = ["http://127.0.0.1:5000"]
[registry.hosts."reg.example:5000"]
plain_http = true
skip_verify = true
ca_file = "/etc/berth/ca.pem"
"#,
        )
        .unwrap();
        assert_eq!(c.registry.connect_timeout(), Duration::from_secs(2));
        assert_eq!(c.registry.retries, 2);
        assert_eq!(
            c.registry.hosts["docker.io"].mirrors,
            vec!["http://127.0.0.1:5000".to_string()]
        );
        assert_eq!(c.registry.hosts["reg.example:5000"].plain_http, Some(true));
        assert_eq!(c.registry.read_timeout(), Duration::from_secs(60));

        for bad in [
            "[registry]\ntimeout = \"soon\"\n",
            "[registry]\ntimeout = \"0s\"\n",
            "[registry.hosts.\"x\"]\nmirrors = [\"ftp://m\"]\n",
            "[registry.hosts.\"x\"]\nca_file = \"rel.pem\"\n",
            "[registry.hosts.\"x\"]\nmirror = []\n",
            "[registry.hosts.\"a/b\"]\n",
        ] {
            assert!(Config::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gc_durations_parse() {
        let c = Config::parse("[gc]\ninterval = \"0s\"\nschedule_delay = \"5ms\"\n").unwrap();
        assert!(c.gc.interval.is_zero());
        assert_eq!(c.gc.schedule_delay, Duration::from_millis(5));
        assert_eq!(c.gc.ingest_max_age, Duration::from_secs(86400));
        let err = Config::parse("[gc]\ninterval = \"soon\"\n").unwrap_err();
        assert!(err.to_string().contains("soon"), "{err}");
        assert!(Config::parse("[gc]\ningest_max_age = \"1s\"\n").is_err());
        assert!(Config::parse("[gc]\nbogus = 1\n").is_err());
    }

    #[test]
    fn network_section_parses_and_validates() {
        let d = Config::default();
        assert_eq!(d.network.bridge, "berth0");
        assert_eq!(d.network.subnet, "10.88.0.0/16");
        assert_eq!(d.network.mtu, 1500);
        assert_eq!(d.network.port_range().unwrap(), (32768, 60999));
        let c = Config::parse(
            r#"
[network]
bridge = "br-test"
subnet = "10.99.0.0/24"
gateway = "10.99.0.254"
mtu = 1400
port_range = "40000-40010"
userland_proxy = false
masquerade = false
default_address_pools = [{ base = "10.100.0.0/16", size = 24 }]
"#,
        )
        .unwrap();
        assert_eq!(c.network.bridge, "br-test");
        assert_eq!(c.network.port_range().unwrap(), (40000, 40010));
        assert!(!c.network.userland_proxy);
        assert!(c.network.ip_forward);
        for (bad, why) in [
            (
                "[network]\nbridge = \"much-too-long-name\"\n",
                "network.bridge",
            ),
            ("[network]\nbridge = \"a/b\"\n", "network.bridge"),
            ("[network]\nsubnet = \"10.88.0.1/16\"\n", "host bits"),
            ("[network]\nsubnet = \"10.88.0.0/31\"\n", "too small"),
            ("[network]\ngateway = \"10.89.0.1\"\n", "network.gateway"),
            ("[network]\nmtu = 10\n", "network.mtu"),
            ("[network]\nport_range = \"9-1\"\n", "network.port_range"),
            ("[network]\nport_range = \"0-10\"\n", "network.port_range"),
            (
                "[network]\ndefault_address_pools = [{ base = \"10.0.0.0/16\", size = 8 }]\n",
                "size 8",
            ),
            ("[network]\nresolv_conf = \"etc/resolv.conf\"\n", "absolute"),
            ("[network]\nbogus = 1\n", "bogus"),
        ] {
            let err = Config::parse(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn relative_root_is_refused() {
        assert!(Config::parse("root = \"relative\"\n").is_err());
    }
}
