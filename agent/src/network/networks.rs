//! Network records as domain operations: create, list, inspect, remove, prune. A bridge
//! network gets its bridge when it is created; its nft table exists while it has
//! endpoints.

use super::error::{NetworkError, Result};
use super::netlink::Netlink;
use super::records::{Driver, NETWORKS, Network};
use super::subnet::Subnet;
use super::{
    BRIDGE, HOST, NONE, NetworkCreate, NetworkDetails, Networks, ipam, new_id, nft, now_nanos,
    valid_ifname, write,
};
use crate::metadata::ReadTx;

/// Whether `name` can name a network: a letter or digit, then letters, digits, '_', '.'
/// or '-' (docker's rule), at most 64 characters.
fn valid_network_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Finds a network by id, name, or unique id prefix.
pub(super) fn find(all: &[Network], name_or_id: &str) -> Result<Network> {
    if let Some(n) = all
        .iter()
        .find(|n| n.id == name_or_id || n.name == name_or_id)
    {
        return Ok(n.clone());
    }
    let by_prefix: Vec<&Network> = if name_or_id.is_empty() {
        Vec::new()
    } else {
        all.iter()
            .filter(|n| n.id.starts_with(name_or_id))
            .collect()
    };
    match by_prefix.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(NetworkError::NetworkNotFound(name_or_id.into())),
        _ => Err(NetworkError::InvalidArgument(format!(
            "network id prefix {name_or_id} matches {} networks; give more of the id",
            by_prefix.len()
        ))),
    }
}

pub(super) fn find_in(tx: &ReadTx, name_or_id: &str) -> Result<Network> {
    find(&tx.networks()?, name_or_id)
}

impl Networks {
    /// Creates a user-defined bridge network and its bridge.
    pub async fn create(&self, req: &NetworkCreate) -> Result<Network> {
        if !valid_network_name(&req.name) {
            return Err(NetworkError::InvalidArgument(format!(
                "{:?} is not a network name (a letter or digit, then letters, digits, '_', '.' or '-')",
                req.name
            )));
        }
        if [BRIDGE, HOST, NONE].contains(&req.name.as_str()) {
            return Err(NetworkError::InvalidArgument(format!(
                "{} is a predefined network; choose another name",
                req.name
            )));
        }
        match req.driver.as_str() {
            "" | "bridge" => {}
            other => {
                return Err(NetworkError::NotImplemented(format!(
                    "network driver {other} (only bridge networks can be created)"
                )));
            }
        }
        crate::labels::validate(&req.labels)?;
        if let Some(b) = &req.bridge
            && !valid_ifname(b)
        {
            return Err(NetworkError::InvalidArgument(format!(
                "bridge name {b:?} must be 1 to 15 letters, digits, '-', '_' or '.'"
            )));
        }
        if let Some(m) = req.mtu
            && !(68..=65535).contains(&m)
        {
            return Err(NetworkError::InvalidArgument(format!(
                "mtu {m} must be between 68 and 65535"
            )));
        }
        if let Some(s) = req.subnet
            && s.prefix() > 30
        {
            return Err(NetworkError::InvalidArgument(format!(
                "subnet {s} is too small (at most /30)"
            )));
        }
        if req.gateway.is_some() && req.subnet.is_none() {
            return Err(NetworkError::InvalidArgument(
                "a gateway needs a subnet (--subnet)".into(),
            ));
        }

        let _rt = self.runtime.lock().await;
        let host = Netlink::host()?;
        // Host routes are read before the transaction: a pool subnet must not collide.
        let routes = if req.subnet.is_none() {
            host.route_destinations().await?
        } else {
            Vec::new()
        };
        let id = new_id();
        let net = write(&self.md, |tx| {
            let all = tx.networks()?;
            if all.iter().any(|n| n.name == req.name) {
                return Err(NetworkError::NetworkExists(req.name.clone()));
            }
            let bridge = req
                .bridge
                .clone()
                .unwrap_or_else(|| format!("br-{}", &id[..12]));
            if let Some(n) = all.iter().find(|n| n.bridge == bridge) {
                return Err(NetworkError::InUse(format!(
                    "bridge {bridge} belongs to network {}",
                    n.name
                )));
            }
            let subnet = match req.subnet {
                Some(s) => {
                    if let Some(n) = all
                        .iter()
                        .find(|n| n.subnet.is_some_and(|o| o.overlaps(&s)))
                    {
                        return Err(NetworkError::InUse(format!(
                            "subnet {s} overlaps network {} ({})",
                            n.name,
                            n.subnet.map(|x| x.to_string()).unwrap_or_default()
                        )));
                    }
                    s
                }
                None => self.pick_subnet(&all, &routes)?,
            };
            let gateway = match req.gateway {
                Some(g) if subnet.is_host(g) => g,
                Some(g) => {
                    return Err(NetworkError::InvalidArgument(format!(
                        "gateway {g} is not a host address of subnet {subnet}"
                    )));
                }
                None => subnet.first_host(),
            };
            let net = Network {
                id: id.clone(),
                name: req.name.clone(),
                driver: Driver::Bridge,
                bridge,
                subnet: Some(subnet),
                gateway: Some(gateway),
                mtu: req.mtu.unwrap_or(self.settings.mtu),
                labels: req.labels.clone(),
                predefined: false,
                created_at: now_nanos(),
            };
            tx.put(NETWORKS, &net.id, &net)?;
            Ok(net)
        })?;
        if let Err(e) = self.ensure_bridge(&host, &net).await {
            let _ = host.delete_link(&net.bridge).await;
            write(&self.md, |tx| {
                tx.remove(NETWORKS, &net.id)?;
                Ok(())
            })?;
            return Err(e);
        }
        tracing::info!(network = %net.name, id = %net.short_id(), bridge = %net.bridge, "network created");
        Ok(net)
    }

    /// The first pool subnet that overlaps neither a network nor a host route.
    fn pick_subnet(&self, all: &[Network], routes: &[Subnet]) -> Result<Subnet> {
        for (base, size) in &self.settings.pools {
            for s in base.split(*size) {
                let taken = all.iter().any(|n| n.subnet.is_some_and(|o| o.overlaps(&s)))
                    || routes.iter().any(|r| r.overlaps(&s));
                if !taken {
                    return Ok(s);
                }
            }
        }
        Err(NetworkError::InUse(
            "every subnet of network.default_address_pools is taken; give --subnet or add pools"
                .into(),
        ))
    }

    /// Creates the bridge of `net` if missing, with its gateway address, up.
    pub(super) async fn ensure_bridge(&self, host: &Netlink, net: &Network) -> Result<u32> {
        let (Some(subnet), Some(gateway)) = (net.subnet, net.gateway) else {
            return Err(NetworkError::Internal(format!(
                "network {} has no subnet",
                net.name
            )));
        };
        let index = host
            .ensure_bridge(&net.bridge, gateway, subnet, net.mtu)
            .await?;
        if self.settings.ip_forward {
            set_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        }
        if !self.settings.userland_proxy {
            set_sysctl(
                &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
                "1",
            )?;
        }
        Ok(index)
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<Network>> {
        let mut all = self.md.read(|tx| tx.networks())?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// A network and its endpoints.
    pub fn inspect(&self, name_or_id: &str) -> Result<NetworkDetails> {
        self.md.read(|tx| {
            Ok(find_in(tx, name_or_id).and_then(|network| {
                let endpoints = tx
                    .endpoints()?
                    .into_iter()
                    .filter(|e| e.network_id == network.id)
                    .collect();
                Ok(NetworkDetails { network, endpoints })
            }))
        })?
    }

    /// Removes a user-defined network without endpoints, with its bridge and table.
    pub async fn remove(&self, name_or_id: &str) -> Result<Network> {
        let _rt = self.runtime.lock().await;
        let net = self.md.read(|tx| Ok(find_in(tx, name_or_id)))??;
        self.remove_locked(&net).await?;
        Ok(net)
    }

    async fn remove_locked(&self, net: &Network) -> Result<()> {
        if net.predefined {
            return Err(NetworkError::InUse(format!(
                "network {} is predefined and cannot be removed",
                net.name
            )));
        }
        let users: Vec<String> = self
            .md
            .read(|tx| tx.endpoints())?
            .into_iter()
            .filter(|e| e.network_id == net.id)
            .map(|e| format!("{}/{}", e.namespace, e.container))
            .collect();
        if !users.is_empty() {
            return Err(NetworkError::InUse(format!(
                "network {} has active endpoints ({}); disconnect or remove those containers first",
                net.name,
                users.join(", ")
            )));
        }
        // Kernel objects first: a crash in between leaves a record that remove retries.
        nft::delete(&net.bridge).await?;
        Netlink::host()?.delete_link(&net.bridge).await?;
        write(&self.md, |tx| {
            ipam::forget_network(tx, &net.id)?;
            tx.remove(NETWORKS, &net.id)?;
            Ok(())
        })?;
        tracing::info!(network = %net.name, id = %net.short_id(), "network removed");
        Ok(())
    }

    /// Removes every user-defined network without endpoints that `passes` (docker's
    /// prune filters); returns their names.
    pub async fn prune(&self, passes: impl Fn(&Network) -> bool) -> Result<Vec<String>> {
        let _rt = self.runtime.lock().await;
        let (all, endpoints) = self.md.read(|tx| Ok((tx.networks()?, tx.endpoints()?)))?;
        let mut removed = Vec::new();
        for net in all {
            if net.predefined || endpoints.iter().any(|e| e.network_id == net.id) || !passes(&net) {
                continue;
            }
            self.remove_locked(&net).await?;
            removed.push(net.name);
        }
        removed.sort();
        Ok(removed)
    }
}

/// Writes `value` to a sysctl file unless it already holds it.
fn set_sysctl(path: &str, value: &str) -> Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|e| NetworkError::io(format!("write {path}"), e))
}
