//! What the network subsystem keeps in the metadata database. Networks are global (they
//! are host objects, shared by every namespace); endpoints and sandboxes are keyed by the
//! container's namespace and id; address allocations by network.
//!
//! | table | key | value |
//! |---|---|---|
//! | `networks` | network id | [`Network`] |
//! | `network_sandboxes` | ns \0 container | [`Sandbox`] |
//! | `network_endpoints` | ns \0 container \0 network id | [`EndpointRecord`] |
//! | `network_addresses` | network id \0 address | [`AddressHolder`] |
//! | `network_ipam_cursors` | network id | the address handed out last |

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::files::{DnsConfig, ExtraHost, Files};
use super::ports::PortMapping;
use super::subnet::Subnet;
use crate::labels::Labels;
use crate::metadata::{ReadTx, Table, WriteTx, key, prefix};

pub(super) const NETWORKS: Table = Table::new("networks");
pub(super) const SANDBOXES: Table = Table::new("network_sandboxes");
pub(super) const ENDPOINTS: Table = Table::new("network_endpoints");
pub(super) const ADDRESSES: Table = Table::new("network_addresses");
pub(super) const CURSORS: Table = Table::new("network_ipam_cursors");

/// Every table of the subsystem (created when the subsystem opens).
pub(super) const TABLES: [Table; 5] = [NETWORKS, SANDBOXES, ENDPOINTS, ADDRESSES, CURSORS];

/// How a network connects its containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// A Linux bridge, a veth pair per container, NAT for published ports.
    Bridge,
    /// The host's own network namespace.
    Host,
    /// A namespace with only loopback (`none`).
    Null,
}

impl Driver {
    pub fn as_str(&self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

/// A network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    pub driver: Driver,
    /// The bridge interface (bridge driver only, else empty).
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub subnet: Option<Subnet>,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub mtu: u32,
    #[serde(default)]
    pub labels: Labels,
    /// `bridge`, `host` and `none`: made by berthd, never removed.
    #[serde(default)]
    pub predefined: bool,
    /// Nanoseconds since the Unix epoch.
    pub created_at: i64,
}

impl Network {
    /// The first 12 hex digits of the id.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// How a container's network namespace is provided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SandboxMode {
    /// Its own namespace with endpoints on bridge networks.
    Bridged,
    /// Its own namespace with only loopback.
    None,
    /// The host's namespace.
    Host,
    /// Another container's namespace (`container:ID`).
    Container { target: String },
}

/// A `--link NAME:ALIAS`: the alias (and the name) resolve to the linked container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The linked container's name or id.
    pub name: String,
    pub alias: String,
}

impl Link {
    /// Parses `NAME:ALIAS` or `NAME` (the alias is then the name).
    pub fn parse(s: &str) -> Result<Link, String> {
        let (name, alias) = s.split_once(':').unwrap_or((s, s));
        let name = name.trim_start_matches('/');
        for part in [name, alias] {
            if !super::files::valid_host_name(part) {
                return Err(format!("{s:?} is not a link (NAME:ALIAS)"));
            }
        }
        Ok(Link {
            name: name.into(),
            alias: alias.into(),
        })
    }
}

/// The networking of one container: its namespace, names and name-resolution settings,
/// and the files made for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub namespace: String,
    pub container: String,
    /// The container's name (what peers and links resolve); may be empty.
    #[serde(default)]
    pub name: String,
    pub netns: PathBuf,
    pub mode: SandboxMode,
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub extra_hosts: Vec<ExtraHost>,
    #[serde(default)]
    pub dns: DnsConfig,
    pub files: Files,
    pub created_at: i64,
    /// A bridged sandbox whose last endpoint was disconnected on purpose: it lives on
    /// with loopback only (reconcile keeps it; an attach cut short has no such mark).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unattached: bool,
}

/// Whether an endpoint finished setting up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    /// Written before any kernel object exists; an endpoint still in this state after a
    /// crash is removed by reconcile.
    Creating,
    Ready,
}

/// A container's attachment to one bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub namespace: String,
    pub container: String,
    pub network_id: String,
    /// The container's name, for peers' hosts files.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// aa:bb:cc:dd:ee:ff
    pub mac: String,
    /// The host end of the veth pair.
    pub veth: String,
    /// The interface inside the container (eth0, eth1, ...).
    pub ifname: String,
    /// Whether the container's default route goes through this endpoint.
    pub default_route: bool,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    pub state: EndpointState,
    pub created_at: i64,
}

/// Who holds an allocated address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressHolder {
    pub namespace: String,
    pub container: String,
}

pub(super) fn endpoint_key(ns: &str, container: &str, network_id: &str) -> String {
    key(&[ns, container, network_id])
}

pub(super) fn address_key(network_id: &str, ip: Ipv4Addr) -> String {
    key(&[network_id, &ip.to_string()])
}

/// Reads shared by read and write transactions.
macro_rules! network_reads {
    ($tx:ty) => {
        #[allow(dead_code)]
        impl $tx {
            pub(super) fn networks(&self) -> crate::error::Result<Vec<Network>> {
                Ok(self
                    .scan::<Network>(NETWORKS, "")?
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect())
            }

            pub(super) fn sandbox(
                &self,
                ns: &str,
                container: &str,
            ) -> crate::error::Result<Option<Sandbox>> {
                self.get(SANDBOXES, &key(&[ns, container]))
            }

            pub(super) fn sandboxes(&self) -> crate::error::Result<Vec<Sandbox>> {
                Ok(self
                    .scan::<Sandbox>(SANDBOXES, "")?
                    .into_iter()
                    .map(|(_, s)| s)
                    .collect())
            }

            /// Every endpoint of every container.
            pub(super) fn endpoints(&self) -> crate::error::Result<Vec<EndpointRecord>> {
                Ok(self
                    .scan::<EndpointRecord>(ENDPOINTS, "")?
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect())
            }

            /// The endpoints of one container.
            pub(super) fn container_endpoints(
                &self,
                ns: &str,
                container: &str,
            ) -> crate::error::Result<Vec<EndpointRecord>> {
                Ok(self
                    .scan::<EndpointRecord>(ENDPOINTS, &prefix(&[ns, container]))?
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect())
            }

            /// Addresses allocated on a network, with their holders.
            pub(super) fn addresses(
                &self,
                network_id: &str,
            ) -> crate::error::Result<BTreeMap<Ipv4Addr, AddressHolder>> {
                Ok(self
                    .scan::<AddressHolder>(ADDRESSES, &prefix(&[network_id]))?
                    .into_iter()
                    .filter_map(|(ip, h)| Some((ip.parse().ok()?, h)))
                    .collect())
            }
        }
    };
}

network_reads!(ReadTx);
network_reads!(WriteTx);
