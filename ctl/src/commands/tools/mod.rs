//! docker's container tools: `top`, `stats`, `port`, `cp`, `diff`, `commit`, `export`
//! and `import`, over berth.v1.ContainerTools. One file per verb or family.

pub mod archive;
pub mod commit;
pub mod cp;
pub mod inspect;
pub mod stats;

use berth_api::berth::v1::container_tools_client::ContainerToolsClient;
use berth_api::client::NsChannel;

use crate::global::GlobalOptions;

/// The client of berth.v1.ContainerTools.
pub type Client = ContainerToolsClient<NsChannel>;

pub async fn client(g: &GlobalOptions) -> anyhow::Result<Client> {
    Ok(ContainerToolsClient::new(g.ns_channel().await?)
        .max_decoding_message_size(berth_api::client::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(berth_api::client::MAX_MESSAGE_SIZE))
}

/// Bytes of an archive per message.
pub const CHUNK: usize = 256 * 1024;
