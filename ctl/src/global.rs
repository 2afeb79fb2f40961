//! Options every command takes, and the connection they describe.

use anyhow::Context;
use berth_api::client::{NsChannel, WithNamespace};
use tonic::transport::Channel;

/// Default API socket of berthd.
pub const DEFAULT_ADDRESS: &str = "/run/berth/berthd.sock";

#[derive(clap::Args, Clone, Debug)]
pub struct GlobalOptions {
    /// berthd's API socket (or tcp://host:port).
    #[arg(short = 'H', long, global = true, env = "BERTH_ADDRESS", default_value = DEFAULT_ADDRESS)]
    pub address: String,
    /// Namespace to work in.
    #[arg(
        short = 'n',
        long,
        global = true,
        env = "BERTH_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
    /// Output format for listings and inspections: table, json, or a Go-style template
    /// (`{{.Repository}}:{{.Tag}}`, `table {{.ID}}\t{{.Size}}`).
    #[arg(long, global = true, value_parser = Format::parse, default_value = "table")]
    pub format: Format,
}

/// What `--format` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    /// A template (see `template.rs`), possibly with a `table ` prefix.
    Template(String),
    /// A word only some commands know (`save --format oci`).
    Other(String),
}

impl Format {
    fn parse(s: &str) -> Result<Format, String> {
        match s.trim() {
            "" | "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            t if t.contains("{{") => {
                crate::template::Template::parse(t).map_err(|e| e.to_string())?;
                Ok(Format::Template(s.to_string()))
            }
            // Command-specific formats (`save --format oci`).
            other => Ok(Format::Other(other.to_string())),
        }
    }
}

impl GlobalOptions {
    /// A plain channel to berthd.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        berth_api::client::connect(&self.address)
            .await
            .with_context(|| {
                format!(
                    "cannot reach berthd at {}: is it running? (berthctl -H ADDRESS)",
                    self.address
                )
            })
    }

    /// A channel whose calls carry `--namespace`.
    pub async fn ns_channel(&self) -> anyhow::Result<NsChannel> {
        let interceptor = WithNamespace::new(&self.namespace)
            .with_context(|| format!("namespace {:?} is not valid", self.namespace))?;
        Ok(tonic::service::interceptor::InterceptedService::new(
            self.channel().await?,
            interceptor,
        ))
    }
}
