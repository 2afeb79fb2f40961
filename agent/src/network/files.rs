//! The name-resolution files of a container: `/etc/hosts`, `/etc/hostname` and
//! `/etc/resolv.conf`, rendered from plain inputs (pure functions, unit-tested) and written
//! in place so that bind mounts of them see every rewrite.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Nameservers used when the host has none a container can reach (docker's choice).
pub const DEFAULT_NAMESERVERS: [Ipv4Addr; 2] =
    [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)];

/// Where systemd-resolved keeps the real upstream servers when /etc/resolv.conf points at
/// its loopback stub.
const SYSTEMD_RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// The three files of one container, as paths on the host for the caller to bind-mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
}

impl Files {
    /// The files kept in `dir`.
    pub fn in_dir(dir: &Path) -> Files {
        Files {
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
            resolv_conf: dir.join("resolv.conf"),
        }
    }
}

/// An `--add-host NAME:IP` entry. The address `host-gateway` stands for the gateway of
/// the container's first network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub name: String,
    pub address: HostAddress,
}

/// The address of an extra host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostAddress {
    Ip(IpAddr),
    HostGateway,
}

impl ExtraHost {
    /// Parses `NAME:IP` (or `NAME=IP`); IP may be IPv6 or `host-gateway`.
    pub fn parse(s: &str) -> Result<ExtraHost, String> {
        let (name, addr) = s
            .split_once(['=', ':'])
            .ok_or_else(|| format!("{s:?} is not an extra host (NAME:IP)"))?;
        if !valid_host_name(name) {
            return Err(format!("{s:?}: {name:?} is not a host name"));
        }
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let address = if addr == "host-gateway" {
            HostAddress::HostGateway
        } else {
            HostAddress::Ip(
                addr.parse()
                    .map_err(|_| format!("{s:?}: {addr:?} is not an IP address"))?,
            )
        };
        Ok(ExtraHost {
            name: name.into(),
            address,
        })
    }
}

/// Whether `name` may appear in a hosts file: letters, digits, '-', '_' and '.'.
pub fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The lines of a container's `/etc/hosts`, in the order they are written after the
/// localhost block: extra hosts, links, the container itself, then other containers of
/// its user-defined networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsInput {
    pub extra: Vec<(IpAddr, String)>,
    pub links: Vec<(Ipv4Addr, Vec<String>)>,
    pub own: Vec<(Ipv4Addr, Vec<String>)>,
    pub peers: Vec<(Ipv4Addr, Vec<String>)>,
}

/// Renders `/etc/hosts`.
pub fn render_hosts(input: &HostsInput) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (ip, name) in &input.extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    for (ip, names) in input.links.iter().chain(&input.own).chain(&input.peers) {
        if !names.is_empty() {
            out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
        }
    }
    out
}

/// The names of a container's own hosts line: `host.domain host` or just `host`.
pub fn own_names(hostname: &str, domainname: &str) -> Vec<String> {
    if domainname.is_empty() {
        vec![hostname.to_string()]
    } else {
        vec![format!("{hostname}.{domainname}"), hostname.to_string()]
    }
}

/// `--dns`, `--dns-search` and `--dns-option`. Each one given replaces what the host's
/// resolv.conf says for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    #[serde(default)]
    pub servers: Vec<IpAddr>,
    /// Search domains; `["."]` means none.
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

impl DnsConfig {
    fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.search.is_empty() && self.options.is_empty()
    }
}

/// A nameserver a container on a bridge cannot reach: loopback (the host's stub
/// resolvers) and IPv6 (berth's networks are IPv4 only).
fn unreachable_from_bridge(ip: &IpAddr) -> bool {
    ip.is_loopback() || ip.is_ipv6()
}

fn nameserver(line: &str) -> Option<IpAddr> {
    let mut words = line.split_whitespace();
    if words.next() != Some("nameserver") {
        return None;
    }
    // A zone suffix (fe80::1%eth0) does not parse; such a server is link-local anyway.
    words.next().and_then(|a| a.parse().ok())
}

/// Renders a container's resolv.conf from the host's. With `bridged` (the container has
/// its own network namespace) the nameservers it cannot reach are dropped, and when none
/// remain 8.8.8.8 and 8.8.4.4 are used, as docker does; in the host's namespace (`host`
/// mode) the host's servers stay. Explicit `dns` settings replace the matching parts.
pub fn render_resolv_conf(host: &str, dns: &DnsConfig, bridged: bool) -> String {
    let keep = |ip: &IpAddr| !bridged || !unreachable_from_bridge(ip);
    if dns.is_empty() {
        let mut out = String::new();
        let mut servers = 0;
        for line in host.lines() {
            match nameserver(line) {
                Some(ip) if !keep(&ip) => continue,
                Some(_) => servers += 1,
                None => {}
            }
            out.push_str(line);
            out.push('\n');
        }
        if servers == 0 {
            for ip in DEFAULT_NAMESERVERS {
                out.push_str(&format!("nameserver {ip}\n"));
            }
        }
        return out;
    }
    let mut host_servers = Vec::new();
    let mut host_search: Vec<String> = Vec::new();
    let mut host_options: Vec<String> = Vec::new();
    for line in host.lines() {
        if let Some(ip) = nameserver(line) {
            if keep(&ip) {
                host_servers.push(ip);
            }
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            // The last search or domain line wins, as in the resolver.
            Some("search") | Some("domain") => host_search = words.map(String::from).collect(),
            Some("options") => host_options.extend(words.map(String::from)),
            _ => {}
        }
    }
    let servers: Vec<IpAddr> = if !dns.servers.is_empty() {
        dns.servers.clone()
    } else if !host_servers.is_empty() {
        host_servers
    } else {
        DEFAULT_NAMESERVERS.iter().map(|a| IpAddr::V4(*a)).collect()
    };
    let search = if dns.search.is_empty() {
        host_search
    } else {
        dns.search
            .iter()
            .filter(|s| s.as_str() != ".")
            .cloned()
            .collect()
    };
    let options = if dns.options.is_empty() {
        host_options
    } else {
        dns.options.clone()
    };
    let mut out = String::new();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Reads the host's resolver configuration at `path`; when it only names
/// systemd-resolved's loopback stub, the upstream file systemd-resolved keeps is read
/// instead (docker does the same). A missing file reads as empty.
pub fn read_host_resolv_conf(path: &Path) -> std::io::Result<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let servers: Vec<IpAddr> = text.lines().filter_map(nameserver).collect();
    let stub = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53));
    if !servers.is_empty()
        && servers.iter().all(|s| *s == stub)
        && let Ok(upstream) = std::fs::read_to_string(SYSTEMD_RESOLVED_UPSTREAM)
    {
        return Ok(upstream);
    }
    Ok(text)
}

/// Replaces the contents of `path` without replacing the file (a bind mount of it keeps
/// showing the current contents), creating it when missing.
pub fn write_in_place(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_has_localhost_links_own_and_peers() {
        let input = HostsInput {
            extra: vec![
                ("10.0.0.9".parse().unwrap(), "db.example".into()),
                ("fd00::9".parse().unwrap(), "v6host".into()),
            ],
            links: vec![(
                Ipv4Addr::new(10, 88, 0, 3),
                vec!["db".into(), "abcdef012345".into(), "mydb".into()],
            )],
            own: vec![(Ipv4Addr::new(10, 88, 0, 2), own_names("web", "example.org"))],
            peers: vec![(Ipv4Addr::new(10, 88, 0, 4), vec!["cache".into()])],
        };
        let text = render_hosts(&input);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "127.0.0.1\tlocalhost");
        assert_eq!(lines[1], "::1\tlocalhost ip6-localhost ip6-loopback");
        assert_eq!(lines[6], "10.0.0.9\tdb.example");
        assert_eq!(lines[7], "fd00::9\tv6host");
        assert_eq!(lines[8], "10.88.0.3\tdb abcdef012345 mydb");
        assert_eq!(lines[9], "10.88.0.2\tweb.example.org web");
        assert_eq!(lines[10], "10.88.0.4\tcache");
        assert_eq!(lines.len(), 11);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn extra_host_syntax() {
        let h = ExtraHost::parse("db:10.0.0.1").unwrap();
        assert_eq!(h.name, "db");
        assert_eq!(h.address, HostAddress::Ip("10.0.0.1".parse().unwrap()));
        let h = ExtraHost::parse("v6=fd00::1").unwrap();
        assert_eq!(h.address, HostAddress::Ip("fd00::1".parse().unwrap()));
        let h = ExtraHost::parse("v6:[fd00::2]").unwrap();
        assert_eq!(h.address, HostAddress::Ip("fd00::2".parse().unwrap()));
        let h = ExtraHost::parse("gw:host-gateway").unwrap();
        assert_eq!(h.address, HostAddress::HostGateway);
        assert!(ExtraHost::parse("nocolon").is_err());
        assert!(ExtraHost::parse("bad name:1.2.3.4").is_err());
        assert!(ExtraHost::parse("x:not-an-ip").is_err());
    }

    const HOST: &str = "# generated\n\
        search corp.example\n\
        nameserver 127.0.0.53\n\
        nameserver 192.0.2.53\n\
        nameserver ::1\n\
        nameserver fd00::53\n\
        options edns0 trust-ad\n";

    #[test]
    fn loopback_and_v6_resolvers_are_dropped() {
        let out = render_resolv_conf(HOST, &DnsConfig::default(), true);
        assert_eq!(
            out,
            "# generated\nsearch corp.example\nnameserver 192.0.2.53\noptions edns0 trust-ad\n"
        );
    }

    #[test]
    fn defaults_when_nothing_remains() {
        let out = render_resolv_conf(
            "nameserver 127.0.0.1\nsearch x\n",
            &DnsConfig::default(),
            true,
        );
        assert_eq!(out, "search x\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let out = render_resolv_conf("", &DnsConfig::default(), true);
        assert_eq!(out, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn host_mode_keeps_loopback() {
        let out = render_resolv_conf("nameserver 127.0.0.53\n", &DnsConfig::default(), false);
        assert_eq!(out, "nameserver 127.0.0.53\n");
    }

    #[test]
    fn explicit_dns_replaces_parts() {
        let dns = DnsConfig {
            servers: vec!["10.1.1.1".parse().unwrap()],
            search: vec![],
            options: vec!["ndots:2".into()],
        };
        let out = render_resolv_conf(HOST, &dns, true);
        assert_eq!(
            out,
            "search corp.example\nnameserver 10.1.1.1\noptions ndots:2\n"
        );
        let dns = DnsConfig {
            search: vec!["a.example".into(), "b.example".into()],
            ..Default::default()
        };
        let out = render_resolv_conf(HOST, &dns, true);
        assert_eq!(
            out,
            "search a.example b.example\nnameserver 192.0.2.53\noptions edns0 trust-ad\n"
        );
        let dns = DnsConfig {
            search: vec![".".into()],
            ..Default::default()
        };
        let out = render_resolv_conf("nameserver ::1\nsearch x\n", &dns, true);
        assert_eq!(out, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn rewrite_keeps_the_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts");
        write_in_place(&p, "a long first version\n").unwrap();
        let ino = std::fs::metadata(&p).unwrap().ino();
        write_in_place(&p, "short\n").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "short\n");
    }
}
