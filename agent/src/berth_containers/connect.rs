//! `network connect` and `network disconnect`: a container joins or leaves a bridge
//! network beyond its network mode's own. The change is kept in the container's record
//! ([`Record::connected`], [`Record::mode_disconnected`]) so every start repeats it; a
//! container whose networking is set up (running or paused) also gets or loses the
//! interface at once. Under the container's slot lock, so start and exit cannot
//! interleave.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::model::{Connection, Record};
use super::network::mode;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::network::{self, ConnectOptions, Driver, Network, NetworkError};

/// What `network connect` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectRequest {
    /// A network's name, ID or unique ID prefix.
    pub network: String,
    /// A container's name, ID or unique ID prefix.
    pub container: String,
    pub ip: Option<Ipv4Addr>,
    pub aliases: Vec<String>,
}

/// What was connected or disconnected (for the event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub network: Network,
    pub container_id: String,
    /// False when `disconnect -f` found nothing to do.
    pub changed: bool,
}

/// The network the container's network mode names, when it has one of its own (not
/// `host`, `none` or `container:`).
fn mode_network(core: &Core, rec: &Record) -> Result<Option<Network>> {
    let m = mode(&rec.host_config);
    if m.starts_with("container:") || m == network::HOST || m == network::NONE {
        return Ok(None);
    }
    Ok(Some(core.networks.inspect(m).map_err(Error::from)?.network))
}

/// docker's refusal for containers without a network namespace of their own.
fn check_mode(rec: &Record) -> Result<()> {
    let m = mode(&rec.host_config);
    if m == network::HOST {
        return Err(Error::FailedPrecondition(
            "container cannot be disconnected from host network or connected to host network"
                .into(),
        ));
    }
    if m == network::NONE {
        return Err(Error::FailedPrecondition(format!(
            "container {} uses the none network mode: it cannot be connected to other networks",
            rec.name
        )));
    }
    if m.starts_with("container:") {
        return Err(Error::FailedPrecondition(format!(
            "container {} shares the network namespace of another container: it cannot be \
             connected to or disconnected from networks",
            rec.name
        )));
    }
    Ok(())
}

/// Whether the container's networking is set up now (its interfaces exist).
fn live(core: &Core, ns: &str, rec: &Record) -> Result<bool> {
    Ok(core
        .networks
        .sandbox(ns, &rec.id)
        .map_err(Error::from)?
        .is_some())
}

/// Connects a container to one more bridge network.
pub async fn connect(core: &Arc<Core>, ns: &str, req: &ConnectRequest) -> Result<Changed> {
    let rec = core.berth.store.resolve(ns, &req.container)?;
    let net = core
        .networks
        .inspect(&req.network)
        .map_err(Error::from)?
        .network;
    let slot = core.berth.slot(ns, &rec);
    let _guard = slot.lock.lock().await;
    let rec = core.berth.store.get(ns, &rec.id)?;
    check_mode(&rec)?;
    if net.driver != Driver::Bridge {
        return Err(Error::FailedPrecondition(format!(
            "container cannot be disconnected from host network or connected to host network \
             ({} is a {} network; only bridge networks can be connected)",
            net.name,
            net.driver.as_str()
        )));
    }
    if net.predefined && req.ip.is_some() {
        return Err(Error::InvalidArgument(
            "user specified IP address is supported on user defined networks only".into(),
        ));
    }
    if net.predefined && !req.aliases.is_empty() {
        return Err(Error::InvalidArgument(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    if let (Some(ip), Some(subnet)) = (req.ip, net.subnet)
        && !subnet.is_host(ip)
    {
        return Err(Error::InvalidArgument(format!(
            "address {ip} is not a host address of network {} ({subnet})",
            net.name
        )));
    }
    let own = mode_network(core, &rec)?;
    let is_own = own.as_ref().is_some_and(|o| o.id == net.id);
    let already =
        (is_own && !rec.mode_disconnected) || rec.connected.iter().any(|c| c.network == net.id);
    if already {
        return Err(Error::AlreadyExists(format!(
            "endpoint with name {} already exists in network {}",
            rec.name, net.name
        )));
    }
    if live(core, ns, &rec)? {
        let opts = ConnectOptions {
            ip: req.ip,
            aliases: req.aliases.clone(),
        };
        core.networks
            .connect(ns, &rec.id, &net.id, &opts)
            .await
            .map_err(|e| connect_error(e, &rec, &net))?;
    }
    let conn = Connection {
        network: net.id.clone(),
        ip: req.ip,
        aliases: req.aliases.clone(),
    };
    core.berth.store.update(ns, &rec.id, |r| {
        if is_own {
            r.mode_disconnected = false;
        } else {
            r.connected.push(conn);
        }
        Ok(())
    })?;
    tracing::info!(container = %rec.id, network = %net.name, "container connected");
    Ok(Changed {
        network: net,
        container_id: rec.id,
        changed: true,
    })
}

fn connect_error(e: NetworkError, rec: &Record, net: &Network) -> Error {
    match e {
        NetworkError::AlreadyConnected { .. } => Error::AlreadyExists(format!(
            "endpoint with name {} already exists in network {}",
            rec.name, net.name
        )),
        e => e.into(),
    }
}

/// Disconnects a container from a network. With `force`, a container that is not
/// connected to it is not an error.
pub async fn disconnect(
    core: &Arc<Core>,
    ns: &str,
    network_name: &str,
    container: &str,
    force: bool,
) -> Result<Changed> {
    let rec = core.berth.store.resolve(ns, container)?;
    let net = core
        .networks
        .inspect(network_name)
        .map_err(Error::from)?
        .network;
    let slot = core.berth.slot(ns, &rec);
    let _guard = slot.lock.lock().await;
    let rec = core.berth.store.get(ns, &rec.id)?;
    let unchanged = Changed {
        network: net.clone(),
        container_id: rec.id.clone(),
        changed: false,
    };
    check_mode(&rec)?;
    let own = mode_network(core, &rec)?;
    let own_connected = own.as_ref().filter(|_| !rec.mode_disconnected);
    let is_own = own_connected.is_some_and(|o| o.id == net.id);
    let is_extra = rec.connected.iter().any(|c| c.network == net.id);
    if !is_own && !is_extra {
        if force {
            return Ok(unchanged);
        }
        return Err(not_connected(&rec, &net));
    }
    if live(core, ns, &rec)? {
        match core.networks.disconnect(ns, &rec.id, &net.id).await {
            Ok(()) => {}
            Err(NetworkError::NotConnected { .. }) if force => {}
            Err(NetworkError::NotConnected { .. }) => return Err(not_connected(&rec, &net)),
            Err(e) => return Err(e.into()),
        }
    }
    core.berth.store.update(ns, &rec.id, |r| {
        if is_own {
            r.mode_disconnected = true;
        } else {
            r.connected.retain(|c| c.network != net.id);
        }
        Ok(())
    })?;
    tracing::info!(container = %rec.id, network = %net.name, "container disconnected");
    Ok(Changed {
        changed: true,
        ..unchanged
    })
}

fn not_connected(rec: &Record, net: &Network) -> Error {
    Error::FailedPrecondition(format!(
        "container {} is not connected to network {}",
        rec.name, net.name
    ))
}

/// At start, after the network mode's own network is attached: connects the networks
/// of [`Record::connected`], then leaves the mode's network when it was disconnected.
pub(super) async fn restore(core: &Arc<Core>, ns: &str, rec: &Record) -> Result<()> {
    for c in &rec.connected {
        let opts = ConnectOptions {
            ip: c.ip,
            aliases: c.aliases.clone(),
        };
        match core.networks.connect(ns, &rec.id, &c.network, &opts).await {
            Ok(_) => {}
            // A removed network is left out, as docker does with a stale endpoint.
            Err(NetworkError::NetworkNotFound(n)) => {
                tracing::warn!(container = %rec.id, network = %n, "a connected network is gone; not connecting it");
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The mode's network was attached to make the sandbox; a container disconnected from
    // it leaves it again, keeping loopback only when no other network joined (as docker
    // starts a container disconnected from every network).
    if rec.mode_disconnected
        && let Some(own) = mode_network(core, rec)?
    {
        core.networks
            .disconnect(ns, &rec.id, &own.id)
            .await
            .map_err(Error::from)?;
    }
    Ok(())
}
