//! Endpoints in namespaces: two containers ping each other, `none`, `host`,
//! `container:`, connect and disconnect.

use std::net::Ipv4Addr;

use super::support::{Fixture, sh};
use crate::network::{ConnectOptions, EndpointRequest, NetworkCreate, netns};

fn req(network: &str) -> EndpointRequest {
    EndpointRequest {
        network: network.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_namespaces_on_the_default_bridge_ping_each_other() {
    let mut fx = Fixture::new(1);
    let (a_ns, a_path) = fx.netns();
    let (b_ns, b_path) = fx.netns();
    let a = fx
        .nets()
        .attach("default", "ca", &a_path, &req(""))
        .await
        .unwrap();
    let b = fx
        .nets()
        .attach("default", "cb", &b_path, &req("bridge"))
        .await
        .unwrap();
    let (a_ip, b_ip) = (a.ip.unwrap(), b.ip.unwrap());
    assert_eq!(a.gateway, Some(Ipv4Addr::new(10, 213, 1, 1)));
    assert_eq!(a_ip, Ipv4Addr::new(10, 213, 1, 2));
    assert_eq!(b_ip, Ipv4Addr::new(10, 213, 1, 3));
    assert_eq!(a.ifname.as_deref(), Some("eth0"));
    assert_eq!(a.mac.as_deref(), Some("02:42:0a:d5:01:02"));

    let links = Fixture::links_in(&a_ns);
    assert!(links.contains("lo: <LOOPBACK,UP,LOWER_UP>"), "{links}");
    assert!(links.contains("eth0@"), "{links}");
    assert!(links.contains("mtu 1500"), "{links}");
    assert!(links.contains("link/ether 02:42:0a:d5:01:02"), "{links}");
    assert!(Fixture::addrs_in(&a_ns).contains("inet 10.213.1.2/24"));
    let (_, routes) = sh(&["ip", "-n", &a_ns, "route"]);
    assert!(
        routes.contains("default via 10.213.1.1 dev eth0"),
        "{routes}"
    );
    let ports = Fixture::ports_of(&fx.bridge);
    assert_eq!(ports.len(), 2, "{ports:?}");

    for (ns, ip) in [(&a_ns, b_ip), (&b_ns, a_ip)] {
        let (ok, out) = sh(&[
            "ip",
            "netns",
            "exec",
            ns,
            "/bin/busybox",
            "ping",
            "-c1",
            "-W2",
            &ip.to_string(),
        ]);
        assert!(ok, "ping {ip} from {ns}: {out}");
    }
    // The host reaches them on the bridge too.
    let (ok, out) = sh(&["/bin/busybox", "ping", "-c1", "-W2", &a_ip.to_string()]);
    assert!(ok, "ping {a_ip} from the host: {out}");

    // Files: own name, resolv.conf without the loopback server.
    let hosts = std::fs::read_to_string(&a.files.hosts).unwrap();
    assert!(hosts.contains("10.213.1.2\tca\n"), "{hosts}");
    assert!(
        !hosts.contains("cb"),
        "default bridge has no peer names: {hosts}"
    );
    assert_eq!(std::fs::read_to_string(&a.files.hostname).unwrap(), "ca\n");
    let resolv = std::fs::read_to_string(&a.files.resolv_conf).unwrap();
    assert_eq!(resolv, "search test.example\nnameserver 192.0.2.53\n");

    fx.nets().detach("default", "ca").await.unwrap();
    fx.nets().detach("default", "cb").await.unwrap();
    assert!(Fixture::ports_of(&fx.bridge).is_empty());
    assert!(!Fixture::links_in(&a_ns).contains("eth0"));
    assert!(!a.files.hosts.exists());
    // Detaching twice is fine.
    fx.nets().detach("default", "ca").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_has_only_loopback_up() {
    let mut fx = Fixture::new(2);
    let (ns, path) = fx.netns();
    let ep = fx
        .nets()
        .attach("default", "c1", &path, &req("none"))
        .await
        .unwrap();
    assert_eq!(ep.ip, None);
    assert_eq!(ep.network, "none");
    let links = Fixture::links_in(&ns);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("1: lo: <LOOPBACK,UP,LOWER_UP>"), "{links}");
    assert!(Fixture::addrs_in(&ns).contains("inet 127.0.0.1/8"));
    let hosts = std::fs::read_to_string(&ep.files.hosts).unwrap();
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    // Ports need a bridge.
    let (_, p2) = fx.netns();
    let mut r = req("none");
    r.ports = crate::network::parse_publish("80").unwrap();
    assert!(fx.nets().attach("default", "c2", &p2, &r).await.is_err());
    assert!(fx.nets().sandbox("default", "c2").unwrap().is_none());
    fx.nets().detach("default", "c1").await.unwrap();
    assert!(fx.nets().sandbox("default", "c1").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_container_modes() {
    let mut fx = Fixture::new(13);
    let host = fx
        .nets()
        .attach(
            "default",
            "h1",
            std::path::Path::new("/nonexistent"),
            &req("host"),
        )
        .await
        .unwrap();
    assert_eq!(host.netns, std::path::Path::new(netns::SELF_NETNS));
    let resolv = std::fs::read_to_string(&host.files.resolv_conf).unwrap();
    assert!(
        resolv.contains("nameserver 127.0.0.53"),
        "host mode keeps the host's servers: {resolv}"
    );
    let hosts = std::fs::read_to_string(&host.files.hosts).unwrap();
    assert_eq!(
        hosts.trim_end(),
        std::fs::read_to_string("/etc/hosts").unwrap().trim_end()
    );

    // A pinned namespace made by the helper, joined by a second container.
    let pinned = fx.pinned_netns("web");
    assert!(netns::exists(&pinned));
    let mut r = req("");
    r.name = "web".into();
    let web = fx
        .nets()
        .attach("default", "web1", &pinned, &r)
        .await
        .unwrap();
    let (path, files) = fx.nets().container_netns("default", "web").unwrap();
    assert_eq!(path, pinned);
    let side = fx
        .nets()
        .attach("default", "side1", &path, &req("container:web"))
        .await
        .unwrap();
    assert_eq!(side.ip, web.ip);
    assert_eq!(side.netns, pinned);
    assert_eq!(side.files, files);
    assert_eq!(side.files, web.files);
    // The joined container's removal leaves the owner's networking alone.
    fx.nets().detach("default", "side1").await.unwrap();
    assert!(web.files.hosts.exists());
    fx.nets().detach("default", "web1").await.unwrap();
    fx.nets().detach("default", "h1").await.unwrap();
    netns::remove(&pinned).unwrap();
    assert!(!pinned.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_disconnect_a_user_network() {
    let mut fx = Fixture::new(14);
    let user_bridge = format!("bt{}", super::support::token(13));
    fx.extra_bridges.push(user_bridge.clone());
    let net = fx
        .nets()
        .create(&NetworkCreate {
            name: "back".into(),
            subnet: Some("10.213.15.0/24".parse().unwrap()),
            bridge: Some(user_bridge.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (a_ns, a_path) = fx.netns();
    let (_b_ns, b_path) = fx.netns();
    let mut ra = req("");
    ra.name = "app".into();
    fx.nets()
        .attach("default", "app1", &a_path, &ra)
        .await
        .unwrap();
    let mut rb = req("back");
    rb.name = "db".into();
    rb.ip = Some(Ipv4Addr::new(10, 213, 15, 50));
    let db = fx
        .nets()
        .attach("default", "db1", &b_path, &rb)
        .await
        .unwrap();
    assert_eq!(db.ip, Some(Ipv4Addr::new(10, 213, 15, 50)));

    let ep = fx
        .nets()
        .connect(
            "default",
            "app1",
            &net.id[..10],
            &ConnectOptions {
                ip: None,
                aliases: vec!["api".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(ep.ifname.as_deref(), Some("eth1"));
    let addrs = Fixture::addrs_in(&a_ns);
    assert!(
        addrs.contains("eth1") && addrs.contains(&format!("inet {}/24", ep.ip.unwrap())),
        "{addrs}"
    );
    let (_, routes) = sh(&["ip", "-n", &a_ns, "route"]);
    assert!(
        routes.contains("default via 10.213.14.1 dev eth0"),
        "{routes}"
    );
    let (ok, out) = sh(&[
        "ip",
        "netns",
        "exec",
        &a_ns,
        "/bin/busybox",
        "ping",
        "-c1",
        "-W2",
        "10.213.15.50",
    ]);
    assert!(ok, "{out}");
    // Names on the user network, both ways.
    let db_hosts = std::fs::read_to_string(&db.files.hosts).unwrap();
    assert!(
        db_hosts.contains(&format!("{}\tapp api app1", ep.ip.unwrap())),
        "{db_hosts}"
    );
    let app_hosts = std::fs::read_to_string(&ep.files.hosts).unwrap();
    assert!(app_hosts.contains("10.213.15.50\tdb db1"), "{app_hosts}");
    assert!(
        fx.nets()
            .connect("default", "app1", "back", &ConnectOptions::default())
            .await
            .is_err()
    );

    fx.nets()
        .disconnect("default", "app1", "back")
        .await
        .unwrap();
    assert!(!Fixture::links_in(&a_ns).contains("eth1"));
    let db_hosts = std::fs::read_to_string(&db.files.hosts).unwrap();
    assert!(!db_hosts.contains("app"), "{db_hosts}");
    let err = fx
        .nets()
        .disconnect("default", "app1", "back")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");

    // Disconnecting the network of the default route moves it to the next endpoint.
    fx.nets()
        .connect("default", "app1", "back", &ConnectOptions::default())
        .await
        .unwrap();
    fx.nets()
        .disconnect("default", "app1", "bridge")
        .await
        .unwrap();
    let (_, routes) = sh(&["ip", "-n", &a_ns, "route"]);
    assert!(
        routes.contains("default via 10.213.15.1 dev eth1"),
        "{routes}"
    );

    fx.nets().detach("default", "app1").await.unwrap();
    fx.nets().detach("default", "db1").await.unwrap();
    fx.nets().remove("back").await.unwrap();
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(&user_bridge)
            .exists()
    );
}
