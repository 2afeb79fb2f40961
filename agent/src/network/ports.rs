//! Published ports: docker's `-p` syntax (parsed into [`PortSpec`]s) and the mappings a
//! container ends up with ([`PortMapping`]).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = String;

    fn from_str(s: &str) -> Result<Proto, String> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Err("sctp ports are not implemented; publish tcp or udp".into()),
            _ => Err(format!("{s:?} is not a protocol (tcp or udp)")),
        }
    }
}

/// One port to publish, as asked for: a container port and where on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// The host address to listen on; `None` is every address (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// Host ports to choose from, inclusive; `None` is any free port of the configured
    /// range. A single port is `(p, p)`.
    pub host_ports: Option<(u16, u16)>,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortSpec {
    /// `container_port/proto` on a random host port of every address: what `-P` does for
    /// each exposed port.
    pub fn random(container_port: u16, proto: Proto) -> PortSpec {
        PortSpec {
            host_ip: None,
            host_ports: None,
            container_port,
            proto,
        }
    }
}

/// A published port as set up: `host_ip:host_port` forwards to `container_port` of the
/// container's address on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// 0.0.0.0 when every host address.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl fmt::Display for PortMapping {
    /// `80/tcp -> 0.0.0.0:32768`, as `docker port` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}:{}",
            self.container_port, self.proto, self.host_ip, self.host_port
        )
    }
}

fn port(s: &str, what: &str, whole: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{whole:?}: {what} {s:?} is not a port (1-65535)")),
    }
}

fn range(s: &str, what: &str, whole: &str) -> Result<(u16, u16), String> {
    match s.split_once('-') {
        None => {
            let p = port(s, what, whole)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let (a, b) = (port(a, what, whole)?, port(b, what, whole)?);
            if a > b {
                return Err(format!("{whole:?}: {what} range {a}-{b} runs backwards"));
            }
            Ok((a, b))
        }
    }
}

/// Parses one `-p`/`--publish` value: `[[IP:][HOSTPORT]:]CPORT[/PROTO]`, where ports may
/// be ranges (`8000-8009:80-89`, or a host range for one container port:
/// `8000-8009:80`, which takes the first free one). One spec per container port.
pub fn parse_publish(s: &str) -> Result<Vec<PortSpec>, String> {
    let (rest, proto) = match s.rsplit_once('/') {
        Some((r, p)) => (r, p.parse::<Proto>().map_err(|e| format!("{s:?}: {e}"))?),
        None => (s, Proto::Tcp),
    };
    if rest.starts_with('[') {
        return Err(format!(
            "{s:?}: IPv6 host addresses are not implemented; berth's networks are IPv4"
        ));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, cport) = match parts.as_slice() {
        [c] => (None, None, *c),
        [h, c] => (None, Some(*h), *c),
        [ip, h, c] => (Some(*ip), Some(*h), *c),
        _ => {
            return Err(format!(
                "{s:?} is not a port mapping ([[IP:][HOSTPORT]:]CONTAINERPORT[/tcp|udp])"
            ));
        }
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(a) => Some(a.parse::<Ipv4Addr>().map_err(|_| {
            if a.contains(':') || a.contains('[') {
                format!("{s:?}: IPv6 host addresses are not implemented; berth's networks are IPv4")
            } else {
                format!("{s:?}: {a:?} is not an IPv4 address")
            }
        })?),
    };
    let host = match host {
        None | Some("") => None,
        Some(h) => Some(range(h, "host port", s)?),
    };
    let (c0, c1) = range(cport, "container port", s)?;
    let count = u32::from(c1 - c0) + 1;
    let mut out = Vec::new();
    match host {
        Some((h0, h1)) if count > 1 => {
            if u32::from(h1 - h0) + 1 != count {
                return Err(format!(
                    "{s:?}: host port range {h0}-{h1} and container port range {c0}-{c1} differ in size"
                ));
            }
            for i in 0..=(c1 - c0) {
                out.push(PortSpec {
                    host_ip,
                    host_ports: Some((h0 + i, h0 + i)),
                    container_port: c0 + i,
                    proto,
                });
            }
        }
        host_ports => {
            for c in c0..=c1 {
                out.push(PortSpec {
                    host_ip,
                    host_ports,
                    container_port: c,
                    proto,
                });
            }
        }
    }
    Ok(out)
}

/// Parses an exposed port as images and `--expose` write it: `80`, `80/udp`, `8000-8010/tcp`.
pub fn parse_exposed(s: &str) -> Result<Vec<(u16, Proto)>, String> {
    let (p, proto) = match s.rsplit_once('/') {
        Some((p, proto)) => (
            p,
            proto.parse::<Proto>().map_err(|e| format!("{s:?}: {e}"))?,
        ),
        None => (s, Proto::Tcp),
    };
    let (a, b) = range(p, "port", s)?;
    Ok((a..=b).map(|p| (p, proto)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortSpec {
        let v = parse_publish(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v[0]
    }

    #[test]
    fn docker_forms() {
        assert_eq!(one("80"), PortSpec::random(80, Proto::Tcp));
        assert_eq!(
            one("8080:80"),
            PortSpec {
                host_ip: None,
                host_ports: Some((8080, 8080)),
                container_port: 80,
                proto: Proto::Tcp
            }
        );
        assert_eq!(
            one("127.0.0.1:8080:80/udp"),
            PortSpec {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_ports: Some((8080, 8080)),
                container_port: 80,
                proto: Proto::Udp
            }
        );
        assert_eq!(
            one("127.0.0.1::53/UDP"),
            PortSpec {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_ports: None,
                container_port: 53,
                proto: Proto::Udp
            }
        );
        assert_eq!(one(":80").host_ports, None);
        assert_eq!(one("8000-8009:80").host_ports, Some((8000, 8009)));
    }

    #[test]
    fn ranges_expand() {
        let v = parse_publish("8000-8002:80-82").unwrap();
        let pairs: Vec<_> = v
            .iter()
            .map(|p| (p.host_ports.unwrap().0, p.container_port))
            .collect();
        assert_eq!(pairs, vec![(8000, 80), (8001, 81), (8002, 82)]);
        let v = parse_publish("90-91").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|p| p.host_ports.is_none()));
    }

    #[test]
    fn refusals_say_why() {
        for (bad, why) in [
            ("", "not a port"),
            ("0", "not a port"),
            ("65536", "not a port"),
            ("x:80", "host port"),
            ("80/sctp", "sctp"),
            ("80/icmp", "not a protocol"),
            ("1.2.3:80:80", "not an IPv4"),
            ("[::1]:80:80", "IPv6"),
            ("1:2:3:4", "not a port mapping"),
            ("8000-8001:80-82", "differ in size"),
            ("90-80", "backwards"),
        ] {
            let err = parse_publish(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn exposed_ports() {
        assert_eq!(parse_exposed("80/tcp").unwrap(), vec![(80, Proto::Tcp)]);
        assert_eq!(parse_exposed("53/udp").unwrap(), vec![(53, Proto::Udp)]);
        assert_eq!(parse_exposed("7-8").unwrap().len(), 2);
        assert!(parse_exposed("x/tcp").is_err());
    }

    #[test]
    fn mapping_display() {
        let m = PortMapping {
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 32768,
            container_port: 80,
            proto: Proto::Tcp,
        };
        assert_eq!(m.to_string(), "80/tcp -> 0.0.0.0:32768");
    }
}
