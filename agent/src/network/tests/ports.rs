//! Published ports: TCP and UDP reachable from the host on 127.0.0.1 (the proxy) and
//! on the host's own address (kernel DNAT); a port in use fails cleanly; the kernel-only
//! mode for loopback.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use super::support::{
    Fixture, TcpServer, UdpServer, free_port, host_address, tcp_exchange, tcp_listening, udp_bound,
    udp_exchange,
};
use crate::network::{EndpointRequest, NetworkError, parse_publish};

fn publish(specs: &[String]) -> EndpointRequest {
    EndpointRequest {
        ports: specs
            .iter()
            .flat_map(|s| parse_publish(s).unwrap())
            .collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_tcp_and_udp_ports_answer_on_loopback_and_the_host_address() {
    let mut fx = Fixture::new(3);
    let (_ns, path) = fx.netns();
    let (tcp_port, udp_port) = (free_port(), free_port());
    let random_first: u16 = fx.config.port_range().unwrap().0;
    let ep = fx
        .nets()
        .attach(
            "default",
            "web",
            &path,
            &publish(&[
                format!("{tcp_port}:80"),
                format!("{udp_port}:53/udp"),
                "81".into(),
            ]),
        )
        .await
        .unwrap();
    let ip = ep.ip.unwrap();
    let gateway = ep.gateway.unwrap();
    assert_eq!(ep.ports.len(), 3);
    assert_eq!(
        ep.ports[2].host_port, random_first,
        "-p 81 takes the configured range"
    );
    let mut listed: Vec<String> = fx
        .nets()
        .ports("default", "web")
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    listed.sort();
    let mut want = vec![
        format!("80/tcp -> 0.0.0.0:{tcp_port}"),
        format!("53/udp -> 0.0.0.0:{udp_port}"),
        format!("81/tcp -> 0.0.0.0:{random_first}"),
    ];
    want.sort();
    assert_eq!(listed, want);

    let _tcp = TcpServer::start(&path, 80);
    let _udp = UdpServer::start(&path, 53);

    // 127.0.0.1: through the proxy, so the container sees the bridge's gateway.
    let (peer, echo) =
        tcp_exchange(SocketAddr::from((Ipv4Addr::LOCALHOST, tcp_port)), "hello").unwrap();
    assert_eq!(echo, "hello");
    assert_eq!(peer, gateway.to_string());
    let answer = udp_exchange(SocketAddr::from((Ipv4Addr::LOCALHOST, udp_port)), "ping").unwrap();
    assert_eq!(answer, format!("{gateway} ping"));

    // The host's own address: kernel DNAT, the container sees the host's address.
    if let Some(addr) = host_address() {
        let (peer, echo) = tcp_exchange(SocketAddr::from((addr, tcp_port)), "again").unwrap();
        assert_eq!(echo, "again");
        assert_eq!(peer, addr.to_string(), "DNAT, not the proxy");
    }
    // And directly on the container's address.
    let (_, echo) = tcp_exchange(SocketAddr::from((ip, 80)), "direct").unwrap();
    assert_eq!(echo, "direct");

    let table = Fixture::table(&fx.bridge).expect("nft table exists while ports are published");
    assert!(
        table.contains(&format!("tcp dport {tcp_port} dnat to {ip}:80")),
        "{table}"
    );
    assert!(
        table.contains(&format!("udp dport {udp_port} dnat to {ip}:53")),
        "{table}"
    );
    assert!(tcp_listening(tcp_port));
    assert!(udp_bound(udp_port));

    fx.nets().detach("default", "web").await.unwrap();
    assert!(Fixture::table(&fx.bridge).is_none());
    assert!(!tcp_listening(tcp_port));
    assert!(!udp_bound(udp_port));
    assert!(tcp_exchange(SocketAddr::from((Ipv4Addr::LOCALHOST, tcp_port)), "x").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_fails_and_leaves_nothing() {
    let mut fx = Fixture::new(4);
    let (ns, path) = fx.netns();
    let free = free_port();
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = fx
        .nets()
        .attach(
            "default",
            "c1",
            &path,
            &publish(&[format!("{free}:80"), format!("{port}:81")]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, NetworkError::PortInUse { port: p, .. } if p == port),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("0.0.0.0:{port}/tcp is already in use")),
        "{msg}"
    );
    let status: crate::error::Error = err.into();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);

    let nothing_left = |fx: &Fixture, free: u16| {
        assert!(Fixture::ports_of(&fx.bridge).is_empty(), "no veth");
        assert!(
            !Fixture::links_in(&ns).contains("eth0"),
            "nothing in the namespace"
        );
        assert!(Fixture::table(&fx.bridge).is_none(), "no nft table");
        assert!(!tcp_listening(free), "the other port was released");
        assert!(fx.nets().sandbox("default", "c1").unwrap().is_none());
        assert!(fx.nets().endpoints("default", "c1").unwrap().is_empty());
        let d = fx.nets().inspect("bridge").unwrap();
        assert!(d.endpoints.is_empty());
        assert!(
            fx.md()
                .read(|tx| tx.addresses(&d.network.id))
                .unwrap()
                .is_empty(),
            "no allocation"
        );
    };
    nothing_left(&fx, free);

    // A failure after the record and the bridge exist (the namespace path is wrong) is
    // undone as well.
    let err = fx
        .nets()
        .attach(
            "default",
            "c1",
            std::path::Path::new("/run/netns/no-such-ns"),
            &publish(&[format!("{free}:80")]),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no-such-ns"), "{err}");
    nothing_left(&fx, free);

    // Freed, the same request works.
    drop(taken);
    fx.nets()
        .attach(
            "default",
            "c1",
            &path,
            &publish(&[format!("{free}:80"), format!("{port}:81")]),
        )
        .await
        .unwrap();
    assert!(tcp_listening(port));
    fx.nets().detach("default", "c1").await.unwrap();
    assert!(!tcp_listening(port));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_proxy_loopback_is_dnat() {
    let mut fx = Fixture::new(16);
    fx.config.userland_proxy = false;
    fx.open().unwrap();
    let (_ns, path) = fx.netns();
    let port = free_port();
    let ep = fx
        .nets()
        .attach(
            "default",
            "k1",
            &path,
            &publish(&[format!("127.0.0.1:{port}:80")]),
        )
        .await
        .unwrap();
    let _tcp = TcpServer::start(&path, 80);
    let (peer, echo) = tcp_exchange(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), "k").unwrap();
    assert_eq!(echo, "k");
    // Masqueraded from loopback to the bridge's address.
    assert_eq!(peer, ep.gateway.unwrap().to_string());
    // The port is held, so nothing else can take it.
    assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err());
    let route_localnet = std::fs::read_to_string(format!(
        "/proc/sys/net/ipv4/conf/{}/route_localnet",
        fx.bridge
    ))
    .unwrap();
    assert_eq!(route_localnet.trim(), "1");
    fx.nets().detach("default", "k1").await.unwrap();
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
}
