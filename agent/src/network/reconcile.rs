//! Start and stop: `reconcile` brings the kernel and the records in line with the
//! containers that are still alive (after a restart or a crash), `shutdown` removes
//! berth's rules and proxies when berthd exits (containers keep their veths and
//! addresses; the next reconcile restores their rules and proxies).

use std::collections::HashSet;
use std::net::SocketAddrV4;

use super::error::Result;
use super::netlink::Netlink;
use super::nft;
use super::proxy::{self, Forwarder};
use super::records::{
    ADDRESSES, Driver, ENDPOINTS, EndpointState, SANDBOXES, address_key, endpoint_key,
};
use super::{Networks, write};
use crate::metadata::key;

/// What [`Networks::reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// `ns/container` whose leftovers were removed.
    pub removed: Vec<String>,
    /// Veths found on berth's bridges that no record explains, deleted.
    pub stray_links: Vec<String>,
    /// Published ports of live containers whose proxy (or held socket) was restored.
    pub restored_ports: usize,
    /// What could not be restored or removed, for the log.
    pub warnings: Vec<String>,
}

impl Networks {
    /// Removes what belongs to containers not in `live` (`(namespace, id)` pairs):
    /// their veths, addresses, records and files, and endpoints a crash left half made;
    /// deletes veths on berth's bridges that no record explains; rewrites every
    /// network's nft table; and restores the proxies of the live containers' ports.
    pub async fn reconcile(&self, live: &[(String, String)]) -> Result<ReconcileReport> {
        let mut rt = self.runtime.lock().await;
        let live: HashSet<(&str, &str)> =
            live.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
        let mut report = ReconcileReport::default();
        let host = Netlink::host()?;
        let (sandboxes, endpoints, networks) = self
            .md
            .read(|tx| Ok((tx.sandboxes()?, tx.endpoints()?, tx.networks()?)))?;

        let mut touched_ns: HashSet<String> = HashSet::new();
        let mut kept = Vec::new();
        for ep in endpoints {
            let alive = live.contains(&(ep.namespace.as_str(), ep.container.as_str()));
            if alive && ep.state == EndpointState::Ready {
                kept.push(ep);
                continue;
            }
            let ekey = endpoint_key(&ep.namespace, &ep.container, &ep.network_id);
            if let Some(fwds) = rt.forwarders.remove(&ekey) {
                for f in fwds {
                    f.stop().await;
                }
            }
            if let Err(e) = host.delete_link(&ep.veth).await {
                report
                    .warnings
                    .push(format!("delete veth {}: {e}", ep.veth));
                continue;
            }
            write(&self.md, |tx| {
                tx.remove(ENDPOINTS, &ekey)?;
                tx.remove(ADDRESSES, &address_key(&ep.network_id, ep.ip))?;
                Ok(())
            })?;
            touched_ns.insert(ep.namespace.clone());
            report
                .removed
                .push(format!("{}/{}", ep.namespace, ep.container));
        }
        for sb in &sandboxes {
            let alive = live.contains(&(sb.namespace.as_str(), sb.container.as_str()));
            // A bridged container left without endpoints, unless disconnected from all on
            // purpose, never finished its attach.
            let unfinished = sb.mode == super::SandboxMode::Bridged
                && !sb.unattached
                && !kept
                    .iter()
                    .any(|e| e.namespace == sb.namespace && e.container == sb.container);
            if alive && !unfinished {
                continue;
            }
            write(&self.md, |tx| {
                tx.remove(SANDBOXES, &key(&[&sb.namespace, &sb.container]))?;
                Ok(())
            })?;
            if !matches!(sb.mode, super::SandboxMode::Container { .. }) {
                let dir = self.container_dir(&sb.namespace, &sb.container);
                let _ = std::fs::remove_dir_all(&dir);
            }
            touched_ns.insert(sb.namespace.clone());
            report
                .removed
                .push(format!("{}/{}", sb.namespace, sb.container));
        }
        report.removed.sort();
        report.removed.dedup();

        // Allocations whose endpoint is gone (an interrupted removal).
        write(&self.md, |tx| {
            for net in &networks {
                for (ip, h) in tx.addresses(&net.id)? {
                    let held = kept.iter().any(|e| {
                        e.network_id == net.id
                            && e.ip == ip
                            && e.namespace == h.namespace
                            && e.container == h.container
                    });
                    if !held {
                        tx.remove(ADDRESSES, &address_key(&net.id, ip))?;
                    }
                }
            }
            Ok(())
        })?;

        // Veths on berth's bridges that no live endpoint owns.
        let links = host.links().await?;
        let ours: HashSet<&str> = kept.iter().map(|e| e.veth.as_str()).collect();
        for net in networks.iter().filter(|n| n.driver == Driver::Bridge) {
            let Some(bridge) = links.iter().find(|l| l.name == net.bridge) else {
                continue;
            };
            for l in links.iter().filter(|l| l.controller == Some(bridge.index)) {
                if l.name.starts_with("veth") && !ours.contains(l.name.as_str()) {
                    match host.delete_link(&l.name).await {
                        Ok(_) => report.stray_links.push(l.name.clone()),
                        Err(e) => report
                            .warnings
                            .push(format!("delete stray {}: {e}", l.name)),
                    }
                }
            }
        }

        // Rules, bridges and proxies of what lives.
        for net in networks.iter().filter(|n| n.driver == Driver::Bridge) {
            let has = kept.iter().any(|e| e.network_id == net.id);
            if has && let Err(e) = self.ensure_bridge(&host, net).await {
                report.warnings.push(format!("bridge {}: {e}", net.bridge));
            }
            if let Err(e) = self.apply_table(net).await {
                report
                    .warnings
                    .push(format!("nft table of {}: {e}", net.name));
            }
        }
        for ep in &kept {
            let ekey = endpoint_key(&ep.namespace, &ep.container, &ep.network_id);
            if ep.ports.is_empty() || rt.forwarders.contains_key(&ekey) {
                continue;
            }
            let mut fwds = Vec::new();
            for m in &ep.ports {
                let spec = super::PortSpec {
                    host_ip: Some(m.host_ip),
                    host_ports: Some((m.host_port, m.host_port)),
                    container_port: m.container_port,
                    proto: m.proto,
                };
                let mut cursor = 0;
                let restored = proxy::bind_spec(&spec, self.settings.port_range, &mut cursor)
                    .and_then(|(_, b)| {
                        if self.settings.userland_proxy {
                            Forwarder::proxy(b, SocketAddrV4::new(ep.ip, m.container_port))
                        } else {
                            Ok(Forwarder::Held(b))
                        }
                    });
                match restored {
                    Ok(f) => {
                        fwds.push(f);
                        report.restored_ports += 1;
                    }
                    Err(e) => report.warnings.push(format!(
                        "port {m} of {}/{}: {e}",
                        ep.namespace, ep.container
                    )),
                }
            }
            rt.forwarders.insert(ekey, fwds);
        }
        drop(rt);

        // Files of containers whose directory has no record.
        if let Ok(namespaces) = std::fs::read_dir(self.dir.join("containers")) {
            let live_sb: HashSet<(String, String)> = self
                .md
                .read(|tx| tx.sandboxes())?
                .into_iter()
                .map(|s| (s.namespace, s.container))
                .collect();
            for nsdir in namespaces.flatten() {
                let ns = nsdir.file_name().to_string_lossy().into_owned();
                if let Ok(cs) = std::fs::read_dir(nsdir.path()) {
                    for c in cs.flatten() {
                        let id = c.file_name().to_string_lossy().into_owned();
                        if !live_sb.contains(&(ns.clone(), id)) {
                            let _ = std::fs::remove_dir_all(c.path());
                        }
                    }
                }
                let _ = std::fs::remove_dir(nsdir.path());
            }
        }
        for ns in touched_ns {
            self.refresh_hosts(&ns)?;
        }
        for w in &report.warnings {
            tracing::warn!(warning = %w, "network reconcile");
        }
        if !report.removed.is_empty() || !report.stray_links.is_empty() {
            tracing::info!(removed = ?report.removed, stray = ?report.stray_links, "network reconcile removed leftovers");
        }
        Ok(report)
    }

    /// Stops every proxy and deletes berth's nft tables. Veths, addresses and records
    /// stay: the containers keep running, and the next [`Networks::reconcile`] restores
    /// their rules and proxies.
    pub async fn shutdown(&self) -> Result<()> {
        let mut rt = self.runtime.lock().await;
        for (_, fwds) in rt.forwarders.drain() {
            for f in fwds {
                f.stop().await;
            }
        }
        let networks = self.md.read(|tx| tx.networks())?;
        let mut first_err = None;
        for net in networks.iter().filter(|n| n.driver == Driver::Bridge) {
            if let Err(e) = nft::delete(&net.bridge).await {
                tracing::warn!(network = %net.name, error = %e, "shutdown: delete nft table");
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
