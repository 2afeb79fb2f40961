//! Setting a container's networking up: `attach` (its first network, or `none`, `host`,
//! `container:`), `connect` (one more bridge network). An endpoint is recorded before
//! any kernel object exists and everything made is undone when a later step fails, so a
//! failed attach leaves no veth, rule, proxy, address or record behind.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{NetworkError, Result};
use super::files::{Files, valid_host_name};
use super::netlink::Netlink;
use super::networks::find;
use super::nft;
use super::ports::{PortMapping, PortSpec};
use super::proxy::{self, Bound, Forwarder};
use super::records::{
    AddressHolder, Driver, ENDPOINTS, EndpointRecord, EndpointState, Network, SANDBOXES, Sandbox,
    SandboxMode, endpoint_key,
};
use super::{
    BRIDGE, ConnectOptions, Endpoint, EndpointRequest, Networks, Runtime, ipam, netns, now_nanos,
    write,
};
use crate::identifiers;
use crate::metadata::key;

/// The host end of a container's veth on a network: `veth` and 11 hex digits of a hash
/// of the endpoint (15 characters, the limit).
pub(super) fn veth_name(ns: &str, container: &str, network_id: &str) -> String {
    let h = Sha256::digest(format!("{ns}\0{container}\0{network_id}"));
    format!("veth{}", &hex::encode(h)[..11])
}

/// A locally administered MAC derived from the address (02:42 and the four octets), as
/// docker does: unique on the network because the address is.
fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn check_names(what: &str, names: &[String]) -> Result<()> {
    for n in names {
        if !valid_host_name(n) {
            return Err(NetworkError::InvalidArgument(format!(
                "{what} {n:?} must be letters, digits, '-', '_' or '.'"
            )));
        }
    }
    Ok(())
}

/// What [`Networks::add_endpoint`] is asked for.
struct NewEndpoint<'a> {
    sandbox: &'a Sandbox,
    network: &'a Network,
    ip: Option<Ipv4Addr>,
    aliases: &'a [String],
    ports: &'a [PortSpec],
    ifname: String,
    default_route: bool,
}

impl Networks {
    /// Sets up the networking of a container whose network namespace is `netns` (a
    /// pinned namespace or `/proc/<pid>/ns/net`; ignored for `host`, and for
    /// `container:X` it must be X's, see [`Networks::container_netns`]). Writes its
    /// hosts, hostname and resolv.conf files. A container has one such setup; more
    /// bridge networks are added with [`Networks::connect`].
    pub async fn attach(
        &self,
        ns: &str,
        container: &str,
        netns: &Path,
        req: &EndpointRequest,
    ) -> Result<Endpoint> {
        identifiers::validate("namespace", ns)?;
        identifiers::validate("container", container)?;
        let hostname = if req.hostname.is_empty() {
            container[..12.min(container.len())].to_string()
        } else {
            req.hostname.clone()
        };
        if hostname.len() > 63 || !valid_host_name(&hostname) {
            return Err(NetworkError::InvalidArgument(format!(
                "hostname {hostname:?} must be at most 63 letters, digits, '-', '_' or '.'"
            )));
        }
        if !req.domainname.is_empty() && !valid_host_name(&req.domainname) {
            return Err(NetworkError::InvalidArgument(format!(
                "domain name {:?} must be letters, digits, '-', '_' or '.'",
                req.domainname
            )));
        }
        if !req.name.is_empty() {
            check_names("container name", std::slice::from_ref(&req.name))?;
        }
        check_names("alias", &req.aliases)?;

        let mut rt = self.runtime.lock().await;
        let (existing, networks) = self
            .md
            .read(|tx| Ok((tx.sandbox(ns, container)?, tx.networks()?)))?;
        if existing.is_some() {
            return Err(NetworkError::SandboxExists(format!("{ns}/{container}")));
        }
        let mut sandbox = Sandbox {
            namespace: ns.into(),
            container: container.into(),
            name: req.name.clone(),
            netns: netns.to_path_buf(),
            mode: SandboxMode::Bridged,
            hostname,
            domainname: req.domainname.clone(),
            links: req.links.clone(),
            extra_hosts: req.extra_hosts.clone(),
            dns: req.dns.clone(),
            files: Files::in_dir(&self.container_dir(ns, container)),
            created_at: now_nanos(),
            unattached: false,
        };

        let requested = if req.network.is_empty() {
            BRIDGE
        } else {
            req.network.as_str()
        };
        if let Some(target) = requested.strip_prefix("container:") {
            return self.attach_joined(sandbox, target, req);
        }
        let network = find(&networks, requested)?;
        if network.driver != Driver::Bridge && (req.ip.is_some() || !req.aliases.is_empty()) {
            return Err(NetworkError::InvalidArgument(format!(
                "addresses and aliases are for bridge networks, not {}",
                network.name
            )));
        }
        match network.driver {
            Driver::Host => {
                // Published ports mean nothing in the host's namespace (docker drops them).
                sandbox.mode = SandboxMode::Host;
                sandbox.netns = PathBuf::from(netns::SELF_NETNS);
                if req.hostname.is_empty() {
                    sandbox.hostname = nix::unistd::gethostname()
                        .ok()
                        .and_then(|h| h.into_string().ok())
                        .unwrap_or(sandbox.hostname);
                }
                self.save_sandbox(&sandbox)?;
                self.finish_files(&sandbox)?;
                Ok(self.bare_endpoint(&network, &sandbox))
            }
            Driver::Null => {
                if !req.ports.is_empty() {
                    return Err(NetworkError::InvalidArgument(
                        "published ports need a bridge network, not none".into(),
                    ));
                }
                sandbox.mode = SandboxMode::None;
                loopback_up(netns).await?;
                self.save_sandbox(&sandbox)?;
                self.finish_files(&sandbox)?;
                Ok(self.bare_endpoint(&network, &sandbox))
            }
            Driver::Bridge => {
                if req.ip.is_some() && network.predefined {
                    return Err(NetworkError::InvalidArgument(format!(
                        "a fixed address needs a user-defined network, not {}",
                        network.name
                    )));
                }
                self.save_sandbox(&sandbox)?;
                let added = self
                    .add_endpoint(
                        &mut rt,
                        NewEndpoint {
                            sandbox: &sandbox,
                            network: &network,
                            ip: req.ip,
                            aliases: &req.aliases,
                            ports: &req.ports,
                            ifname: "eth0".into(),
                            default_route: true,
                        },
                    )
                    .await;
                let ep = match added {
                    Ok(ep) => ep,
                    Err(e) => {
                        let _ = write(&self.md, |tx| {
                            tx.remove(SANDBOXES, &key(&[ns, container]))?;
                            Ok(())
                        });
                        return Err(e);
                    }
                };
                if let Err(e) = self.finish_files(&sandbox) {
                    drop(rt);
                    let _ = self.detach(ns, container).await;
                    return Err(e);
                }
                Ok(self.endpoint_of(&network, &sandbox, &ep))
            }
        }
    }

    /// `container:TARGET`: the container shares TARGET's namespace and files.
    fn attach_joined(
        &self,
        mut sandbox: Sandbox,
        target: &str,
        req: &EndpointRequest,
    ) -> Result<Endpoint> {
        if !req.ports.is_empty() || req.ip.is_some() || !req.aliases.is_empty() {
            return Err(NetworkError::InvalidArgument(
                "a container sharing another's network namespace cannot publish ports or take an address or aliases"
                    .into(),
            ));
        }
        let (t, eps) = self.md.read(|tx| {
            let t = self.find_sandbox(tx, &sandbox.namespace, target)?;
            let eps = match &t {
                Some(t) => tx.container_endpoints(&t.namespace, &t.container)?,
                None => Vec::new(),
            };
            Ok((t, eps))
        })?;
        let t = t.ok_or_else(|| NetworkError::NoSandbox {
            container: target.into(),
        })?;
        let t = self.resolve_joined(t)?;
        sandbox.mode = SandboxMode::Container {
            target: t.container.clone(),
        };
        sandbox.netns = t.netns.clone();
        sandbox.files = t.files.clone();
        sandbox.hostname = t.hostname.clone();
        self.save_sandbox(&sandbox)?;
        let networks = self.md.read(|tx| tx.networks())?;
        let first = eps.iter().min_by(|a, b| a.ifname.cmp(&b.ifname));
        match first.and_then(|e| {
            networks
                .iter()
                .find(|n| n.id == e.network_id)
                .map(|n| (n, e))
        }) {
            Some((net, ep)) => {
                let mut out = self.endpoint_of(net, &sandbox, ep);
                out.ports.clear();
                Ok(out)
            }
            None => {
                let name = match &t.mode {
                    SandboxMode::Host => super::HOST,
                    _ => super::NONE,
                };
                let net = find(&networks, name)?;
                Ok(self.bare_endpoint(&net, &sandbox))
            }
        }
    }

    /// Follows `container:` chains to the container that owns the namespace.
    fn resolve_joined(&self, mut sb: Sandbox) -> Result<Sandbox> {
        for _ in 0..16 {
            let SandboxMode::Container { target } = &sb.mode else {
                return Ok(sb);
            };
            sb = self
                .md
                .read(|tx| tx.sandbox(&sb.namespace, target))?
                .ok_or_else(|| NetworkError::NoSandbox {
                    container: target.clone(),
                })?;
        }
        Err(NetworkError::InvalidArgument(
            "container: network modes nest too deep".into(),
        ))
    }

    /// The sandbox of the container named or with id `name_or_id` in `ns`.
    fn find_sandbox(
        &self,
        tx: &crate::metadata::ReadTx,
        ns: &str,
        name_or_id: &str,
    ) -> crate::error::Result<Option<Sandbox>> {
        if let Some(s) = tx.sandbox(ns, name_or_id)? {
            return Ok(Some(s));
        }
        Ok(tx
            .sandboxes()?
            .into_iter()
            .find(|s| s.namespace == ns && !s.name.is_empty() && s.name == name_or_id))
    }

    /// The network namespace a `--network container:NAME|ID` container must join, and
    /// the files it must mount (the target's).
    pub fn container_netns(&self, ns: &str, name_or_id: &str) -> Result<(PathBuf, Files)> {
        let sb = self
            .md
            .read(|tx| self.find_sandbox(tx, ns, name_or_id))?
            .ok_or_else(|| NetworkError::NoSandbox {
                container: name_or_id.into(),
            })?;
        let sb = self.resolve_joined(sb)?;
        Ok((sb.netns, sb.files))
    }

    /// Connects a container with networking set up to one more bridge network (as
    /// `ethN`, the next free N). Its default route stays where it is.
    pub async fn connect(
        &self,
        ns: &str,
        container: &str,
        network: &str,
        opts: &ConnectOptions,
    ) -> Result<Endpoint> {
        check_names("alias", &opts.aliases)?;
        let mut rt = self.runtime.lock().await;
        let (sb, networks, mine) = self.md.read(|tx| {
            Ok((
                tx.sandbox(ns, container)?,
                tx.networks()?,
                tx.container_endpoints(ns, container)?,
            ))
        })?;
        let sb = sb.ok_or_else(|| NetworkError::NoSandbox {
            container: container.into(),
        })?;
        let net = find(&networks, network)?;
        if sb.mode != SandboxMode::Bridged || net.driver != Driver::Bridge {
            return Err(NetworkError::InvalidArgument(format!(
                "container {container} can only be connected to bridge networks, and only when it has its own network namespace"
            )));
        }
        if opts.ip.is_some() && net.predefined {
            return Err(NetworkError::InvalidArgument(format!(
                "a fixed address needs a user-defined network, not {}",
                net.name
            )));
        }
        let used: Vec<&str> = mine.iter().map(|e| e.ifname.as_str()).collect();
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !used.contains(&n.as_str()))
            .expect("some ethN is free");
        let ep = self
            .add_endpoint(
                &mut rt,
                NewEndpoint {
                    sandbox: &sb,
                    network: &net,
                    ip: opts.ip,
                    aliases: &opts.aliases,
                    ports: &[],
                    ifname,
                    default_route: mine.is_empty(),
                },
            )
            .await?;
        if sb.unattached {
            self.save_sandbox(&Sandbox {
                unattached: false,
                ..sb.clone()
            })?;
        }
        self.refresh_hosts(ns)?;
        Ok(self.endpoint_of(&net, &sb, &ep))
    }

    fn save_sandbox(&self, sb: &Sandbox) -> Result<()> {
        write(&self.md, |tx| {
            tx.put(SANDBOXES, &key(&[&sb.namespace, &sb.container]), sb)?;
            Ok(())
        })
    }

    /// Writes the container's files and rewrites the hosts files of its namespace.
    fn finish_files(&self, sb: &Sandbox) -> Result<()> {
        let view = self.view()?;
        self.write_files(&view, sb)?;
        self.refresh_hosts(&sb.namespace)
    }

    fn bare_endpoint(&self, net: &Network, sb: &Sandbox) -> Endpoint {
        Endpoint {
            network: net.name.clone(),
            network_id: net.id.clone(),
            ip: None,
            prefix_len: 0,
            gateway: None,
            mac: None,
            ifname: None,
            ports: Vec::new(),
            netns: sb.netns.clone(),
            files: sb.files.clone(),
        }
    }

    fn endpoint_of(&self, net: &Network, sb: &Sandbox, ep: &EndpointRecord) -> Endpoint {
        Endpoint {
            network: net.name.clone(),
            network_id: net.id.clone(),
            ip: Some(ep.ip),
            prefix_len: ep.prefix_len,
            gateway: Some(ep.gateway),
            mac: Some(ep.mac.clone()),
            ifname: Some(ep.ifname.clone()),
            ports: ep.ports.clone(),
            netns: sb.netns.clone(),
            files: sb.files.clone(),
        }
    }

    /// Adds one endpoint: host ports bound first (a port in use fails before anything
    /// exists), then the record with its address, then the kernel objects and rules,
    /// then the proxies. Any failure undoes what was done.
    async fn add_endpoint(&self, rt: &mut Runtime, new: NewEndpoint<'_>) -> Result<EndpointRecord> {
        let sb = new.sandbox;
        let net = new.network;
        let (ns, container) = (sb.namespace.as_str(), sb.container.as_str());
        let ekey = endpoint_key(ns, container, &net.id);
        let (Some(subnet), Some(gateway)) = (net.subnet, net.gateway) else {
            return Err(NetworkError::Internal(format!(
                "network {} has no subnet",
                net.name
            )));
        };

        // 1. Host ports.
        let mut bound: Vec<(PortMapping, Bound)> = Vec::new();
        for spec in new.ports {
            if bound.iter().any(|(m, _)| {
                m.container_port == spec.container_port
                    && m.proto == spec.proto
                    && spec.host_ports.is_none()
            }) {
                // `-P` and `-p` naming the same port: one mapping is enough.
                continue;
            }
            bound.push(proxy::bind_spec(
                spec,
                self.settings.port_range,
                &mut rt.port_cursor,
            )?);
        }
        let mappings: Vec<PortMapping> = bound.iter().map(|(m, _)| *m).collect();

        // 2. The record and the address, in one transaction.
        let veth = veth_name(ns, container, &net.id);
        let record = write(&self.md, |tx| {
            if tx.get::<EndpointRecord>(ENDPOINTS, &ekey)?.is_some() {
                return Err(NetworkError::AlreadyConnected {
                    container: container.into(),
                    network: net.name.clone(),
                });
            }
            let holder = AddressHolder {
                namespace: ns.into(),
                container: container.into(),
            };
            let ip = ipam::allocate(tx, net, new.ip, &holder)?;
            let rec = EndpointRecord {
                namespace: ns.into(),
                container: container.into(),
                network_id: net.id.clone(),
                name: sb.name.clone(),
                aliases: new.aliases.to_vec(),
                ip,
                prefix_len: subnet.prefix(),
                gateway,
                mac: mac_text(mac_for(ip)),
                veth: veth.clone(),
                ifname: new.ifname.clone(),
                default_route: new.default_route,
                ports: mappings.clone(),
                state: EndpointState::Creating,
                created_at: now_nanos(),
            };
            tx.put(ENDPOINTS, &ekey, &rec)?;
            Ok(rec)
        })?;

        // 3. Kernel objects, rules, proxies.
        let host = Netlink::host()?;
        let made = async {
            self.ensure_bridge(&host, net).await?;
            let bridge = host
                .link(&net.bridge)
                .await?
                .ok_or_else(|| NetworkError::Internal(format!("bridge {} vanished", net.bridge)))?;
            // A veth of this very endpoint left by a crash is stale.
            host.delete_link(&veth).await?;
            let ns_file = File::open(&sb.netns).map_err(|e| {
                NetworkError::io(format!("open network namespace {}", sb.netns.display()), e)
            })?;
            host.create_veth(
                &veth,
                bridge.index,
                &record.ifname,
                &ns_file,
                net.mtu,
                mac_for(record.ip),
            )
            .await?;
            if !self.settings.userland_proxy {
                let link = host
                    .link(&veth)
                    .await?
                    .ok_or_else(|| NetworkError::Internal(format!("veth {veth} vanished")))?;
                host.set_hairpin(link.index, &veth).await?;
            }
            let inner = Netlink::in_netns(&sb.netns)?;
            if let Some(lo) = inner.link("lo").await? {
                inner.set_up(lo.index, "lo").await?;
            }
            let eth = inner.link(&record.ifname).await?.ok_or_else(|| {
                NetworkError::Internal(format!(
                    "{} missing in {}",
                    record.ifname,
                    sb.netns.display()
                ))
            })?;
            inner
                .add_address(eth.index, record.ip, record.prefix_len)
                .await?;
            inner.set_up(eth.index, &record.ifname).await?;
            if record.default_route {
                inner.set_default_route(gateway).await?;
            }
            self.apply_table(net).await?;
            Ok::<(), NetworkError>(())
        }
        .await;
        let made = made.and_then(|()| {
            let mut fwds = Vec::new();
            for (m, b) in bound {
                fwds.push(if self.settings.userland_proxy {
                    Forwarder::proxy(b, SocketAddrV4::new(record.ip, m.container_port))?
                } else {
                    Forwarder::Held(b)
                });
            }
            Ok(fwds)
        });
        let fwds = match made {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(container = %container, network = %net.name, error = %e, "attach failed; undoing");
                if let Err(u) = host.delete_link(&veth).await {
                    tracing::warn!(veth = %veth, error = %u, "undo: delete veth");
                }
                if let Err(u) = write(&self.md, |tx| {
                    tx.remove(ENDPOINTS, &ekey)?;
                    ipam::release(tx, &net.id, record.ip)?;
                    Ok(())
                }) {
                    tracing::warn!(error = %u, "undo: remove endpoint record");
                }
                if let Err(u) = self.apply_table(net).await {
                    tracing::warn!(network = %net.name, error = %u, "undo: rewrite nft table");
                }
                return Err(e);
            }
        };
        rt.forwarders.insert(ekey.clone(), fwds);
        let record = write(&self.md, |tx| {
            let mut rec = record.clone();
            rec.state = EndpointState::Ready;
            tx.put(ENDPOINTS, &ekey, &rec)?;
            Ok(rec)
        })?;
        tracing::info!(container = %container, network = %net.name, ip = %record.ip, veth = %veth, "endpoint attached");
        Ok(record)
    }

    /// Rewrites the nft table of `net` from its endpoints, or deletes it when it has none.
    pub(super) async fn apply_table(&self, net: &Network) -> Result<()> {
        let Some(subnet) = net.subnet else {
            return Ok(());
        };
        let eps: Vec<EndpointRecord> = self
            .md
            .read(|tx| tx.endpoints())?
            .into_iter()
            .filter(|e| e.network_id == net.id)
            .collect();
        if eps.is_empty() {
            return nft::delete(&net.bridge).await;
        }
        let spec = nft::TableSpec {
            bridge: net.bridge.clone(),
            subnet,
            masquerade: self.settings.masquerade,
            userland_proxy: self.settings.userland_proxy,
            ports: eps
                .iter()
                .flat_map(|e| e.ports.iter().map(move |m| (*m, e.ip)))
                .collect(),
        };
        nft::apply(&spec).await
    }

    /// The published ports of a container.
    pub fn ports(&self, ns: &str, container: &str) -> Result<Vec<PortMapping>> {
        let mut out: Vec<PortMapping> = self
            .md
            .read(|tx| tx.container_endpoints(ns, container))?
            .into_iter()
            .flat_map(|e| e.ports)
            .collect();
        out.sort();
        Ok(out)
    }

    /// The endpoints of a container.
    pub fn endpoints(&self, ns: &str, container: &str) -> Result<Vec<EndpointRecord>> {
        Ok(self.md.read(|tx| tx.container_endpoints(ns, container))?)
    }

    /// The networking record of a container, if it has one.
    pub fn sandbox(&self, ns: &str, container: &str) -> Result<Option<Sandbox>> {
        Ok(self.md.read(|tx| tx.sandbox(ns, container))?)
    }
}

/// Sets loopback up inside the namespace at `netns`.
pub(super) async fn loopback_up(netns: &Path) -> Result<()> {
    let inner = Netlink::in_netns(netns)?;
    let lo = inner
        .link("lo")
        .await?
        .ok_or_else(|| NetworkError::Internal(format!("no lo in {}", netns.display())))?;
    inner.set_up(lo.index, "lo").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_limits() {
        let v = veth_name("default", "abc", &"f".repeat(64));
        assert_eq!(v.len(), 15);
        assert!(v.starts_with("veth"));
        assert_ne!(v, veth_name("default", "abd", &"f".repeat(64)));
        assert_eq!(
            mac_text(mac_for(Ipv4Addr::new(10, 88, 0, 2))),
            "02:42:0a:58:00:02"
        );
    }
}
