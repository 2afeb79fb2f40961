//! berthd's configuration: a versioned TOML file, one struct per section, every field
//! defaulted, unknown keys refused. Command-line flags override the file.

use std::path::{Path, PathBuf};

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
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::Invalid(format!(
                "log.level = {:?} is not a level (trace, debug, info, warn, error)",
                self.log.level
            )));
        }
        Ok(())
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
    fn relative_root_is_refused() {
        assert!(Config::parse("root = \"relative\"\n").is_err());
    }
}
