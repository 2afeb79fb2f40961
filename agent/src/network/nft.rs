//! berth's nftables rules: one table per network, `table ip berth-<bridge>`, holding the
//! DNAT of its published ports and the masquerade of its subnet. Nothing else of the
//! host's firewall is read or written. A table is always rewritten whole from the
//! metadata records in one `nft -f -` transaction, so it cannot drift from them.

use std::net::Ipv4Addr;
use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;

use super::error::{NetworkError, Result};
use super::ports::PortMapping;
use super::subnet::Subnet;

/// What a network's table holds.
#[derive(Debug, Clone)]
pub(super) struct TableSpec {
    pub bridge: String,
    pub subnet: Subnet,
    pub masquerade: bool,
    pub userland_proxy: bool,
    /// Published ports with the container address they lead to.
    pub ports: Vec<(PortMapping, Ipv4Addr)>,
}

/// The name of the table of the network whose bridge is `bridge`.
pub(super) fn table_name(bridge: &str) -> String {
    format!("berth-{bridge}")
}

/// The script that replaces the network's table atomically (creating it when missing).
pub(super) fn render(spec: &TableSpec) -> String {
    let t = table_name(&spec.bridge);
    let br = &spec.bridge;
    let mut s = format!("table ip {t}\ndelete table ip {t}\ntable ip {t} {{\n");
    s.push_str(
        "\tchain prerouting {\n\
         \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         \t\tfib daddr type local jump ports\n\
         \t}\n",
    );
    s.push_str("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n");
    if spec.userland_proxy {
        // Loopback connections are the proxy's: a DNAT from 127.0.0.1 cannot be answered.
        s.push_str("\t\tip daddr != 127.0.0.0/8 fib daddr type local jump ports\n");
    } else {
        s.push_str("\t\tfib daddr type local jump ports\n");
    }
    s.push_str("\t}\n\tchain ports {\n");
    for (m, cip) in &spec.ports {
        s.push_str("\t\t");
        if spec.userland_proxy {
            // Containers of this bridge reach published ports through the proxy.
            s.push_str(&format!("iifname != \"{br}\" "));
        }
        if !m.host_ip.is_unspecified() {
            s.push_str(&format!("ip daddr {} ", m.host_ip));
        }
        s.push_str(&format!(
            "{} dport {} dnat to {cip}:{}\n",
            m.proto, m.host_port, m.container_port
        ));
    }
    s.push_str(
        "\t}\n\tchain postrouting {\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    if spec.masquerade {
        s.push_str(&format!(
            "\t\tip saddr {} oifname != \"{br}\" masquerade\n",
            spec.subnet
        ));
    }
    if !spec.userland_proxy {
        // DNATed loopback connections and hairpin connections (a container to its own
        // published port) need a source the container can answer.
        s.push_str(&format!(
            "\t\toifname \"{br}\" ip saddr 127.0.0.0/8 masquerade\n"
        ));
        for (m, cip) in &spec.ports {
            s.push_str(&format!(
                "\t\tip saddr {cip} ip daddr {cip} {} dport {} masquerade\n",
                m.proto, m.container_port
            ));
        }
    }
    s.push_str("\t}\n}\n");
    s
}

/// Runs `nft -f -` with `script`.
pub(super) async fn run(script: &str, context: &str) -> Result<()> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| NetworkError::io("run nft (is the nftables package installed?)", e))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| NetworkError::Internal("nft stdin missing".into()))?;
    stdin
        .write_all(script.as_bytes())
        .await
        .map_err(|e| NetworkError::io("write nft script", e))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| NetworkError::io("wait for nft", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Nft {
            context: context.into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Replaces the network's table with what `spec` says.
pub(super) async fn apply(spec: &TableSpec) -> Result<()> {
    run(
        &render(spec),
        &format!("write table {}", table_name(&spec.bridge)),
    )
    .await
}

/// Deletes the network's table; a missing table is fine.
pub(super) async fn delete(bridge: &str) -> Result<()> {
    let t = table_name(bridge);
    run(
        &format!("table ip {t}\ndelete table ip {t}\n"),
        &format!("delete table {t}"),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::ports::Proto;

    fn spec(proxy: bool) -> TableSpec {
        TableSpec {
            bridge: "berth0".into(),
            subnet: "10.88.0.0/16".parse().unwrap(),
            masquerade: true,
            userland_proxy: proxy,
            ports: vec![
                (
                    PortMapping {
                        host_ip: Ipv4Addr::UNSPECIFIED,
                        host_port: 8080,
                        container_port: 80,
                        proto: Proto::Tcp,
                    },
                    Ipv4Addr::new(10, 88, 0, 2),
                ),
                (
                    PortMapping {
                        host_ip: Ipv4Addr::LOCALHOST,
                        host_port: 5353,
                        container_port: 53,
                        proto: Proto::Udp,
                    },
                    Ipv4Addr::new(10, 88, 0, 3),
                ),
            ],
        }
    }

    #[test]
    fn proxy_mode_rules() {
        let s = render(&spec(true));
        assert!(s.starts_with(
            "table ip berth-berth0\ndelete table ip berth-berth0\ntable ip berth-berth0 {\n"
        ));
        assert!(s.contains("ip daddr != 127.0.0.0/8 fib daddr type local jump ports"));
        assert!(s.contains("iifname != \"berth0\" tcp dport 8080 dnat to 10.88.0.2:80\n"));
        assert!(s.contains(
            "iifname != \"berth0\" ip daddr 127.0.0.1 udp dport 5353 dnat to 10.88.0.3:53\n"
        ));
        assert!(s.contains("ip saddr 10.88.0.0/16 oifname != \"berth0\" masquerade"));
        assert!(!s.contains("127.0.0.0/8 masquerade"));
    }

    #[test]
    fn kernel_mode_rules() {
        let s = render(&spec(false));
        assert!(!s.contains("iifname"));
        assert!(s.contains("\t\tfib daddr type local jump ports\n\t}\n\tchain ports"));
        assert!(s.contains("oifname \"berth0\" ip saddr 127.0.0.0/8 masquerade"));
        assert!(s.contains("ip saddr 10.88.0.2 ip daddr 10.88.0.2 tcp dport 80 masquerade"));
    }

    #[test]
    fn no_masquerade_when_off() {
        let mut sp = spec(true);
        sp.masquerade = false;
        assert!(!render(&sp).contains("masquerade"));
    }
}
