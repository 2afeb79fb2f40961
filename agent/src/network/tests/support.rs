//! Fixtures: unique names, a metadata database and a `Networks` on a temp dir, network
//! namespaces made with `ip netns add`, small servers inside a namespace, and cleanup.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::config::{AddressPool, NetworkConfig};
use crate::metadata::Metadata;
use crate::network::{Networks, netns};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `len` hex digits unique to this process and call.
pub fn token(len: usize) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hex::encode(Sha256::digest(format!(
        "{}-{n}-{nanos}",
        std::process::id()
    )))[..len]
        .to_string()
}

/// Runs a command; returns (success, stdout + stderr).
pub fn sh(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A free TCP port on 127.0.0.1 a moment ago (also free for UDP, checked).
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let p = l.local_addr().unwrap().port();
        if UdpSocket::bind((Ipv4Addr::UNSPECIFIED, p)).is_ok() {
            return p;
        }
    }
}

/// One test's world: names, config, database, subsystem. Dropping it removes the
/// namespaces, bridges and nft tables it made.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub bridge: String,
    pub config: NetworkConfig,
    pub md: Option<Arc<Metadata>>,
    pub nets: Option<Networks>,
    netns: Vec<String>,
    /// Further bridges to delete (user networks).
    pub extra_bridges: Vec<String>,
    /// Namespaces pinned with `netns::create`, unpinned on drop.
    pinned: Vec<PathBuf>,
}

impl Fixture {
    /// A fixture whose default network is `10.213.{x}.0/24` on a fresh bridge and
    /// whose address pool is `10.214.{x}.0/24` in /26 pieces.
    pub fn new(x: u8) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("host-resolv.conf");
        std::fs::write(
            &resolv,
            "search test.example\nnameserver 127.0.0.53\nnameserver 192.0.2.53\n",
        )
        .unwrap();
        let bridge = format!("bt{}", token(13));
        let port = free_port();
        let config = NetworkConfig {
            bridge: bridge.clone(),
            subnet: format!("10.213.{x}.0/24"),
            gateway: String::new(),
            mtu: 1500,
            port_range: format!("{port}-{port}"),
            userland_proxy: true,
            masquerade: true,
            // Tests do not change the host's forwarding setting.
            ip_forward: false,
            default_address_pools: vec![AddressPool {
                base: format!("10.214.{x}.0/24"),
                size: 26,
            }],
            resolv_conf: resolv,
        };
        let mut fx = Fixture {
            dir,
            bridge,
            config,
            md: None,
            nets: None,
            netns: Vec::new(),
            extra_bridges: Vec::new(),
            pinned: Vec::new(),
        };
        fx.open().unwrap();
        fx
    }

    /// (Re)opens the database and the subsystem with the current config.
    pub fn open(&mut self) -> crate::network::Result<()> {
        self.nets = None;
        self.md = None;
        let md = Arc::new(Metadata::open(&self.dir.path().join("meta.redb"))?);
        self.md = Some(md.clone());
        self.nets = Some(Networks::open(
            md,
            &self.config,
            &self.dir.path().join("network"),
        )?);
        Ok(())
    }

    /// Drops the subsystem and the database, as a crash would (no detach, no shutdown).
    pub fn crash(&mut self) {
        self.nets = None;
        self.md = None;
    }

    pub fn nets(&self) -> &Networks {
        self.nets.as_ref().expect("networks open")
    }

    pub fn md(&self) -> &Metadata {
        self.md.as_ref().expect("metadata open")
    }

    /// A new network namespace (`ip netns add`); returns its name and path.
    pub fn netns(&mut self) -> (String, PathBuf) {
        let name = format!("bn{}", token(12));
        let (ok, out) = sh(&["ip", "netns", "add", &name]);
        assert!(ok, "ip netns add {name}: {out}");
        self.netns.push(name.clone());
        let path = PathBuf::from(format!("/run/netns/{name}"));
        (name, path)
    }

    /// A namespace pinned by [`netns::create`] under the test's directory.
    pub fn pinned_netns(&mut self, name: &str) -> PathBuf {
        let path = self.dir.path().join("netns").join(name);
        self.pinned.push(path.clone());
        netns::create(&path).unwrap()
    }

    /// The nft table of `bridge`, if it exists.
    pub fn table(bridge: &str) -> Option<String> {
        let (ok, out) = sh(&["nft", "list", "table", "ip", &format!("berth-{bridge}")]);
        ok.then_some(out)
    }

    /// Links enslaved to `bridge` (`ip -o link show master`).
    pub fn ports_of(bridge: &str) -> Vec<String> {
        let (ok, out) = sh(&["ip", "-o", "link", "show", "master", bridge]);
        if !ok {
            // No such bridge: no ports either.
            return Vec::new();
        }
        out.lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }

    /// `ip -o link` inside a namespace.
    pub fn links_in(ns: &str) -> String {
        sh(&["ip", "-n", ns, "-o", "link"]).1
    }

    /// `ip -o -4 addr` inside a namespace.
    pub fn addrs_in(ns: &str) -> String {
        sh(&["ip", "-n", ns, "-o", "-4", "addr"]).1
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.nets = None;
        self.md = None;
        for ns in &self.netns {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
        for p in &self.pinned {
            let _ = netns::remove(p);
        }
        for b in std::iter::once(&self.bridge).chain(&self.extra_bridges) {
            let t = format!("berth-{b}");
            let _ = Command::new("nft")
                .args(["delete", "table", "ip", &t])
                .stderr(std::process::Stdio::null())
                .status();
            if Path::new("/sys/class/net").join(b).exists() {
                let _ = sh(&["ip", "link", "del", "dev", b]);
            }
        }
    }
}

/// A TCP server inside a namespace: answers each connection with the peer address it
/// saw, then echoes one line. Stops when dropped.
pub struct TcpServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    pub fn start(netns_path: &Path, port: u16) -> TcpServer {
        let listener = netns::run_in(netns_path, move || {
            TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        })
        .unwrap()
        .unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut c, peer)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let _ = c.write_all(format!("{}\n", peer.ip()).as_bytes());
                        let mut buf = [0u8; 64];
                        if let Ok(n) = c.read(&mut buf) {
                            let _ = c.write_all(&buf[..n]);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TcpServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP server inside a namespace: answers each datagram with the peer address and
/// the datagram. Stops when dropped.
pub struct UdpServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpServer {
    pub fn start(netns_path: &Path, port: u16) -> UdpServer {
        let sock = netns::run_in(netns_path, move || {
            UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))
        })
        .unwrap()
        .unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                    let reply = format!("{} {}", peer.ip(), String::from_utf8_lossy(&buf[..n]));
                    let _ = sock.send_to(reply.as_bytes(), peer);
                }
            }
        });
        UdpServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects to `addr`, reads the line the server sends (the peer it saw), sends `msg`
/// and reads the echo. Blocking, with timeouts.
pub fn tcp_exchange(addr: SocketAddr, msg: &str) -> std::io::Result<(String, String)> {
    let mut c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while c.read(&mut b)? == 1 && b[0] != b'\n' {
        got.push(b[0]);
    }
    c.write_all(msg.as_bytes())?;
    let mut echo = vec![0u8; msg.len()];
    c.read_exact(&mut echo)?;
    Ok((
        String::from_utf8_lossy(&got).into_owned(),
        String::from_utf8_lossy(&echo).into_owned(),
    ))
}

/// Sends `msg` to `addr` over UDP and returns the answer.
pub fn udp_exchange(addr: SocketAddr, msg: &str) -> std::io::Result<String> {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = [0u8; 512];
    // The first datagram may race the proxy's flow setup; try a few times.
    for _ in 0..6 {
        s.send_to(msg.as_bytes(), addr)?;
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Ok(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no udp answer",
    ))
}

/// The host's source address toward the outside (a non-loopback address), if it has a
/// default route. Found with a route lookup; nothing is sent.
pub fn host_address() -> Option<Ipv4Addr> {
    let (ok, out) = sh(&["ip", "-4", "-o", "route", "get", "192.0.2.200"]);
    if !ok {
        return None;
    }
    let mut words = out.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// Whether something listens on TCP `port` (`ss`).
pub fn tcp_listening(port: u16) -> bool {
    let (_, out) = sh(&["ss", "-Hltn", &format!("sport = :{port}")]);
    !out.trim().is_empty()
}

/// Whether a UDP socket is bound on `port` (`ss`).
pub fn udp_bound(port: u16) -> bool {
    let (_, out) = sh(&["ss", "-Huan", &format!("sport = :{port}")]);
    !out.trim().is_empty()
}
