//! Container networking in berthd: networks (the predefined `bridge`, `host` and `none`,
//! and user-defined bridge networks), address management, endpoints (a veth pair from a
//! network's bridge into a container's network namespace, given by path), published
//! ports (nftables DNAT in berth's own tables plus a user-space proxy for loopback), and
//! each container's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.
//!
//! Everything is recorded in the metadata database before a kernel object is made, so
//! [`Networks::reconcile`] can remove what a crash left behind. Design notes:
//! docs/networking.md.
//!
//! Wiring to containers, in order: [`netns::create`] a pinned namespace (or use
//! `/proc/<pid>/ns/net` of a created task), [`Networks::attach`] it, bind-mount the
//! returned [`Files`] into the container; on removal [`Networks::detach`] then
//! [`netns::remove`]. At start [`Networks::reconcile`] with the live containers; at exit
//! [`Networks::shutdown`]. `--network container:X` joins [`Networks::container_netns`].

mod attach;
mod detach;
pub mod error;
pub mod files;
mod ipam;
mod names;
mod netlink;
pub mod netns;
mod networks;
mod nft;
pub mod ports;
mod proxy;
mod reconcile;
mod records;
pub mod subnet;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::NetworkConfig;
use crate::metadata::{Metadata, WriteTx};

pub use error::{NetworkError, Result};
pub use files::{DnsConfig, ExtraHost, Files, HostAddress};
pub use ports::{PortMapping, PortSpec, Proto, parse_exposed, parse_publish};
pub use reconcile::ReconcileReport;
pub use records::{Driver, EndpointRecord, EndpointState, Link, Network, Sandbox, SandboxMode};
pub use subnet::Subnet;

/// Names of the predefined networks.
pub const BRIDGE: &str = "bridge";
pub const HOST: &str = "host";
pub const NONE: &str = "none";

/// The hosts file `host` mode starts from.
const HOST_HOSTS: &str = "/etc/hosts";

/// What [`Networks::attach`] sets up for a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointRequest {
    /// `bridge` (also when empty), a user network's name or id, `none`, `host`, or
    /// `container:NAME|ID`.
    pub network: String,
    /// The container's name: what links and other containers of user networks resolve.
    pub name: String,
    /// A fixed address (user-defined networks only).
    pub ip: Option<Ipv4Addr>,
    /// More names for this container on the network (user-defined networks).
    pub aliases: Vec<String>,
    pub ports: Vec<PortSpec>,
    /// Empty: the first 12 characters of the container id.
    pub hostname: String,
    pub domainname: String,
    pub links: Vec<Link>,
    pub extra_hosts: Vec<ExtraHost>,
    pub dns: DnsConfig,
}

/// What [`Networks::connect`] adds to a container with networking set up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    pub ip: Option<Ipv4Addr>,
    pub aliases: Vec<String>,
}

/// A container's endpoint as set up (for `none`, `host` and `container:` modes without
/// address, interface or ports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub network_id: String,
    pub ip: Option<Ipv4Addr>,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mac: Option<String>,
    /// The interface inside the container.
    pub ifname: Option<String>,
    pub ports: Vec<PortMapping>,
    /// The network namespace the container must run in.
    pub netns: PathBuf,
    /// The files to bind-mount on /etc/hosts, /etc/hostname and /etc/resolv.conf.
    pub files: Files,
}

/// `network create` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkCreate {
    pub name: String,
    /// Only "bridge" (or empty) is implemented.
    pub driver: String,
    /// Empty: taken from the configured address pools.
    pub subnet: Option<Subnet>,
    /// Empty: the subnet's first address.
    pub gateway: Option<Ipv4Addr>,
    /// Empty: `br-<first 12 hex digits of the id>`.
    pub bridge: Option<String>,
    pub mtu: Option<u32>,
    pub labels: crate::labels::Labels,
}

/// A network with its endpoints (`network inspect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDetails {
    pub network: Network,
    pub endpoints: Vec<EndpointRecord>,
}

/// The `[network]` configuration, checked and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub mtu: u32,
    pub port_range: (u16, u16),
    pub userland_proxy: bool,
    pub masquerade: bool,
    pub ip_forward: bool,
    pub pools: Vec<(Subnet, u8)>,
    pub resolv_conf: PathBuf,
}

/// Whether `name` can be a network interface name (and so part of an nft table name).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Settings {
    pub(crate) fn parse(c: &NetworkConfig) -> Result<Settings, String> {
        if !valid_ifname(&c.bridge) {
            return Err(format!(
                "network.bridge = {:?} must be 1 to 15 letters, digits, '-', '_' or '.'",
                c.bridge
            ));
        }
        let subnet: Subnet = c
            .subnet
            .parse()
            .map_err(|e| format!("network.subnet: {e}"))?;
        if subnet.prefix() > 30 {
            return Err(format!(
                "network.subnet = {subnet} is too small (at most /30)"
            ));
        }
        let gateway = if c.gateway.is_empty() {
            subnet.first_host()
        } else {
            let g: Ipv4Addr = c
                .gateway
                .parse()
                .map_err(|_| format!("network.gateway = {:?} is not an IPv4 address", c.gateway))?;
            if !subnet.is_host(g) {
                return Err(format!(
                    "network.gateway = {g} is not a host address of network.subnet {subnet}"
                ));
            }
            g
        };
        if !(68..=65535).contains(&c.mtu) {
            return Err(format!(
                "network.mtu = {} must be between 68 and 65535",
                c.mtu
            ));
        }
        let port_range = c.port_range().map_err(|e| match e {
            crate::config::ConfigError::Invalid(m) => m,
            e => e.to_string(),
        })?;
        let mut pools = Vec::new();
        for p in &c.default_address_pools {
            let base: Subnet = p
                .base
                .parse()
                .map_err(|e| format!("network.default_address_pools: {e}"))?;
            if p.size < base.prefix() || p.size > 30 {
                return Err(format!(
                    "network.default_address_pools: size {} must be between the base's prefix /{} and 30",
                    p.size,
                    base.prefix()
                ));
            }
            pools.push((base, p.size));
        }
        if !c.resolv_conf.is_absolute() {
            return Err(format!(
                "network.resolv_conf = {:?} must be an absolute path",
                c.resolv_conf.display()
            ));
        }
        Ok(Settings {
            bridge: c.bridge.clone(),
            subnet,
            gateway,
            mtu: c.mtu,
            port_range,
            userland_proxy: c.userland_proxy,
            masquerade: c.masquerade,
            ip_forward: c.ip_forward,
            pools,
            resolv_conf: c.resolv_conf.clone(),
        })
    }
}

/// Checks a `[network]` section (what [`crate::config::Config::validate`] calls).
pub fn validate_config(c: &NetworkConfig) -> Result<(), String> {
    Settings::parse(c).map(|_| ())
}

/// What lives only in memory: the proxies (or held sockets) of published ports, by
/// endpoint key, and where the search for a random host port resumes.
#[derive(Debug, Default)]
struct Runtime {
    forwarders: HashMap<String, Vec<proxy::Forwarder>>,
    port_cursor: u16,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Proxies are tasks: end them with the subsystem rather than with the runtime.
        for f in self.forwarders.values().flatten() {
            if let proxy::Forwarder::Proxy(task) = f {
                task.abort();
            }
        }
    }
}

/// The network subsystem.
pub struct Networks {
    md: Arc<Metadata>,
    settings: Settings,
    /// Where container files are written: `<dir>/containers/<ns>/<id>/`.
    dir: PathBuf,
    /// Serializes every change (and owns the in-memory state).
    runtime: tokio::sync::Mutex<Runtime>,
}

/// Runs `f` in a metadata write transaction, committed only if `f` succeeds (and then
/// durably); `f`'s own error comes back unchanged.
pub(crate) fn write<R>(md: &Metadata, f: impl FnOnce(&WriteTx) -> Result<R>) -> Result<R> {
    let mut failure = None;
    let r = md.write(|tx| match f(tx) {
        Ok(r) => Ok(r),
        Err(e) => {
            failure = Some(e);
            Err(crate::error::Error::Internal(
                "network transaction aborted".into(),
            ))
        }
    });
    match r {
        Ok(r) => Ok(r),
        Err(e) => Err(failure.take().unwrap_or(NetworkError::Metadata(e))),
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

fn new_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Networks {
    /// Opens the subsystem over the metadata database: creates its tables and the
    /// predefined networks, and brings the default `bridge` network in line with the
    /// configuration (refused while containers are attached to it). `dir` holds the
    /// containers' files (berthd passes `<state>/network`). No kernel object is touched
    /// until [`Networks::reconcile`] or an attach.
    pub fn open(md: Arc<Metadata>, config: &NetworkConfig, dir: &Path) -> Result<Networks> {
        let settings = Settings::parse(config).map_err(NetworkError::InvalidArgument)?;
        std::fs::create_dir_all(dir.join("containers"))
            .map_err(|e| NetworkError::io(format!("create {}", dir.display()), e))?;
        let nets = Networks {
            md,
            settings,
            dir: dir.to_path_buf(),
            runtime: tokio::sync::Mutex::new(Runtime::default()),
        };
        nets.init_records()?;
        Ok(nets)
    }

    /// The bridge of the default `bridge` network.
    pub fn bridge_name(&self) -> &str {
        &self.settings.bridge
    }

    fn init_records(&self) -> Result<()> {
        let s = &self.settings;
        write(&self.md, |tx| {
            for t in records::TABLES {
                tx.create(t)?;
            }
            let all = tx.networks()?;
            for (name, driver) in [
                (BRIDGE, Driver::Bridge),
                (HOST, Driver::Host),
                (NONE, Driver::Null),
            ] {
                let mut want = Network {
                    id: new_id(),
                    name: name.into(),
                    driver,
                    bridge: String::new(),
                    subnet: None,
                    gateway: None,
                    mtu: 0,
                    labels: Default::default(),
                    predefined: true,
                    created_at: now_nanos(),
                };
                if driver == Driver::Bridge {
                    want.bridge = s.bridge.clone();
                    want.subnet = Some(s.subnet);
                    want.gateway = Some(s.gateway);
                    want.mtu = s.mtu;
                }
                let existing = all.iter().find(|n| n.predefined && n.name == name);
                let Some(have) = existing else {
                    tx.put(records::NETWORKS, &want.id, &want)?;
                    continue;
                };
                let same = have.bridge == want.bridge
                    && have.subnet == want.subnet
                    && have.gateway == want.gateway
                    && have.mtu == want.mtu;
                if same {
                    continue;
                }
                let attached = tx
                    .endpoints()?
                    .iter()
                    .filter(|e| e.network_id == have.id)
                    .count();
                if attached > 0 {
                    return Err(NetworkError::InUse(format!(
                        "the configuration changes the default network {name} (bridge {}, subnet {}, \
                         gateway {}, mtu {}) but {attached} endpoint(s) are attached to it; \
                         remove those containers or keep the old settings",
                        have.bridge,
                        have.subnet.map(|s| s.to_string()).unwrap_or_default(),
                        have.gateway.map(|g| g.to_string()).unwrap_or_default(),
                        have.mtu
                    )));
                }
                want.id = have.id.clone();
                want.created_at = have.created_at;
                tx.put(records::NETWORKS, &want.id, &want)?;
            }
            if let Some(user) = tx
                .networks()?
                .into_iter()
                .find(|n| !n.predefined && n.subnet.is_some_and(|sub| sub.overlaps(&s.subnet)))
            {
                return Err(NetworkError::InUse(format!(
                    "network.subnet {} overlaps the subnet of network {} ({})",
                    s.subnet,
                    user.name,
                    user.subnet.map(|s| s.to_string()).unwrap_or_default()
                )));
            }
            Ok(())
        })
    }

    fn container_dir(&self, ns: &str, container: &str) -> PathBuf {
        self.dir.join("containers").join(ns).join(container)
    }
}
