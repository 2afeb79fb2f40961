//! Kernel network objects through rtnetlink: bridges, veth pairs, addresses, routes and
//! links, in the host's network namespace or inside a container's.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteType};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::error::{NetworkError, Result};
use super::netns;
use super::subnet::Subnet;

const EEXIST: i32 = libc::EEXIST;
const ENODEV: i32 = libc::ENODEV;

/// A link as far as berth cares.
#[derive(Debug, Clone)]
pub(super) struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<InfoKind>,
    pub controller: Option<u32>,
}

fn summarize(m: &LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        kind: None,
        controller: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Controller(c) => link.controller = Some(*c),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        link.kind = Some(k.clone());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// An rtnetlink connection bound to one network namespace (the one it was opened in).
pub(super) struct Netlink {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Netlink {
    /// A connection in this process's network namespace. Needs a tokio runtime.
    pub fn host() -> Result<Netlink> {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| NetworkError::io("open rtnetlink socket", e))?;
        Ok(Netlink {
            handle,
            task: tokio::spawn(conn),
        })
    }

    /// A connection inside the network namespace at `path`. Needs a tokio runtime.
    pub fn in_netns(path: &Path) -> Result<Netlink> {
        let rt = tokio::runtime::Handle::current();
        let (conn, handle, _) = netns::run_in(path, move || {
            let _entered = rt.enter();
            rtnetlink::new_connection()
        })?
        .map_err(|e| NetworkError::io(format!("open rtnetlink socket in {}", path.display()), e))?;
        Ok(Netlink {
            handle,
            task: tokio::spawn(conn),
        })
    }

    /// The link called `name`, if there is one.
    pub async fn link(&self, name: &str) -> Result<Option<Link>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(m)) => Ok(Some(summarize(&m))),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(NetworkError::netlink(format!("look up link {name}"), e)),
        }
    }

    /// Every link of the namespace.
    pub async fn links(&self) -> Result<Vec<Link>> {
        let mut out = Vec::new();
        let mut links = self.handle.link().get().execute();
        while let Some(m) = links
            .try_next()
            .await
            .map_err(|e| NetworkError::netlink("list links", e))?
        {
            out.push(summarize(&m));
        }
        Ok(out)
    }

    /// Makes sure bridge `name` exists, is up and carries `gateway/prefix`; creates it
    /// with `mtu` if missing. Returns its index.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        gateway: Ipv4Addr,
        subnet: Subnet,
        mtu: u32,
    ) -> Result<u32> {
        let link = match self.link(name).await? {
            Some(l) => l,
            None => {
                match self
                    .handle
                    .link()
                    .add(LinkBridge::new(name).mtu(mtu).build())
                    .execute()
                    .await
                {
                    Ok(()) => {}
                    // Another attach created it a moment ago.
                    Err(e) if errno(&e) == Some(EEXIST) => {}
                    Err(e) => {
                        return Err(NetworkError::netlink(format!("create bridge {name}"), e));
                    }
                }
                self.link(name).await?.ok_or_else(|| {
                    NetworkError::Internal(format!("bridge {name} vanished after creation"))
                })?
            }
        };
        if link.kind != Some(InfoKind::Bridge) {
            return Err(NetworkError::InUse(format!(
                "interface {name} exists and is not a bridge; choose another bridge name"
            )));
        }
        self.add_address(link.index, gateway, subnet.prefix())
            .await
            .map_err(|e| match e {
                NetworkError::Netlink { source, .. } => NetworkError::netlink(
                    format!("add {gateway}/{} to bridge {name}", subnet.prefix()),
                    source,
                ),
                e => e,
            })?;
        self.set_up(link.index, name).await?;
        Ok(link.index)
    }

    /// Creates a veth pair: `host_name` (up, MTU `mtu`, a port of `bridge`) here, and
    /// `peer_name` with address `mac` directly inside the namespace `netns`.
    pub async fn create_veth(
        &self,
        host_name: &str,
        bridge: u32,
        peer_name: &str,
        netns: &File,
        mtu: u32,
        mac: [u8; 6],
    ) -> Result<()> {
        let peer = LinkUnspec::new_with_name(peer_name)
            .mtu(mtu)
            .address(mac.to_vec())
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let msg = LinkVeth::new(host_name, peer_name)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .mtu(mtu)
            .controller(bridge)
            .up()
            .build();
        self.handle.link().add(msg).execute().await.map_err(|e| {
            NetworkError::netlink(format!("create veth pair {host_name}/{peer_name}"), e)
        })
    }

    /// Deletes link `name`; false if there was none.
    pub async fn delete_link(&self, name: &str) -> Result<bool> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(false),
            Err(e) => Err(NetworkError::netlink(format!("delete link {name}"), e)),
        }
    }

    /// Sets link `index` up.
    pub async fn set_up(&self, index: u32, name: &str) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| NetworkError::netlink(format!("set link {name} up"), e))
    }

    /// Adds `ip/prefix` to link `index`; an address already there is fine.
    pub async fn add_address(&self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        match self
            .handle
            .address()
            .add(index, IpAddr::V4(ip), prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(e) => Err(NetworkError::netlink(
                format!("add address {ip}/{prefix}"),
                e,
            )),
        }
    }

    /// Turns on hairpin mode of bridge port `index` (a container reaching its own
    /// published port through the host's address gets the answer back on the same port).
    pub async fn set_hairpin(&self, index: u32, name: &str) -> Result<()> {
        self.handle
            .link()
            .set_port(LinkBridgePort::new(index).hairpin(true).build())
            .execute()
            .await
            .map_err(|e| NetworkError::netlink(format!("set hairpin mode on {name}"), e))
    }

    /// Adds (or replaces) the default route via `gateway`.
    pub async fn set_default_route(&self, gateway: Ipv4Addr) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.handle
            .route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(|e| NetworkError::netlink(format!("add default route via {gateway}"), e))
    }

    /// Destinations of the IPv4 unicast routes of the main table, default route aside.
    pub async fn route_destinations(&self) -> Result<Vec<Subnet>> {
        let mut out = Vec::new();
        let mut routes = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        while let Some(r) = routes
            .try_next()
            .await
            .map_err(|e| NetworkError::netlink("list routes", e))?
        {
            let table = r
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(u32::from(r.header.table));
            if table != u32::from(RouteHeader::RT_TABLE_MAIN)
                || r.header.kind != RouteType::Unicast
                || r.header.destination_prefix_length == 0
            {
                continue;
            }
            for a in &r.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(d)) = a
                    && let Some(s) = Subnet::of(*d, r.header.destination_prefix_length)
                {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }
}
