//! Writing containers' name-resolution files from the records: their own names, links,
//! extra hosts, and on user-defined networks every other container of the same
//! namespace on the network. Rewritten in place whenever a container joins or leaves.

use std::net::IpAddr;

use super::error::{NetworkError, Result};
use super::files::{self, HostAddress, HostsInput};
use super::records::{EndpointRecord, Network, Sandbox, SandboxMode};
use super::{HOST_HOSTS, Networks};

/// The records names are made from, read once.
pub(super) struct View {
    pub sandboxes: Vec<Sandbox>,
    pub endpoints: Vec<EndpointRecord>,
    pub networks: Vec<Network>,
}

fn push_unique(names: &mut Vec<String>, name: &str) {
    if !name.is_empty() && !names.iter().any(|n| n == name) {
        names.push(name.to_string());
    }
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

impl View {
    fn endpoints_of<'a>(
        &'a self,
        sb: &'a Sandbox,
    ) -> impl Iterator<Item = &'a EndpointRecord> + 'a {
        self.endpoints
            .iter()
            .filter(move |e| e.namespace == sb.namespace && e.container == sb.container)
    }

    fn user_network(&self, id: &str) -> bool {
        self.networks.iter().any(|n| n.id == id && !n.predefined)
    }

    /// The hosts lines of `sb` after the localhost block.
    pub fn hosts_input(&self, sb: &Sandbox, host_gateway: std::net::Ipv4Addr) -> HostsInput {
        let mut input = HostsInput::default();
        for h in &sb.extra_hosts {
            let ip = match h.address {
                HostAddress::Ip(ip) => ip,
                HostAddress::HostGateway => IpAddr::V4(host_gateway),
            };
            input.extra.push((ip, h.name.clone()));
        }
        let mine: Vec<&EndpointRecord> = {
            let mut v: Vec<_> = self.endpoints_of(sb).collect();
            v.sort_by(|a, b| a.ifname.cmp(&b.ifname));
            v
        };
        for link in &sb.links {
            let Some(target) = self.sandboxes.iter().find(|t| {
                t.namespace == sb.namespace && (t.name == link.name || t.container == link.name)
            }) else {
                continue;
            };
            let theirs: Vec<&EndpointRecord> = self.endpoints_of(target).collect();
            let shared = mine
                .iter()
                .find_map(|m| theirs.iter().find(|t| t.network_id == m.network_id));
            if let Some(t) = shared {
                let mut names = Vec::new();
                push_unique(&mut names, &link.alias);
                push_unique(&mut names, &target.hostname);
                push_unique(&mut names, &target.name);
                input.links.push((t.ip, names));
            }
        }
        for ep in &mine {
            let mut names = files::own_names(&sb.hostname, &sb.domainname);
            if self.user_network(&ep.network_id) {
                push_unique(&mut names, &ep.name);
                for a in &ep.aliases {
                    push_unique(&mut names, a);
                }
            }
            input.own.push((ep.ip, names));
        }
        for ep in &mine {
            if !self.user_network(&ep.network_id) {
                continue;
            }
            let mut peers: Vec<&EndpointRecord> = self
                .endpoints
                .iter()
                .filter(|p| {
                    p.network_id == ep.network_id
                        && p.namespace == sb.namespace
                        && p.container != sb.container
                })
                .collect();
            peers.sort_by(|a, b| (&a.name, &a.container).cmp(&(&b.name, &b.container)));
            for p in peers {
                let mut names = Vec::new();
                push_unique(&mut names, &p.name);
                for a in &p.aliases {
                    push_unique(&mut names, a);
                }
                push_unique(&mut names, short(&p.container));
                input.peers.push((p.ip, names));
            }
        }
        input
    }
}

impl Networks {
    pub(super) fn view(&self) -> Result<View> {
        Ok(self.md.read(|tx| {
            Ok(View {
                sandboxes: tx.sandboxes()?,
                endpoints: tx.endpoints()?,
                networks: tx.networks()?,
            })
        })?)
    }

    fn hosts_text(&self, view: &View, sb: &Sandbox) -> Result<String> {
        let input = view.hosts_input(sb, self.settings.gateway);
        if sb.mode != SandboxMode::Host {
            return Ok(files::render_hosts(&input));
        }
        let mut text = std::fs::read_to_string(HOST_HOSTS)
            .map_err(|e| NetworkError::io(format!("read {HOST_HOSTS}"), e))?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for (ip, name) in &input.extra {
            text.push_str(&format!("{ip}\t{name}\n"));
        }
        Ok(text)
    }

    /// Writes all three files of `sb` (creating its directory).
    pub(super) fn write_files(&self, view: &View, sb: &Sandbox) -> Result<()> {
        let dir = sb
            .files
            .hosts
            .parent()
            .ok_or_else(|| NetworkError::Internal("hosts file without a directory".into()))?;
        std::fs::create_dir_all(dir)
            .map_err(|e| NetworkError::io(format!("create {}", dir.display()), e))?;
        let host_resolv =
            files::read_host_resolv_conf(&self.settings.resolv_conf).map_err(|e| {
                NetworkError::io(format!("read {}", self.settings.resolv_conf.display()), e)
            })?;
        let resolv = files::render_resolv_conf(&host_resolv, &sb.dns, sb.mode != SandboxMode::Host);
        let hosts = self.hosts_text(view, sb)?;
        for (path, text) in [
            (&sb.files.hosts, hosts),
            (&sb.files.hostname, format!("{}\n", sb.hostname)),
            (&sb.files.resolv_conf, resolv),
        ] {
            files::write_in_place(path, &text)
                .map_err(|e| NetworkError::io(format!("write {}", path.display()), e))?;
        }
        Ok(())
    }

    /// Rewrites the hosts file of every container of namespace `ns` with its own
    /// namespace (their peers or links may have changed).
    pub(super) fn refresh_hosts(&self, ns: &str) -> Result<()> {
        let view = self.view()?;
        for sb in view.sandboxes.iter().filter(|s| {
            s.namespace == ns && matches!(s.mode, SandboxMode::Bridged | SandboxMode::None)
        }) {
            let text = self.hosts_text(&view, sb)?;
            if let Err(e) = files::write_in_place(&sb.files.hosts, &text) {
                // A container whose directory is gone is being removed.
                tracing::debug!(path = %sb.files.hosts.display(), error = %e, "rewrite hosts");
            }
        }
        Ok(())
    }
}
