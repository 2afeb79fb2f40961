//! A tonic channel to a daemon on a unix socket (or `tcp://host:port`).

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// Default maximum message size of berth's clients, as `ctr`'s (16 MiB).
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// Connects to `address`: a unix socket path (optionally `unix://`), or `tcp://host:port`.
pub async fn connect(address: &str) -> Result<Channel, tonic::transport::Error> {
    if let Some(rest) = address.strip_prefix("tcp://") {
        return Endpoint::from_shared(format!("http://{rest}"))?
            .connect()
            .await;
    }
    let path = PathBuf::from(address.strip_prefix("unix://").unwrap_or(address));
    // The URI is required by the API but unused: the connector below ignores it.
    Endpoint::try_from("http://localhost")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await
}
