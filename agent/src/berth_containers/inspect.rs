//! `inspect`: docker's container document (the same JSON a Docker Engine API endpoint
//! will serve): ID, times, path and args, state (with the pid `nsenter` needs), image,
//! the name-resolution files, log path, name, config, host config, mounts and network
//! settings.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::list::{ports, sizes};
use super::model::{Record, Status};
use crate::core::Core;
use crate::error::Result;

/// docker's text for a time: RFC 3339 with nanoseconds; Go's zero time when unset.
pub fn docker_time(nanos: i64) -> String {
    if nanos <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn state(rec: &Record) -> Value {
    let s = &rec.state;
    json!({
        "Status": s.status.as_str(),
        "Running": matches!(s.status, Status::Running | Status::Paused),
        "Paused": s.status == Status::Paused,
        "Restarting": s.status == Status::Restarting,
        "OOMKilled": s.oom_killed,
        "Dead": s.status == Status::Dead,
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": docker_time(s.started_at),
        "FinishedAt": docker_time(s.finished_at),
    })
}

/// `PortBindings` as docker writes them, from the `-p` strings.
fn port_bindings(publish: &[String]) -> Value {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in publish {
        for spec in crate::network::parse_publish(p).unwrap_or_default() {
            let host_port = match spec.host_ports {
                Some((a, b)) if a == b => a.to_string(),
                Some((a, b)) => format!("{a}-{b}"),
                None => String::new(),
            };
            m.entry(format!("{}/{}", spec.container_port, spec.proto.as_str()))
                .or_default()
                .push(json!({
                    "HostIp": spec.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                    "HostPort": host_port,
                }));
        }
    }
    json!(m)
}

fn mounts(rec: &Record) -> Value {
    Value::Array(
        rec.mounts
            .iter()
            .map(|m| {
                let mut v = json!({
                    "Type": m.kind,
                    "Source": m.source.display().to_string(),
                    "Destination": m.destination,
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": if m.kind == "bind" { "rprivate" } else { "" },
                });
                if m.kind == "volume" {
                    v["Name"] = json!(m.name);
                    v["Driver"] = json!(crate::volumes::LOCAL);
                }
                v
            })
            .collect(),
    )
}

fn network_settings(core: &Core, ns: &str, rec: &Record) -> Value {
    let mut published: BTreeMap<String, Value> = BTreeMap::new();
    for p in ports(core, ns, rec) {
        let key = format!("{}/{}", p.private_port, p.proto);
        let entry = published.entry(key).or_insert(Value::Null);
        if p.public_port != 0 {
            if !entry.is_array() {
                *entry = json!([]);
            }
            if let Some(a) = entry.as_array_mut() {
                a.push(json!({"HostIp": p.ip, "HostPort": p.public_port.to_string()}));
            }
        }
    }
    let names: BTreeMap<String, String> = core
        .networks
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|n| (n.id.clone(), n.name))
        .collect();
    let mut networks = serde_json::Map::new();
    let mut primary = json!({"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": ""});
    if rec.state.status.is_active() {
        for ep in core.networks.endpoints(ns, &rec.id).unwrap_or_default() {
            let v = json!({
                "NetworkID": ep.network_id,
                "Aliases": ep.aliases,
                "IPAddress": ep.ip.to_string(),
                "IPPrefixLen": ep.prefix_len,
                "Gateway": ep.gateway.to_string(),
                "MacAddress": ep.mac,
            });
            if ep.default_route || primary["IPAddress"] == "" {
                primary = json!({"IPAddress": v["IPAddress"], "IPPrefixLen": v["IPPrefixLen"],
                    "Gateway": v["Gateway"], "MacAddress": v["MacAddress"]});
            }
            let name = names
                .get(&ep.network_id)
                .cloned()
                .unwrap_or(ep.network_id.clone());
            networks.insert(name, v);
        }
        let mode = super::network::mode(&rec.host_config);
        // none and host have no endpoint; a container disconnected from all has none.
        if networks.is_empty() && !rec.mode_disconnected && !mode.starts_with("container:") {
            let id = names
                .iter()
                .find(|(_, n)| n.as_str() == mode)
                .map(|(id, _)| id.clone())
                .unwrap_or_default();
            networks.insert(mode.to_string(), json!({"NetworkID": id, "IPAddress": ""}));
        }
    } else {
        // Not running: the networks it will join at start, without addresses.
        let mode = super::network::mode(&rec.host_config);
        if !rec.mode_disconnected && !mode.starts_with("container:") {
            let id = names
                .iter()
                .find(|(id, n)| n.as_str() == mode || id.as_str() == mode)
                .map(|(id, _)| id.clone())
                .unwrap_or_default();
            networks.insert(mode.to_string(), json!({"NetworkID": id, "IPAddress": ""}));
        }
        for c in &rec.connected {
            let name = names.get(&c.network).cloned().unwrap_or(c.network.clone());
            networks.insert(
                name,
                json!({"NetworkID": c.network, "Aliases": c.aliases, "IPAddress": ""}),
            );
        }
    }
    let sandbox_key = core
        .networks
        .sandbox(ns, &rec.id)
        .ok()
        .flatten()
        .map(|s| s.netns.display().to_string())
        .unwrap_or_default();
    json!({
        "Bridge": "",
        "SandboxKey": sandbox_key,
        "Ports": published,
        "IPAddress": primary["IPAddress"],
        "IPPrefixLen": primary["IPPrefixLen"],
        "Gateway": primary["Gateway"],
        "MacAddress": primary["MacAddress"],
        "Networks": networks,
    })
}

/// The inspect document of the container `input` names.
pub async fn inspect(core: &Arc<Core>, ns: &str, input: &str, size: bool) -> Result<Value> {
    let rec = core.berth.store.resolve(ns, input)?;
    let files = core
        .networks
        .sandbox(ns, &rec.id)
        .ok()
        .flatten()
        .map(|s| s.files);
    let path = |f: fn(&crate::network::Files) -> &std::path::PathBuf| {
        files
            .as_ref()
            .map(|x| f(x).display().to_string())
            .unwrap_or_default()
    };
    let mut host_config = serde_json::to_value(&rec.host_config)?;
    host_config["PortBindings"] = port_bindings(&rec.host_config.publish);
    let mut doc = json!({
        "Id": rec.id,
        "Created": docker_time(rec.created),
        "Path": rec.path,
        "Args": rec.args,
        "State": state(&rec),
        "Image": rec.image_id,
        "ResolvConfPath": path(|f| &f.resolv_conf),
        "HostnamePath": path(|f| &f.hostname),
        "HostsPath": path(|f| &f.hosts),
        "LogPath": rec.log_path.display().to_string(),
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Driver": rec.snapshotter,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "HostConfig": host_config,
        "Mounts": mounts(&rec),
        "Config": serde_json::to_value(&rec.config)?,
        "NetworkSettings": network_settings(core, ns, &rec),
    });
    if size {
        let (rw, root) = sizes(core, ns, &rec).await;
        doc["SizeRw"] = json!(rw);
        doc["SizeRootFs"] = json!(root);
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_bindings() {
        assert_eq!(docker_time(0), "0001-01-01T00:00:00Z");
        assert_eq!(
            docker_time(1_704_164_645_123_000_000),
            "2024-01-02T03:04:05.123Z"
        );
        let b = port_bindings(&["127.0.0.1:8080:80".into(), "53/udp".into()]);
        assert_eq!(
            b["80/tcp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}])
        );
        assert_eq!(b["53/udp"], json!([{"HostIp": "", "HostPort": ""}]));
    }
}
