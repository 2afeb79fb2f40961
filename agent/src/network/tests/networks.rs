//! Networks as records and bridges: user networks (create, list, inspect, remove,
//! prune), the default bridge from the configuration, and names (links, extra hosts).

use std::net::Ipv4Addr;
use std::path::Path;

use super::support::{Fixture, sh, token};
use crate::network::{
    Driver, EndpointRequest, ExtraHost, Link, NetworkCreate, NetworkError, parse_publish,
};

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_networks_create_list_inspect_remove_prune() {
    let mut fx = Fixture::new(8);
    // Predefined networks exist from the start.
    let names: Vec<String> = fx
        .nets()
        .list()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, vec!["bridge", "host", "none"]);

    // Explicit subnet and bridge.
    let br1 = format!("bt{}", token(13));
    fx.extra_bridges.push(br1.clone());
    let n1 = fx
        .nets()
        .create(&NetworkCreate {
            name: "front".into(),
            subnet: Some("10.213.9.0/24".parse().unwrap()),
            gateway: Some(Ipv4Addr::new(10, 213, 9, 254)),
            bridge: Some(br1.clone()),
            mtu: Some(1400),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(n1.driver, Driver::Bridge);
    assert!(link_exists(&br1));
    let (_, addr) = sh(&["ip", "-o", "-4", "addr", "show", "dev", &br1]);
    assert!(addr.contains("inet 10.213.9.254/24"), "{addr}");
    let (_, link) = sh(&["ip", "-o", "link", "show", "dev", &br1]);
    assert!(link.contains("mtu 1400"), "{link}");

    // From the pool, in /26 pieces, skipping what is taken.
    let n2 = fx
        .nets()
        .create(&NetworkCreate {
            name: "auto1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    fx.extra_bridges.push(n2.bridge.clone());
    let n3 = fx
        .nets()
        .create(&NetworkCreate {
            name: "auto2".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    fx.extra_bridges.push(n3.bridge.clone());
    assert_eq!(n2.subnet.unwrap().to_string(), "10.214.8.0/26");
    assert_eq!(n2.gateway, Some(Ipv4Addr::new(10, 214, 8, 1)));
    assert_eq!(n3.subnet.unwrap().to_string(), "10.214.8.64/26");
    assert_eq!(n2.bridge, format!("br-{}", &n2.id[..12]));
    assert!(link_exists(&n2.bridge));

    // Refusals.
    for (bad, why) in [
        (
            NetworkCreate {
                name: "front".into(),
                ..Default::default()
            },
            "already exists",
        ),
        (
            NetworkCreate {
                name: "bridge".into(),
                ..Default::default()
            },
            "predefined",
        ),
        (
            NetworkCreate {
                name: "-x".into(),
                ..Default::default()
            },
            "not a network name",
        ),
        (
            NetworkCreate {
                name: "over".into(),
                subnet: Some("10.213.9.128/25".parse().unwrap()),
                ..Default::default()
            },
            "overlaps network front",
        ),
        (
            NetworkCreate {
                name: "over2".into(),
                subnet: Some("10.213.8.0/24".parse().unwrap()),
                ..Default::default()
            },
            "overlaps network bridge",
        ),
        (
            NetworkCreate {
                name: "mv".into(),
                driver: "macvlan".into(),
                ..Default::default()
            },
            "not implemented",
        ),
        (
            NetworkCreate {
                name: "gw".into(),
                subnet: Some("10.213.99.0/24".parse().unwrap()),
                gateway: Some(Ipv4Addr::new(10, 213, 98, 1)),
                ..Default::default()
            },
            "not a host address",
        ),
    ] {
        let err = fx.nets().create(&bad).await.unwrap_err();
        assert!(err.to_string().contains(why), "{}: {err}", bad.name);
    }
    // A third auto network exhausts nothing yet; the pool has 4 pieces.
    let names: Vec<String> = fx
        .nets()
        .list()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(
        names,
        vec!["auto1", "auto2", "bridge", "front", "host", "none"]
    );

    // Inspect by name, id and id prefix.
    assert_eq!(fx.nets().inspect("front").unwrap().network, n1);
    assert_eq!(fx.nets().inspect(&n1.id).unwrap().network, n1);
    assert_eq!(fx.nets().inspect(&n1.id[..8]).unwrap().network, n1);
    assert!(matches!(
        fx.nets().inspect("nope"),
        Err(NetworkError::NetworkNotFound(_))
    ));

    // In use: neither rm nor prune takes it.
    let (_, path) = fx.netns();
    let ep = fx
        .nets()
        .attach(
            "default",
            "u1",
            &path,
            &EndpointRequest {
                network: "auto1".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ep.ip, Some(Ipv4Addr::new(10, 214, 8, 2)));
    let err = fx.nets().remove("auto1").await.unwrap_err();
    assert!(
        err.to_string().contains("active endpoints (default/u1)"),
        "{err}"
    );
    let err = fx.nets().remove("bridge").await.unwrap_err();
    assert!(err.to_string().contains("predefined"), "{err}");
    assert_eq!(fx.nets().inspect("auto1").unwrap().endpoints.len(), 1);

    fx.nets().remove("front").await.unwrap();
    assert!(!link_exists(&br1));
    let pruned = fx.nets().prune(|_| true).await.unwrap();
    assert_eq!(pruned, vec!["auto2".to_string()]);
    assert!(!link_exists(&n3.bridge));
    assert!(link_exists(&n2.bridge));
    fx.nets().detach("default", "u1").await.unwrap();
    assert_eq!(
        fx.nets().prune(|_| true).await.unwrap(),
        vec!["auto1".to_string()]
    );
    assert!(!link_exists(&n2.bridge));
    assert!(Fixture::table(&n2.bridge).is_none());
    let names: Vec<String> = fx
        .nets()
        .list()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, vec!["bridge", "host", "none"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_bridge_follows_the_configuration() {
    let mut fx = Fixture::new(10);
    fx.config.subnet = "10.213.10.0/24".into();
    fx.config.gateway = "10.213.10.254".into();
    fx.config.mtu = 1400;
    fx.open().unwrap();
    let net = fx.nets().inspect("bridge").unwrap().network;
    assert_eq!(net.bridge, fx.bridge);
    assert_eq!(net.subnet.unwrap().to_string(), "10.213.10.0/24");
    assert_eq!(net.gateway, Some(Ipv4Addr::new(10, 213, 10, 254)));
    assert_eq!(net.mtu, 1400);
    assert!(net.predefined);

    let (ns, path) = fx.netns();
    let ep = fx
        .nets()
        .attach("default", "c", &path, &EndpointRequest::default())
        .await
        .unwrap();
    assert_eq!(ep.ip, Some(Ipv4Addr::new(10, 213, 10, 1)));
    let (_, addr) = sh(&["ip", "-o", "-4", "addr", "show", "dev", &fx.bridge]);
    assert!(addr.contains("inet 10.213.10.254/24"), "{addr}");
    let (_, link) = sh(&["ip", "-o", "link", "show", "dev", &fx.bridge]);
    assert!(link.contains("mtu 1400"), "{link}");
    assert!(Fixture::links_in(&ns).contains("mtu 1400"));
    let (_, routes) = sh(&["ip", "-n", &ns, "route"]);
    assert!(
        routes.contains("default via 10.213.10.254 dev eth0"),
        "{routes}"
    );

    // Changing it while a container is attached is refused, with the reason.
    fx.config.subnet = "10.213.11.0/24".into();
    fx.config.gateway = String::new();
    let err = fx.open().expect_err("refused");
    assert!(
        err.to_string().contains("1 endpoint(s) are attached"),
        "{err}"
    );
    fx.config.subnet = "10.213.10.0/24".into();
    fx.config.gateway = "10.213.10.254".into();
    fx.open().unwrap();
    fx.nets().detach("default", "c").await.unwrap();
    // Without containers it follows, and keeps its id.
    fx.config.subnet = "10.213.11.0/24".into();
    fx.config.gateway = String::new();
    fx.open().unwrap();
    let after = fx.nets().inspect("bridge").unwrap().network;
    assert_eq!(after.id, net.id);
    assert_eq!(after.gateway, Some(Ipv4Addr::new(10, 213, 11, 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_extra_hosts_become_hosts_entries() {
    let mut fx = Fixture::new(12);
    let (_, pdb) = fx.netns();
    let (_, pweb) = fx.netns();
    let db = fx
        .nets()
        .attach(
            "default",
            "0123456789abcdef",
            &pdb,
            &EndpointRequest {
                name: "db".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let web = fx
        .nets()
        .attach(
            "default",
            "web1",
            &pweb,
            &EndpointRequest {
                name: "web".into(),
                hostname: "www".into(),
                domainname: "example.org".into(),
                links: vec![Link::parse("db:database").unwrap()],
                extra_hosts: vec![
                    ExtraHost::parse("mirror:192.0.2.10").unwrap(),
                    ExtraHost::parse("gw:host-gateway").unwrap(),
                ],
                dns: crate::network::DnsConfig {
                    servers: vec!["192.0.2.1".parse().unwrap()],
                    search: vec![],
                    options: vec!["ndots:1".into()],
                },
                ports: parse_publish("127.0.0.1::80").unwrap(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(web.ports[0].host_ip, Ipv4Addr::LOCALHOST);
    let hosts = std::fs::read_to_string(&web.files.hosts).unwrap();
    let db_ip = db.ip.unwrap();
    assert!(hosts.contains("192.0.2.10\tmirror\n"), "{hosts}");
    assert!(hosts.contains("10.213.12.1\tgw\n"), "{hosts}");
    assert!(
        hosts.contains(&format!("{db_ip}\tdatabase 0123456789ab db\n")),
        "{hosts}"
    );
    assert!(
        hosts.contains(&format!("{}\twww.example.org www\n", web.ip.unwrap())),
        "{hosts}"
    );
    assert_eq!(
        std::fs::read_to_string(&web.files.hostname).unwrap(),
        "www\n"
    );
    assert_eq!(
        std::fs::read_to_string(&web.files.resolv_conf).unwrap(),
        "search test.example\nnameserver 192.0.2.1\noptions ndots:1\n"
    );
    // The linked container leaves: its entry goes, in place.
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(&web.files.hosts).unwrap().ino();
    fx.nets()
        .detach("default", "0123456789abcdef")
        .await
        .unwrap();
    let hosts = std::fs::read_to_string(&web.files.hosts).unwrap();
    assert!(!hosts.contains("database"), "{hosts}");
    assert_eq!(std::fs::metadata(&web.files.hosts).unwrap().ino(), ino);
    fx.nets().detach("default", "web1").await.unwrap();
}
