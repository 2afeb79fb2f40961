//! Host ports of published ports: binding them (which is also how a port already in use
//! is found, before anything else is set up), and the user-space TCP/UDP proxy that
//! serves what the kernel's DNAT cannot (connections to 127.0.0.1). With the proxy off
//! the bound socket is only held, so nothing else can take the port.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::error::{NetworkError, Result};
use super::ports::{PortMapping, PortSpec, Proto};

/// How long a UDP flow through the proxy lives without traffic.
const UDP_IDLE: Duration = Duration::from_secs(90);

/// A bound host socket.
#[derive(Debug)]
pub(super) enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

fn bind(ip: Ipv4Addr, port: u16, proto: Proto) -> io::Result<Bound> {
    let addr = SocketAddrV4::new(ip, port);
    Ok(match proto {
        Proto::Tcp => Bound::Tcp(TcpListener::bind(addr)?),
        Proto::Udp => Bound::Udp(UdpSocket::bind(addr)?),
    })
}

/// Binds the host side of `spec`: its fixed port, the first free port of its host
/// range, or a free port of `range` starting at `cursor` (which moves past it). The
/// mapping returned has the port chosen.
pub(super) fn bind_spec(
    spec: &PortSpec,
    range: (u16, u16),
    cursor: &mut u16,
) -> Result<(PortMapping, Bound)> {
    let ip = spec.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let mapping = |host_port| PortMapping {
        host_ip: ip,
        host_port,
        container_port: spec.container_port,
        proto: spec.proto,
    };
    match spec.host_ports {
        Some((a, b)) => {
            let mut last = None;
            for p in a..=b {
                match bind(ip, p, spec.proto) {
                    Ok(s) => return Ok((mapping(p), s)),
                    Err(e) => last = Some((p, e)),
                }
            }
            let (port, source) = last.expect("a range has at least one port");
            if source.kind() == io::ErrorKind::AddrNotAvailable {
                return Err(NetworkError::InvalidArgument(format!(
                    "host address {ip} of published port {port}/{} is not an address of this host",
                    spec.proto
                )));
            }
            Err(NetworkError::PortInUse {
                ip,
                port,
                proto: spec.proto,
                source,
            })
        }
        None => {
            let (first, last) = range;
            let len = u32::from(last - first) + 1;
            let start = if (first..=last).contains(cursor) {
                u32::from(*cursor - first)
            } else {
                0
            };
            for i in 0..len {
                let p = first + ((start + i) % len) as u16;
                match bind(ip, p, spec.proto) {
                    Ok(s) => {
                        *cursor = if p == last { first } else { p + 1 };
                        return Ok((mapping(p), s));
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                        return Err(NetworkError::InvalidArgument(format!(
                            "host address {ip} of a published port is not an address of this host"
                        )));
                    }
                    Err(_) => {}
                }
            }
            Err(NetworkError::NoFreePort {
                ip,
                proto: spec.proto,
                first,
                last,
            })
        }
    }
}

/// What keeps a published host port: a running proxy, or just the held socket.
#[derive(Debug)]
pub(super) enum Forwarder {
    Proxy(tokio::task::JoinHandle<()>),
    Held(Bound),
}

impl Forwarder {
    /// Starts proxying `bound` to `target`. Needs a tokio runtime.
    pub fn proxy(bound: Bound, target: SocketAddrV4) -> Result<Forwarder> {
        let task = match bound {
            Bound::Tcp(l) => {
                l.set_nonblocking(true)
                    .map_err(|e| NetworkError::io("set proxy socket non-blocking", e))?;
                let l = tokio::net::TcpListener::from_std(l)
                    .map_err(|e| NetworkError::io("register proxy socket", e))?;
                tokio::spawn(tcp_proxy(l, target))
            }
            Bound::Udp(s) => {
                s.set_nonblocking(true)
                    .map_err(|e| NetworkError::io("set proxy socket non-blocking", e))?;
                let s = tokio::net::UdpSocket::from_std(s)
                    .map_err(|e| NetworkError::io("register proxy socket", e))?;
                tokio::spawn(udp_proxy(Arc::new(s), target))
            }
        };
        Ok(Forwarder::Proxy(task))
    }

    /// Stops the proxy (its sockets are closed when this returns) or releases the port.
    pub async fn stop(self) {
        match self {
            Forwarder::Proxy(task) => {
                task.abort();
                let _ = task.await;
            }
            Forwarder::Held(b) => drop(b),
        }
    }
}

async fn tcp_proxy(listener: tokio::net::TcpListener, target: SocketAddrV4) {
    // Dropped with the task: every open connection ends with it.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut inbound, _)) => {
                    conns.spawn(async move {
                        let _ = inbound.set_nodelay(true);
                        match tokio::net::TcpStream::connect(target).await {
                            Ok(mut outbound) => {
                                let _ = outbound.set_nodelay(true);
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                            Err(e) => tracing::debug!(%target, error = %e, "proxy: connect to container"),
                        }
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!(%target, error = %e, "proxy: accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

struct Flow {
    upstream: Arc<tokio::net::UdpSocket>,
    /// Milliseconds since `epoch` of the last datagram either way.
    last: Arc<AtomicU64>,
}

/// Milliseconds on the proxy's own clock.
type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Opens the upstream socket of a new UDP flow from `client` and starts relaying the
/// container's answers back to it; the relay ends (returning `client`) after
/// [`UDP_IDLE`] without traffic either way.
async fn open_flow(
    socket: &Arc<tokio::net::UdpSocket>,
    client: SocketAddr,
    target: SocketAddrV4,
    now_ms: &Clock,
    replies: &mut JoinSet<SocketAddr>,
) -> Option<Flow> {
    let upstream = match tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(%target, error = %e, "proxy: udp upstream socket");
            return None;
        }
    };
    if let Err(e) = upstream.connect(target).await {
        tracing::debug!(%target, error = %e, "proxy: udp connect");
        return None;
    }
    let flow = Flow {
        upstream: Arc::new(upstream),
        last: Arc::new(AtomicU64::new(now_ms())),
    };
    let (up, last, down, now_ms) = (
        flow.upstream.clone(),
        flow.last.clone(),
        socket.clone(),
        now_ms.clone(),
    );
    replies.spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            match tokio::time::timeout(UDP_IDLE, up.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    last.store(now_ms(), Ordering::Relaxed);
                    let _ = down.send_to(&buf[..n], client).await;
                }
                // An ICMP error for an earlier datagram; later ones may get through.
                Ok(Err(_)) => {}
                Err(_) => {
                    let idle = now_ms().saturating_sub(last.load(Ordering::Relaxed));
                    if idle >= UDP_IDLE.as_millis() as u64 {
                        return client;
                    }
                }
            }
        }
    });
    Some(flow)
}

async fn udp_proxy(socket: Arc<tokio::net::UdpSocket>, target: SocketAddrV4) {
    let epoch = Instant::now();
    let now_ms: Clock = Arc::new(move || epoch.elapsed().as_millis() as u64);
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    // Dropped with the task: every relay ends with it.
    let mut replies = JoinSet::new();
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            got = socket.recv_from(&mut buf) => {
                let (n, client) = match got {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(%target, error = %e, "proxy: udp receive");
                        continue;
                    }
                };
                let flow = match flows.entry(client) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => {
                        match open_flow(&socket, client, target, &now_ms, &mut replies).await {
                            Some(f) => v.insert(f),
                            None => continue,
                        }
                    }
                };
                flow.last.store(now_ms(), Ordering::Relaxed);
                let _ = flow.upstream.send(&buf[..n]).await;
            }
            Some(done) = replies.join_next(), if !replies.is_empty() => {
                if let Ok(client) = done {
                    flows.remove(&client);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn taken_port_is_refused_and_random_ports_skip_taken_ones() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let spec = PortSpec {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_ports: Some((port, port)),
            container_port: 80,
            proto: Proto::Tcp,
        };
        let mut cursor = 0;
        let err = bind_spec(&spec, (1, 1), &mut cursor).unwrap_err();
        assert!(matches!(err, NetworkError::PortInUse { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}/tcp")),
            "{err}"
        );

        // A range holding only the taken port and one more: the other one is chosen.
        let mut cursor = port;
        let spec = PortSpec {
            host_ports: None,
            ..spec
        };
        let other = if port == u16::MAX { port - 1 } else { port + 1 };
        let range = (port.min(other), port.max(other));
        match bind_spec(&spec, range, &mut cursor) {
            Ok((m, _bound)) => assert_eq!(m.host_port, other),
            Err(NetworkError::NoFreePort { .. }) => {} // someone else holds the neighbour
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn tcp_and_udp_proxies_forward_and_stop() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let echo = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let echo_addr = match echo.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        let front = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let front_port = front.local_addr().unwrap().port();
        let fwd = Forwarder::proxy(Bound::Tcp(front), echo_addr).unwrap();
        let mut c = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, front_port))
            .await
            .unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hello");
        fwd.stop().await;
        // The port is free again.
        TcpListener::bind((Ipv4Addr::LOCALHOST, front_port)).unwrap();

        let server = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let server_addr = match server.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        tokio::spawn(async move {
            let mut b = [0u8; 64];
            let (n, from) = server.recv_from(&mut b).await.unwrap();
            server.send_to(&b[..n], from).await.unwrap();
        });
        let front = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let front_port = front.local_addr().unwrap().port();
        let fwd = Forwarder::proxy(Bound::Udp(front), server_addr).unwrap();
        let client = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        client
            .connect((Ipv4Addr::LOCALHOST, front_port))
            .await
            .unwrap();
        client.send(b"ping").await.unwrap();
        let mut b = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b[..n], b"ping");
        fwd.stop().await;
        UdpSocket::bind((Ipv4Addr::LOCALHOST, front_port)).unwrap();
    }
}
