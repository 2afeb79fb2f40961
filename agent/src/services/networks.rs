//! berth.v1.Networks: converts and delegates to [`network`](crate::network), with
//! docker's `network ls` filters and a `network` event for each creation, removal,
//! connection and disconnection. `connect`/`disconnect` delegate to
//! [`berth_containers`](crate::berth_containers), which keeps them in the container's
//! record.

use std::sync::Arc;

use berth_api::berth::v1::{self as pb, networks_server};
use tonic::{Request, Response, Status};

use super::namespace;
use crate::berth_containers::{self, Changed, ConnectRequest};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::journal::{Kind, attrs};
use crate::network::{NetworkCreate, NetworkDetails};
use crate::objects::{label_matches, parse_filters};

pub struct Networks {
    core: Arc<Core>,
}

impl Networks {
    pub fn new(core: Arc<Core>) -> Self {
        Networks { core }
    }

    /// docker's `network connect`/`disconnect` event: the network is the actor, the
    /// container an attribute.
    fn emit(&self, ns: &str, action: &str, done: &Changed) {
        let n = &done.network;
        self.core.journal.emit(
            ns,
            Kind::Network,
            action,
            &n.id,
            attrs([
                ("container", done.container_id.as_str()),
                ("name", n.name.as_str()),
                ("type", n.driver.as_str()),
            ]),
        );
    }
}

fn network_out(d: NetworkDetails) -> pb::Network {
    let n = d.network;
    pb::Network {
        id: n.id,
        name: n.name,
        driver: n.driver.as_str().into(),
        bridge: n.bridge,
        subnet: n.subnet.map(|s| s.to_string()).unwrap_or_default(),
        gateway: n.gateway.map(|g| g.to_string()).unwrap_or_default(),
        mtu: n.mtu,
        labels: n.labels.into_iter().collect(),
        predefined: n.predefined,
        created: Some(berth_api::time::from_unix_nanos(n.created_at)),
        endpoints: d
            .endpoints
            .into_iter()
            .map(|e| pb::NetworkEndpoint {
                namespace: e.namespace,
                container_id: e.container,
                container_name: e.name,
                ip: e.ip.to_string(),
                prefix_len: e.prefix_len.into(),
                mac: e.mac,
                ifname: e.ifname,
                aliases: e.aliases,
            })
            .collect(),
    }
}

/// Whether a network passes docker's `network ls` filters.
fn matches(d: &NetworkDetails, filters: &[(&str, &str)]) -> Result<bool> {
    let n = &d.network;
    for (k, v) in filters {
        let ok = match *k {
            "name" => n.name.contains(v),
            "id" => n.id.starts_with(v),
            "driver" => n.driver.as_str() == *v,
            "label" => label_matches(&n.labels, v),
            "type" => match *v {
                "custom" => !n.predefined,
                "builtin" => n.predefined,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "invalid filter 'type={v}' (custom or builtin)"
                    )));
                }
            },
            _ => match *v {
                "true" | "1" => d.endpoints.is_empty() && !n.predefined,
                "false" | "0" => !d.endpoints.is_empty() || n.predefined,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "invalid filter 'dangling={v}' (true or false)"
                    )));
                }
            },
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn parse_opt<T: std::str::FromStr>(what: &str, v: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|e| Error::InvalidArgument(format!("invalid {what} {v:?}: {e}")))
}

#[tonic::async_trait]
impl networks_server::Networks for Networks {
    async fn create(
        &self,
        req: Request<pb::CreateNetworkRequest>,
    ) -> std::result::Result<Response<pb::CreateNetworkResponse>, Status> {
        let r = req.into_inner();
        let create = NetworkCreate {
            name: r.name,
            driver: r.driver,
            subnet: parse_opt("subnet", &r.subnet)?,
            gateway: parse_opt("gateway", &r.gateway)?,
            bridge: (!r.bridge.is_empty()).then_some(r.bridge),
            mtu: (r.mtu > 0).then_some(r.mtu),
            labels: r.labels.into_iter().collect(),
        };
        let n = self
            .core
            .networks
            .create(&create)
            .await
            .map_err(Error::from)?;
        self.core.journal.emit(
            "",
            Kind::Network,
            "create",
            &n.id,
            attrs([("name", n.name.as_str()), ("type", n.driver.as_str())]),
        );
        Ok(Response::new(pb::CreateNetworkResponse { id: n.id }))
    }

    async fn list(
        &self,
        req: Request<pb::ListNetworksRequest>,
    ) -> std::result::Result<Response<pb::ListNetworksResponse>, Status> {
        let r = req.into_inner();
        let filters = parse_filters(
            &r.filters,
            &["name", "id", "driver", "label", "type", "dangling"],
        )?;
        let mut out = Vec::new();
        for n in self.core.networks.list().map_err(Error::from)? {
            let d = self.core.networks.inspect(&n.id).map_err(Error::from)?;
            if matches(&d, &filters)? {
                out.push(network_out(d));
            }
        }
        Ok(Response::new(pb::ListNetworksResponse { networks: out }))
    }

    async fn inspect(
        &self,
        req: Request<pb::InspectNetworkRequest>,
    ) -> std::result::Result<Response<pb::InspectNetworkResponse>, Status> {
        let d = self
            .core
            .networks
            .inspect(&req.get_ref().id)
            .map_err(Error::from)?;
        Ok(Response::new(pb::InspectNetworkResponse {
            network: Some(network_out(d)),
        }))
    }

    async fn remove(
        &self,
        req: Request<pb::RemoveNetworkRequest>,
    ) -> std::result::Result<Response<pb::RemoveNetworkResponse>, Status> {
        let n = self
            .core
            .networks
            .remove(&req.get_ref().id)
            .await
            .map_err(Error::from)?;
        self.core.journal.emit(
            "",
            Kind::Network,
            "destroy",
            &n.id,
            attrs([("name", n.name.as_str()), ("type", n.driver.as_str())]),
        );
        Ok(Response::new(pb::RemoveNetworkResponse {}))
    }

    async fn prune(
        &self,
        req: Request<pb::PruneNetworksRequest>,
    ) -> std::result::Result<Response<pb::PruneNetworksResponse>, Status> {
        let filter = crate::prune::PruneFilter::parse(&req.get_ref().filters)?;
        let deleted = self
            .core
            .networks
            .prune(|n| filter.passes(&n.labels, n.created_at))
            .await
            .map_err(Error::from)?;
        for name in &deleted {
            self.core.journal.emit(
                "",
                Kind::Network,
                "destroy",
                name,
                attrs([("name", name.as_str())]),
            );
        }
        Ok(Response::new(pb::PruneNetworksResponse { deleted }))
    }

    #[tracing::instrument(skip_all, fields(network = %req.get_ref().network, container = %req.get_ref().container))]
    async fn connect_container(
        &self,
        req: Request<pb::ConnectNetworkRequest>,
    ) -> std::result::Result<Response<pb::ConnectNetworkResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let ip = parse_opt("IPv4 address", &r.ip)?;
        let request = ConnectRequest {
            network: r.network,
            container: r.container,
            ip,
            aliases: r.aliases,
        };
        let done = berth_containers::connect(&self.core, &ns, &request).await?;
        self.emit(&ns, "connect", &done);
        Ok(Response::new(pb::ConnectNetworkResponse {}))
    }

    #[tracing::instrument(skip_all, fields(network = %req.get_ref().network, container = %req.get_ref().container))]
    async fn disconnect_container(
        &self,
        req: Request<pb::DisconnectNetworkRequest>,
    ) -> std::result::Result<Response<pb::DisconnectNetworkResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let done = berth_containers::disconnect(&self.core, &ns, &r.network, &r.container, r.force)
            .await?;
        if done.changed {
            self.emit(&ns, "disconnect", &done);
        }
        Ok(Response::new(pb::DisconnectNetworkResponse {}))
    }
}
