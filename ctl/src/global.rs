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
    /// Output format for listings and inspections.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
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
