//! A container's networking through the network subsystem: checking the network flags
//! at create, and at start pinning a network namespace under the container's state
//! directory *before* the task exists, attaching it (bridge, user network, `none`,
//! `host`, `container:X`; ports, links, extra hosts, DNS, hostname) and connecting the
//! networks of `network connect`, and taking it all down again at exit.

use std::net::IpAddr;
use std::sync::Arc;

use super::model::{HostConfig, Record};
use super::spec::NetNs;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::network::{
    self, DnsConfig, EndpointRequest, ExtraHost, Files, Link, PortSpec, netns, parse_exposed,
    parse_publish,
};

/// The network mode as berth names it: `bridge`, `none`, `host`, `container:X` or a
/// user network.
pub fn mode(hc: &HostConfig) -> &str {
    match hc.network_mode.as_str() {
        "" | "default" => network::BRIDGE,
        m => m,
    }
}

/// The container a `container:X` mode joins.
pub fn joined(hc: &HostConfig) -> Option<&str> {
    mode(hc).strip_prefix("container:")
}

fn dns(hc: &HostConfig) -> Result<DnsConfig> {
    let servers = hc
        .dns
        .iter()
        .map(|s| {
            s.parse::<IpAddr>()
                .map_err(|_| Error::InvalidArgument(format!("--dns {s:?} is not an IP address")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DnsConfig {
        servers,
        search: hc.dns_search.clone(),
        options: hc.dns_options.clone(),
    })
}

fn ports(hc: &HostConfig, exposed: &[String]) -> Result<Vec<PortSpec>> {
    let mut out = Vec::new();
    for p in &hc.publish {
        out.extend(parse_publish(p).map_err(|e| Error::InvalidArgument(format!("-p {p}: {e}")))?);
    }
    if hc.publish_all_ports {
        for e in exposed {
            for (port, proto) in parse_exposed(e)
                .map_err(|e| Error::InvalidArgument(format!("exposed port: {e}")))?
            {
                if !out
                    .iter()
                    .any(|s| s.container_port == port && s.proto == proto)
                {
                    out.push(PortSpec::random(port, proto));
                }
            }
        }
    }
    Ok(out)
}

/// Checks the network flags at create; returns warnings (docker's).
pub fn validate(
    core: &Arc<Core>,
    ns: &str,
    hc: &HostConfig,
    exposed: &[String],
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let m = mode(hc);
    ports(hc, exposed)?;
    for l in &hc.links {
        let link =
            Link::parse(l).map_err(|e| Error::InvalidArgument(format!("--link {l}: {e}")))?;
        core.berth.store.resolve(ns, &link.name).map_err(|_| {
            Error::InvalidArgument(format!(
                "could not get container for {}: no such container",
                link.name
            ))
        })?;
    }
    for h in &hc.extra_hosts {
        ExtraHost::parse(h).map_err(|e| Error::InvalidArgument(format!("--add-host: {e}")))?;
    }
    dns(hc)?;
    if let Some(target) = joined(hc) {
        core.berth.store.resolve(ns, target)?;
        if !hc.publish.is_empty() || hc.publish_all_ports {
            return Err(Error::InvalidArgument(
                "conflicting options: port publishing and the container type network mode".into(),
            ));
        }
        if !hc.links.is_empty() || !hc.extra_hosts.is_empty() || !hc.dns.is_empty() {
            return Err(Error::InvalidArgument(
                "conflicting options: --link, --add-host or --dns and the container type network mode"
                    .into(),
            ));
        }
    } else if m == network::HOST {
        if !hc.publish.is_empty() || hc.publish_all_ports {
            warnings.push("Published ports are discarded when using host network mode".into());
        }
        if !hc.links.is_empty() {
            return Err(Error::InvalidArgument(
                "conflicting options: --link and the host network mode".into(),
            ));
        }
    } else if m != network::NONE && m != network::BRIDGE {
        core.networks.inspect(m).map_err(Error::from)?;
    }
    Ok(warnings)
}

/// What start set up.
pub struct Setup {
    pub netns: NetNs,
    pub files: Files,
}

/// Sets the container's networking up; nothing is left behind when it fails.
pub async fn setup(core: &Arc<Core>, ns: &str, rec: &Record) -> Result<Setup> {
    let hc = &rec.host_config;
    let m = mode(hc).to_string();
    let mut req = EndpointRequest {
        network: m.clone(),
        name: rec.name.clone(),
        ports: ports(
            hc,
            &rec.config.exposed_ports.keys().cloned().collect::<Vec<_>>(),
        )?,
        hostname: rec.config.hostname.clone(),
        domainname: rec.config.domainname.clone(),
        dns: dns(hc)?,
        ..Default::default()
    };
    for l in &hc.links {
        let link = Link::parse(l).map_err(Error::InvalidArgument)?;
        let target = core.berth.store.resolve(ns, &link.name)?;
        req.links.push(Link {
            name: target.name,
            alias: link.alias,
        });
    }
    for h in &hc.extra_hosts {
        req.extra_hosts
            .push(ExtraHost::parse(h).map_err(Error::InvalidArgument)?);
    }
    if let Some(target) = joined(hc) {
        let target = core.berth.store.resolve(ns, target)?;
        if target.state.status != super::Status::Running {
            return Err(Error::FailedPrecondition(format!(
                "cannot join the network of container {}: it is not running",
                target.name
            )));
        }
        let (path, _) = core.networks.container_netns(ns, &target.id)?;
        req.network = format!("container:{}", target.id);
        req.hostname.clear();
        let ep = core.networks.attach(ns, &rec.id, &path, &req).await?;
        return Ok(Setup {
            netns: NetNs::Path(ep.netns),
            files: ep.files,
        });
    }
    if m == network::HOST {
        req.ports.clear();
        let ep = core
            .networks
            .attach(ns, &rec.id, std::path::Path::new(netns::SELF_NETNS), &req)
            .await?;
        return Ok(Setup {
            netns: NetNs::Host,
            files: ep.files,
        });
    }
    let path = core.berth.netns_path(ns, &rec.id);
    // A namespace left by a crash is replaced.
    netns::remove(&path)?;
    netns::create(&path)?;
    let ep = match core.networks.attach(ns, &rec.id, &path, &req).await {
        Ok(ep) => ep,
        Err(e) => {
            if let Err(rm) = netns::remove(&path) {
                tracing::warn!(container = %rec.id, error = %rm, "remove network namespace");
            }
            return Err(e.into());
        }
    };
    // The networks joined with `network connect`.
    if let Err(e) = super::connect::restore(core, ns, rec).await {
        teardown(core, ns, &rec.id).await;
        return Err(e);
    }
    Ok(Setup {
        netns: NetNs::Path(path.clone()),
        files: ep.files,
    })
}

/// Takes the container's networking down (idempotent).
pub async fn teardown(core: &Arc<Core>, ns: &str, id: &str) {
    if let Err(e) = core.networks.detach(ns, id).await {
        tracing::warn!(container = %id, error = %e, "release the network");
    }
    if let Err(e) = netns::remove(&core.berth.netns_path(ns, id)) {
        tracing::warn!(container = %id, error = %e, "remove the network namespace");
    }
}
