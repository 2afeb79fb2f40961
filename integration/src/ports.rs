//! Free TCP ports on 127.0.0.1 for servers a test starts (registries, published ports).
//!
//! The kernel picks a free ephemeral port; this process never hands the same port out
//! twice, so parallel tests in one binary do not collide. Another process may still take
//! the port before the server binds it: callers that can detect "address in use" retry.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::Mutex;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago and that this process has not
/// handed out before.
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral port on 127.0.0.1")
            .port();
        if claim(port) {
            return port;
        }
    }
}

/// A UDP port on 127.0.0.1, as [`free_port`].
pub fn free_udp_port() -> u16 {
    loop {
        let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|s| s.local_addr())
            .expect("bind an ephemeral udp port on 127.0.0.1")
            .port();
        if claim(port) {
            return port;
        }
    }
}

fn claim(port: u16) -> bool {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert_with(HashSet::new).insert(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        TcpListener::bind((Ipv4Addr::LOCALHOST, ports[0])).unwrap();
        UdpSocket::bind((Ipv4Addr::LOCALHOST, free_udp_port())).unwrap();
    }
}
