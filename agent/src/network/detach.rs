//! Taking a container's networking down: `disconnect` (one network) and `detach`
//! (everything, when the container is removed). Proxies stop, the veth goes, the rules
//! are rewritten, then the address and the records are released; a crash in between
//! leaves records that reconcile finishes.

use super::error::{NetworkError, Result};
use super::netlink::Netlink;
use super::networks::find;
use super::records::{ENDPOINTS, EndpointRecord, SANDBOXES, Sandbox, SandboxMode, endpoint_key};
use super::{Networks, Runtime, ipam, write};
use crate::metadata::key;

impl Networks {
    /// Removes all networking of a container: its endpoints, published ports, address
    /// allocations, records and files. A container without networking is fine.
    pub async fn detach(&self, ns: &str, container: &str) -> Result<()> {
        let mut rt = self.runtime.lock().await;
        let (sb, eps) = self.md.read(|tx| {
            Ok((
                tx.sandbox(ns, container)?,
                tx.container_endpoints(ns, container)?,
            ))
        })?;
        for ep in &eps {
            self.remove_endpoint(&mut rt, ep).await?;
        }
        if let Some(sb) = &sb {
            write(&self.md, |tx| {
                tx.remove(SANDBOXES, &key(&[ns, container]))?;
                Ok(())
            })?;
            if !matches!(sb.mode, SandboxMode::Container { .. }) {
                self.remove_files(ns, container);
            }
        }
        if !eps.is_empty() {
            self.refresh_hosts(ns)?;
        }
        Ok(())
    }

    /// Disconnects a container from one network. When that endpoint carried the default
    /// route, another endpoint's gateway takes it over; when it was the last one, the
    /// container keeps loopback only.
    pub async fn disconnect(&self, ns: &str, container: &str, network: &str) -> Result<()> {
        let mut rt = self.runtime.lock().await;
        let (sb, networks) = self
            .md
            .read(|tx| Ok((tx.sandbox(ns, container)?, tx.networks()?)))?;
        let sb = sb.ok_or_else(|| NetworkError::NoSandbox {
            container: container.into(),
        })?;
        let net = find(&networks, network)?;
        let ep: Option<EndpointRecord> = self
            .md
            .read(|tx| tx.get(ENDPOINTS, &endpoint_key(ns, container, &net.id)))?;
        let ep = ep.ok_or_else(|| NetworkError::NotConnected {
            container: container.into(),
            network: net.name.clone(),
        })?;
        self.remove_endpoint(&mut rt, &ep).await?;
        let rest = self.md.read(|tx| tx.container_endpoints(ns, container))?;
        if rest.is_empty() && sb.mode == SandboxMode::Bridged {
            // Loopback only from now on, kept so by reconcile until connected again.
            write(&self.md, |tx| {
                let marked = Sandbox {
                    unattached: true,
                    ..sb.clone()
                };
                tx.put(SANDBOXES, &key(&[ns, container]), &marked)?;
                Ok(())
            })?;
        }
        if ep.default_route
            && let Some(next) = rest.iter().min_by(|a, b| a.ifname.cmp(&b.ifname))
        {
            let inner = Netlink::in_netns(&sb.netns)?;
            inner.set_default_route(next.gateway).await?;
            let mut next = next.clone();
            next.default_route = true;
            write(&self.md, |tx| {
                tx.put(
                    ENDPOINTS,
                    &endpoint_key(ns, container, &next.network_id),
                    &next,
                )?;
                Ok(())
            })?;
        }
        self.refresh_hosts(ns)
    }

    /// Stops an endpoint's proxies, deletes its veth, rewrites its network's rules and
    /// releases its address and record.
    pub(super) async fn remove_endpoint(
        &self,
        rt: &mut Runtime,
        ep: &EndpointRecord,
    ) -> Result<()> {
        let ekey = endpoint_key(&ep.namespace, &ep.container, &ep.network_id);
        if let Some(fwds) = rt.forwarders.remove(&ekey) {
            for f in fwds {
                f.stop().await;
            }
        }
        Netlink::host()?.delete_link(&ep.veth).await?;
        write(&self.md, |tx| {
            tx.remove(ENDPOINTS, &ekey)?;
            ipam::release(tx, &ep.network_id, ep.ip)?;
            Ok(())
        })?;
        let net = self
            .md
            .read(|tx| Ok(tx.networks()?.into_iter().find(|n| n.id == ep.network_id)))?;
        if let Some(net) = net {
            self.apply_table(&net).await?;
        }
        tracing::info!(container = %ep.container, ip = %ep.ip, veth = %ep.veth, "endpoint detached");
        Ok(())
    }

    fn remove_files(&self, ns: &str, container: &str) {
        let dir = self.container_dir(ns, container);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %dir.display(), error = %e, "remove network files"),
        }
        // The namespace's directory goes with its last container.
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}
