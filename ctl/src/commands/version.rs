//! `berthctl version`.

use berth_api::containerd::services::version::v1::version_client::VersionClient;
use serde::Serialize;

use crate::global::{Format, GlobalOptions};
use crate::output::print_json;

#[derive(Serialize)]
struct Versions {
    client: Side,
    server: Option<Side>,
}

#[derive(Serialize)]
struct Side {
    version: String,
    revision: String,
}

pub async fn run(g: &GlobalOptions) -> anyhow::Result<()> {
    let client = Side {
        version: env!("CARGO_PKG_VERSION").into(),
        revision: "unknown".into(),
    };
    let server = async {
        let r = VersionClient::new(g.channel().await?)
            .version(())
            .await?
            .into_inner();
        anyhow::Ok(Side {
            version: r.version,
            revision: r.revision,
        })
    }
    .await;
    if g.format == Format::Json {
        return print_json(&Versions {
            client,
            server: server.ok(),
        });
    }
    println!(
        "Client:\n  Version:  {}\n  Revision: {}",
        client.version, client.revision
    );
    let server = server?;
    println!(
        "\nServer:\n  Version:  {}\n  Revision: {}",
        server.version, server.revision
    );
    Ok(())
}
