//! `berthctl network create|ls|inspect|rm|prune|connect|disconnect` over
//! berth.v1.Networks.

use berth_api::berth::v1::networks_client::NetworksClient;
use berth_api::berth::v1::{
    ConnectNetworkRequest, CreateNetworkRequest, DisconnectNetworkRequest, InspectNetworkRequest,
    ListNetworksRequest, Network, PruneNetworksRequest, RemoveNetworkRequest,
};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::commands::image::prune::confirm;
use crate::global::{Format, GlobalOptions};
use crate::output::{daemon_error, nanos, print_json, print_table, rfc3339, table};

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(NamesArgs),
    /// Remove one or more networks.
    #[command(visible_alias = "remove")]
    Rm(NamesArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Driver to manage the network.
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format.
    #[arg(long)]
    subnet: Option<String>,
    /// IPv4 gateway for the subnet.
    #[arg(long)]
    gateway: Option<String>,
    /// Set metadata on a network (KEY=VALUE).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Driver options: com.docker.network.bridge.name=NAME,
    /// com.docker.network.driver.mtu=N.
    #[arg(short = 'o', long = "opt")]
    opts: Vec<String>,
    name: String,
}

#[derive(clap::Args)]
pub struct LsArgs {
    /// Filter output (name=, id=, driver=, label=, type=custom|builtin, dangling=).
    #[arg(short = 'f', long = "filter")]
    filters: Vec<String>,
    /// Only display network IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not truncate the output.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
}

#[derive(clap::Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values.
    #[arg(long = "filter")]
    filters: Vec<String>,
}

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// IPv4 address.
    #[arg(long)]
    ip: Option<String>,
    /// Add a network-scoped alias for the container.
    #[arg(long = "alias")]
    aliases: Vec<String>,
    network: String,
    container: String,
}

#[derive(clap::Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short = 'f', long)]
    force: bool,
    network: String,
    container: String,
}

/// docker's `network inspect` document.
fn doc(n: &Network) -> Value {
    let containers: serde_json::Map<String, Value> = n
        .endpoints
        .iter()
        .map(|e| {
            (
                e.container_id.clone(),
                json!({
                    "Name": e.container_name,
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix_len),
                    "Namespace": e.namespace,
                }),
            )
        })
        .collect();
    let config: Vec<Value> = if n.subnet.is_empty() {
        Vec::new()
    } else {
        vec![json!({"Subnet": n.subnet, "Gateway": n.gateway})]
    };
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": rfc3339(nanos(n.created.as_ref())),
        "Scope": "local",
        "Driver": n.driver,
        "IPAM": {"Driver": "default", "Config": config},
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": n.bridge,
                    "com.docker.network.driver.mtu": n.mtu.to_string()},
        "Labels": n.labels,
    })
}

fn create_request(a: CreateArgs) -> anyhow::Result<CreateNetworkRequest> {
    let mut r = CreateNetworkRequest {
        name: a.name,
        driver: a.driver,
        subnet: a.subnet.unwrap_or_default(),
        gateway: a.gateway.unwrap_or_default(),
        ..Default::default()
    };
    for l in a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        r.labels.insert(k.to_string(), v.to_string());
    }
    for o in a.opts {
        match o.split_once('=') {
            Some(("com.docker.network.bridge.name", v)) => r.bridge = v.to_string(),
            Some(("com.docker.network.driver.mtu", v)) => {
                r.mtu = v
                    .parse()
                    .map_err(|e| anyhow::anyhow!("invalid mtu {v:?}: {e}"))?
            }
            _ => anyhow::bail!("network option {o:?} is not supported"),
        }
    }
    Ok(r)
}

pub async fn run(g: &GlobalOptions, cmd: NetworkCommand) -> anyhow::Result<i32> {
    let mut c = NetworksClient::new(g.ns_channel().await?);
    match cmd {
        NetworkCommand::Create(a) => {
            let id = c.create(create_request(a)?).await?.into_inner().id;
            println!("{id}");
        }
        NetworkCommand::Ls(a) => {
            let nets = c
                .list(ListNetworksRequest { filters: a.filters })
                .await?
                .into_inner()
                .networks;
            let id = |n: &Network| {
                if a.no_trunc {
                    n.id.clone()
                } else {
                    n.id.chars().take(12).collect()
                }
            };
            if a.quiet {
                for n in &nets {
                    println!("{}", id(n));
                }
            } else if g.format == Format::Json {
                for n in &nets {
                    println!("{}", doc(n));
                }
            } else {
                let mut t = table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
                for n in &nets {
                    t.add_row(vec![
                        id(n),
                        n.name.clone(),
                        n.driver.clone(),
                        "local".into(),
                    ]);
                }
                print_table(&t);
            }
        }
        NetworkCommand::Inspect(a) => {
            let mut docs = Vec::new();
            let mut code = 0;
            for id in a.networks {
                match c.inspect(InspectNetworkRequest { id }).await {
                    Ok(r) => docs.push(doc(&r.into_inner().network.unwrap_or_default())),
                    Err(s) => {
                        eprintln!("{}", daemon_error(&s));
                        code = 1;
                    }
                }
            }
            print_json(&docs)?;
            return Ok(code);
        }
        NetworkCommand::Rm(a) => {
            let mut code = 0;
            for id in a.networks {
                match c.remove(RemoveNetworkRequest { id: id.clone() }).await {
                    Ok(_) => println!("{id}"),
                    Err(s) => {
                        eprintln!("{}", daemon_error(&s));
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        NetworkCommand::Prune(a) => {
            if !a.force
                && !confirm(
                    "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
                )
            {
                return Ok(0);
            }
            let deleted = c
                .prune(PruneNetworksRequest { filters: a.filters })
                .await?
                .into_inner()
                .deleted;
            if !deleted.is_empty() {
                println!("Deleted Networks:");
                for n in deleted {
                    println!("{n}");
                }
            }
        }
        NetworkCommand::Connect(a) => {
            c.connect_container(ConnectNetworkRequest {
                network: a.network,
                container: a.container,
                ip: a.ip.unwrap_or_default(),
                aliases: a.aliases,
            })
            .await?;
        }
        NetworkCommand::Disconnect(a) => {
            c.disconnect_container(DisconnectNetworkRequest {
                network: a.network,
                container: a.container,
                force: a.force,
            })
            .await?;
        }
    }
    Ok(0)
}
