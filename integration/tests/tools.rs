//! berth's container tools end to end through `berthctl` against a real berthd: `top`,
//! `stats --no-stream`, `port`, `diff`, `cp` both ways (and a tar that tries to leave
//! the target refused), `commit` with `-a -m -c` and `-p=false`, `export` and `import`
//! (file, `-`, http URL), live `stats`; volumes,
//! networks (with `network connect|disconnect` on running and created containers, and
//! across a berthd restart) and the system verbs. Each test has its own berthd,
//! registry, namespace, bridge, subnet and cgroup parent.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use berth_integration::TestNames;
use berth_integration::world::World;
use serde_json::Value;

#[tokio::test]
async fn top_stats_port_and_diff() {
    let w = World::new().await;
    let id = w.sleeper("web", &["-p", "127.0.0.1::80"]);

    // top: docker's -ef columns, the container's process.
    let top = w.ok(&["top", "web"]);
    let first = top.lines().next().unwrap();
    assert!(
        first.starts_with("UID") && first.contains("PID") && first.contains("CMD"),
        "{top}"
    );
    assert!(top.contains("sleep 1000"), "{top}");
    let custom = w.ok(&["top", "web", "-o", "pid,comm"]);
    assert!(
        custom.contains("COMMAND") && custom.contains("sleep"),
        "{custom}"
    );

    // stats: one sample, the container's line.
    let stats = w.ok(&["stats", "--no-stream"]);
    assert!(stats.starts_with("CONTAINER ID"), "{stats}");
    let line = stats.lines().find(|l| l.contains("web")).unwrap();
    assert!(line.starts_with(&id[..12]) && line.contains('%'), "{stats}");
    assert!(line.trim_end().ends_with('1'), "one pid: {stats}");

    // port: the random host port on 127.0.0.1.
    let port = w.ok(&["port", "web"]);
    let (left, right) = port.trim().split_once(" -> ").unwrap();
    assert_eq!(left, "80/tcp");
    let host_port: u16 = right.strip_prefix("127.0.0.1:").unwrap().parse().unwrap();
    assert!(host_port > 0);
    assert_eq!(w.ok(&["port", "web", "80"]).trim(), right);
    w.fails(&["port", "web", "81/udp"], 125);

    // diff: an added file, a changed directory, a deleted file.
    w.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "echo hi > /etc/added && rm /bin/true",
    ]);
    let diff = w.ok(&["diff", "web"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in ["C /etc", "A /etc/added", "C /bin", "D /bin/true"] {
        assert!(lines.contains(&want), "{want} missing from:\n{diff}");
    }

    // A stopped container: diff still answers, top refuses clearly.
    w.ok(&["stop", "-t", "1", "web"]);
    assert!(w.ok(&["diff", "web"]).contains("A /etc/added"));
    let err = w.fails(&["top", "web"], 1);
    assert!(err.contains("not running"), "{err}");
    let err = w.fails(&["top", "nosuch"], 1);
    assert!(err.contains("nosuch"), "{err}");
}

#[tokio::test]
async fn cp_both_ways_and_refuses_escapes() {
    let w = World::new().await;
    w.sleeper("box", &[]);
    let dir = w.scratch.path();

    // Host to container: a file into a directory, a file to a new name, a tree.
    std::fs::write(dir.join("note.txt"), "from the host\n").unwrap();
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/leaf"), "leaf\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", tree.join("link")).unwrap();
    let note = dir.join("note.txt").display().to_string();
    w.ok(&["cp", &note, "box:/tmp"]);
    w.ok(&["cp", &note, "box:/tmp/renamed.txt"]);
    // A file named like a whiteout is a file: /tmp/note.txt stays.
    w.ok(&["cp", &note, "box:/tmp/.wh.note.txt"]);
    assert_eq!(
        w.ok(&["exec", "box", "cat", "/tmp/.wh.note.txt", "/tmp/note.txt"]),
        "from the host\nfrom the host\n"
    );
    w.ok(&["cp", &tree.display().to_string(), "box:/opt"]);
    // Into an existing directory: under the source's name.
    w.ok(&["cp", &tree.display().to_string(), "box:/tmp"]);
    let cat = w.ok(&[
        "exec",
        "box",
        "cat",
        "/tmp/note.txt",
        "/tmp/renamed.txt",
        "/opt/sub/leaf",
        "/tmp/tree/sub/leaf",
    ]);
    assert_eq!(cat, "from the host\nfrom the host\nleaf\nleaf\n");
    // The symlink travels as a symlink, not as the host's file.
    let ls = w.ok(&["exec", "box", "ls", "-l", "/tmp/tree/link"]);
    assert!(
        ls.starts_with('l') && ls.trim_end().ends_with("-> /etc/passwd"),
        "{ls}"
    );

    // Container to host: a file into a directory, to a new name, a tree, a tar.
    w.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "mkdir -p /data/in && echo inside > /data/in/f",
    ]);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    w.ok(&["cp", "box:/data/in/f", &out.display().to_string()]);
    assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "inside\n");
    let renamed = out.join("g");
    w.ok(&["cp", "box:/data/in/f", &renamed.display().to_string()]);
    assert_eq!(std::fs::read_to_string(&renamed).unwrap(), "inside\n");
    let copied = out.join("copy-of-data");
    w.ok(&["cp", "box:/data", &copied.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(copied.join("in/f")).unwrap(),
        "inside\n"
    );
    let tar = w.ctl(&["cp", "box:/data/in/f", "-"]);
    assert!(tar.success(), "{tar:?}");
    assert!(tar.stdout.contains("inside"), "a tar holding f");

    // A symlink in the container pointing at the host's root stays inside the container.
    w.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "ln -s / /escape && echo jail > /jail",
    ]);
    w.ok(&[
        "cp",
        "box:/escape/jail",
        &out.join("j").display().to_string(),
    ]);
    assert_eq!(std::fs::read_to_string(out.join("j")).unwrap(), "jail\n");

    // A tar with an entry leaving the target is refused; nothing lands outside.
    let mut bad = Vec::new();
    {
        let mut h = [0u8; 512];
        let name = b"../../escaped";
        h[..name.len()].copy_from_slice(name);
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(b"00000000005");
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        bad.extend_from_slice(&h);
        let mut body = b"evil\n".to_vec();
        body.resize(512, 0);
        bad.extend_from_slice(&body);
        bad.extend_from_slice(&[0u8; 1024]);
    }
    let mut cmd = w.daemon.berthctl().unwrap();
    cmd.args(["-n", &w.ns, "cp", "-", "box:/tmp"]);
    let out = berth_integration::procs::run(&mut cmd, Some(&bad), Duration::from_secs(60)).unwrap();
    assert!(!out.success(), "{out:?}");
    let ls = w.ctl(&["exec", "box", "ls", "/escaped"]);
    assert!(!ls.success(), "the entry escaped: {ls:?}");

    // Errors name what is missing.
    let err = w.fails(&["cp", "box:/nope", &out_str(dir)], 1);
    assert!(err.contains("/nope"), "{err}");
    w.fails(&["cp", &note, &note], 125);
    let _ = std::io::stdout().flush();
}

fn out_str(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn commit_export_and_import() {
    let w = World::new().await;
    w.sleeper("src", &[]);
    w.ok(&["exec", "src", "sh", "-c", "echo committed > /hello"]);

    // commit -a -m -c: a new image with the change and the new config.
    let id = w
        .ok(&[
            "commit",
            "-a",
            "Tester <t@example.com>",
            "-m",
            "add hello",
            "-c",
            r#"CMD ["cat", "/hello"]"#,
            "-c",
            "ENV MARK=yes",
            "src",
            "snap:v1",
        ])
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let images = w.ok(&["images"]);
    assert!(images.contains("snap") && images.contains("v1"), "{images}");
    let doc: Value = serde_json::from_str(&w.ok(&["image", "inspect", "snap:v1"])).unwrap();
    let img = &doc[0];
    assert_eq!(img["Author"], "Tester <t@example.com>", "{img}");
    assert_eq!(img["Comment"], "add hello", "{img}");
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["cat", "/hello"]));
    assert!(
        img["Config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "MARK=yes"),
        "{img}"
    );
    // The container ran on, not paused for good.
    w.ok(&["exec", "src", "true"]);
    assert_eq!(w.ok(&["run", "--rm", "snap:v1"]), "committed\n");
    // A bad instruction is refused before anything is made.
    let err = w.fails(&["commit", "-c", "ONBUILD RUN x", "src", "bad:v1"], 1);
    assert!(err.to_lowercase().contains("onbuild"), "{err}");

    // export -o: the container's whole file system; import it as a new image.
    let tar = w.scratch.path().join("src.tar");
    w.ok(&["export", "-o", &tar.display().to_string(), "src"]);
    let bytes = std::fs::read(&tar).unwrap();
    assert!(bytes.len() > 100_000, "export is {} bytes", bytes.len());
    let id2 = w
        .ok(&[
            "import",
            "-m",
            "from export",
            "-c",
            r#"CMD ["cat", "/hello"]"#,
            &tar.display().to_string(),
            "flat:v1",
        ])
        .trim()
        .to_string();
    assert!(id2.starts_with("sha256:"), "{id2}");
    assert_eq!(w.ok(&["run", "--rm", "flat:v1"]), "committed\n");
    let doc: Value = serde_json::from_str(&w.ok(&["image", "inspect", "flat:v1"])).unwrap();
    assert_eq!(
        doc[0]["RootFS"]["Layers"].as_array().unwrap().len(),
        1,
        "{doc}"
    );
    // Standard input as the source.
    let mut cmd = w.daemon.berthctl().unwrap();
    cmd.args(["-n", &w.ns, "import", "-", "piped:v1"]);
    let out =
        berth_integration::procs::run(&mut cmd, Some(&bytes), Duration::from_secs(120)).unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(
        w.ok(&["run", "--rm", "piped:v1", "cat", "/hello"]),
        "committed\n"
    );
    // Export to stdout is refused only on a terminal; a missing container is an error.
    let err = w.fails(&["export", "-o", &tar.display().to_string(), "nosuch"], 1);
    assert!(err.contains("nosuch"), "{err}");
}

#[tokio::test]
async fn volumes_create_ls_inspect_rm_prune() {
    let w = World::new().await;
    assert_eq!(
        w.ok(&["volume", "create", "--label", "team=a", "data"])
            .trim(),
        "data"
    );
    // Idempotent, as docker's.
    assert_eq!(w.ok(&["volume", "create", "data"]).trim(), "data");
    let anon = w.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64, "{anon}");
    let ls = w.ok(&["volume", "ls"]);
    assert!(
        ls.starts_with("DRIVER") && ls.contains("VOLUME NAME"),
        "{ls}"
    );
    assert!(
        ls.contains("local") && ls.contains("data") && ls.contains(&anon),
        "{ls}"
    );
    assert_eq!(
        w.ok(&["volume", "ls", "-q", "--filter", "label=team=a"])
            .trim(),
        "data"
    );
    let err = w.fails(&["volume", "ls", "--filter", "colour=red"], 1);
    assert!(err.contains("colour"), "{err}");
    let err = w.fails(&["volume", "create", "-d", "nfs", "remote"], 1);
    assert!(err.contains("nfs"), "{err}");

    // A container writes through the volume; inspect shows where and how much.
    w.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        &w.busybox,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let doc: Value = serde_json::from_str(&w.ok(&["volume", "inspect", "data"])).unwrap();
    let v = &doc[0];
    assert_eq!(v["Name"], "data");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Labels"]["team"], "a");
    let mountpoint = v["Mountpoint"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(Path::new(mountpoint).join("f")).unwrap(),
        "kept\n"
    );
    assert!(v["UsageData"]["Size"].as_i64().unwrap() >= 5, "{v}");
    let err = w.fails(&["volume", "inspect", "nosuch"], 1);
    assert!(err.contains("nosuch"), "{err}");

    // In use: removal refused, naming the container.
    let id = w.sleeper("user", &["-v", "data:/data"]);
    let err = w.fails(&["volume", "rm", "data"], 1);
    assert!(err.contains("in use") && err.contains(&id), "{err}");
    assert_eq!(
        w.ok(&["volume", "ls", "-q", "--filter", "dangling=false"])
            .trim(),
        "data"
    );
    // prune: only the unused anonymous volume; with -a the named ones too, never in use.
    let pruned = w.ok(&["volume", "prune", "-f"]);
    assert!(
        pruned.contains(&anon) && !pruned.contains("data\n"),
        "{pruned}"
    );
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    w.ok(&["volume", "create", "spare"]);
    let pruned = w.ok(&["volume", "prune", "-f", "-a"]);
    assert!(
        pruned.contains("spare") && !pruned.contains("data\n"),
        "{pruned}"
    );
    w.ok(&["rm", "-f", "user"]);
    assert_eq!(w.ok(&["volume", "rm", "data"]).trim(), "data");
    assert!(!Path::new(mountpoint).exists());
    w.fails(&["volume", "rm", "data"], 1);
    w.ok(&["volume", "rm", "-f", "data"]);
    assert_eq!(w.ok(&["volume", "ls", "-q"]).trim(), "");
}

#[tokio::test]
async fn networks_create_ls_inspect_rm_prune() {
    let w = World::new().await;
    // Its own bridge names, deleted by their guards even when the test fails.
    let first = TestNames::new();
    let second = TestNames::new();
    let bridge_opt = format!("com.docker.network.bridge.name={}", first.bridge);
    let id = w
        .ok(&[
            "network",
            "create",
            "--label",
            "tier=back",
            "-o",
            &bridge_opt,
            "backend",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let err = w.fails(&["network", "create", "-o", &bridge_opt, "backend"], 1);
    assert!(err.contains("backend"), "{err}");

    let ls = w.ok(&["network", "ls"]);
    assert!(ls.starts_with("NETWORK ID"), "{ls}");
    for name in ["bridge", "host", "none", "backend"] {
        assert!(ls.lines().any(|l| l.contains(name)), "{name} missing: {ls}");
    }
    assert_eq!(
        w.ok(&["network", "ls", "-q", "--filter", "type=custom"])
            .trim(),
        &id[..12]
    );
    assert_eq!(
        w.ok(&["network", "ls", "-q", "--no-trunc", "-f", "label=tier=back"])
            .trim(),
        id
    );

    // A container on it shows in inspect; removal is refused while it is there.
    w.sleeper("member", &["--network", "backend"]);
    let doc: Value = serde_json::from_str(&w.ok(&["network", "inspect", "backend"])).unwrap();
    let n = &doc[0];
    assert_eq!(n["Id"], id.as_str());
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(n["Labels"]["tier"], "back");
    assert!(
        !n["IPAM"]["Config"][0]["Subnet"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{n}"
    );
    let members: Vec<&Value> = n["Containers"].as_object().unwrap().values().collect();
    assert_eq!(members.len(), 1, "{n}");
    assert_eq!(members[0]["Name"], "member");
    let err = w.fails(&["network", "rm", "backend"], 1);
    assert!(err.contains("backend") || err.contains(&id[..12]), "{err}");
    // A container is connected to its own network once.
    let err = w.fails(&["network", "connect", "backend", "member"], 1);
    assert!(err.contains("already exists in network backend"), "{err}");
    let err = w.fails(&["network", "rm", "bridge"], 1);
    assert!(err.contains("bridge"), "{err}");

    // prune spares networks in use and predefined ones.
    let bridge_opt2 = format!("com.docker.network.bridge.name={}", second.bridge);
    w.ok(&["network", "create", "-o", &bridge_opt2, "spare"]);
    // Filters: only what was created before `until` and matches the labels goes.
    let pruned = w.ok(&["network", "prune", "-f", "--filter", "label=tier"]);
    assert!(!pruned.contains("spare"), "{pruned}");
    let pruned = w.ok(&["network", "prune", "-f", "--filter", "until=1h"]);
    assert!(!pruned.contains("spare"), "{pruned}");
    let err = w.fails(&["network", "prune", "-f", "--filter", "driver=bridge"], 1);
    assert!(err.contains("driver"), "{err}");
    let pruned = w.ok(&["network", "prune", "-f"]);
    assert!(
        pruned.contains("spare") && !pruned.contains("backend"),
        "{pruned}"
    );
    w.ok(&["rm", "-f", "member"]);
    assert_eq!(w.ok(&["network", "rm", "backend"]).trim(), "backend");
    assert_eq!(
        w.ok(&["network", "ls", "-q", "--filter", "type=custom"])
            .trim(),
        ""
    );
    let err = w.fails(&["network", "inspect", "backend"], 1);
    assert!(err.contains("backend"), "{err}");
}

/// The IPv4 addresses of a container's interface, from inside it ("" when it has none).
fn addresses(w: &World, container: &str, ifname: &str) -> String {
    let out = w.ctl(&["exec", container, "ip", "-o", "-4", "addr", "show", ifname]);
    out.stdout
        .split_whitespace()
        .skip_while(|f| *f != "inet")
        .nth(1)
        .unwrap_or("")
        .to_string()
}

/// The names of a container's network interfaces, sorted (`ip -o link` inside it).
fn links(w: &World, container: &str) -> Vec<String> {
    let out = w.ok(&["exec", container, "ip", "-o", "link"]);
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect();
    names.sort();
    names
}

fn members(w: &World, network: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(&w.ok(&["network", "inspect", network])).unwrap();
    let mut names: Vec<String> = doc[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["Name"].as_str().unwrap_or("").to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn network_connect_and_disconnect() {
    let mut w = World::new().await;
    let front = TestNames::new();
    let bridge_opt = format!("com.docker.network.bridge.name={}", front.bridge);
    w.ok(&["network", "create", "-o", &bridge_opt, "front"]);
    let doc: Value = serde_json::from_str(&w.ok(&["network", "inspect", "front"])).unwrap();
    let subnet = doc[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    let base: std::net::Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
    let fixed = std::net::Ipv4Addr::from(u32::from(base) + 40).to_string();

    // A running container on the default bridge joins front as eth1, with an alias;
    // a container of front reaches it by name and by alias.
    w.sleeper("app", &[]);
    w.sleeper("peer", &["--network", "front"]);
    assert_eq!(addresses(&w, "app", "eth1"), "");
    assert_eq!(
        w.ok(&["network", "connect", "--alias", "web", "front", "app"]),
        ""
    );
    let app_ip = addresses(&w, "app", "eth1");
    assert!(!app_ip.is_empty(), "app has no eth1 address");
    assert_eq!(members(&w, "front"), ["app", "peer"]);
    for name in ["app", "web", app_ip.split('/').next().unwrap()] {
        let out = w.ok(&["exec", "peer", "ping", "-c", "1", "-W", "5", name]);
        assert!(out.contains("1 packets received"), "ping {name}: {out}");
    }
    // app's default route stays on the bridge.
    let routes = w.ok(&["exec", "app", "ip", "route"]);
    assert!(
        routes
            .lines()
            .any(|l| l.starts_with("default") && l.contains("eth0")),
        "{routes}"
    );

    // docker's errors, exit code 1.
    let err = w.fails(&["network", "connect", "front", "app"], 1);
    assert!(err.contains("already exists in network front"), "{err}");
    let err = w.fails(&["network", "connect", "nosuchnet", "app"], 1);
    assert!(
        err.contains("nosuchnet") && err.contains("not found"),
        "{err}"
    );
    let err = w.fails(&["network", "connect", "front", "nosuchbox"], 1);
    assert!(err.contains("No such container: nosuchbox"), "{err}");
    let err = w.fails(&["network", "connect", "--ip", &fixed, "bridge", "peer"], 1);
    assert!(err.contains("user defined networks only"), "{err}");
    let err = w.fails(&["network", "connect", "host", "app"], 1);
    assert!(err.contains("host network"), "{err}");

    // A created container: recorded, attached at start with its fixed address, and
    // again at every start.
    w.ok(&["create", "--name", "late", &w.busybox, "sleep", "1000"]);
    let err = w.fails(&["network", "disconnect", "front", "late"], 1);
    assert!(err.contains("is not connected to network front"), "{err}");
    assert_eq!(w.ok(&["network", "disconnect", "-f", "front", "late"]), "");
    w.ok(&["network", "connect", "--ip", &fixed, "front", "late"]);
    w.ok(&["start", "late"]);
    assert_eq!(
        addresses(&w, "late", "eth1"),
        format!("{fixed}/{}", subnet.split('/').nth(1).unwrap())
    );
    w.ok(&["stop", "-t", "1", "late"]);
    w.ok(&["start", "late"]);
    assert!(addresses(&w, "late", "eth1").starts_with(&format!("{fixed}/")));
    let out = w.ok(&["exec", "late", "ping", "-c", "1", "-W", "5", "peer"]);
    assert!(out.contains("1 packets received"), "{out}");

    // The connections survive a berthd restart.
    w.daemon.restart().await.unwrap();
    assert_eq!(addresses(&w, "app", "eth1"), app_ip);
    assert_eq!(members(&w, "front"), ["app", "late", "peer"]);

    // Disconnect: the interface goes, the others' hosts files forget the alias.
    assert_eq!(w.ok(&["network", "disconnect", "front", "app"]), "");
    assert_eq!(addresses(&w, "app", "eth1"), "");
    assert_eq!(members(&w, "front"), ["late", "peer"]);
    let hosts = w.ok(&["exec", "peer", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("web"), "{hosts}");
    let err = w.fails(&["network", "disconnect", "front", "app"], 1);
    assert!(err.contains("is not connected to network front"), "{err}");
    // Leaving the network mode's own network keeps the connected one, across starts.
    w.ok(&["network", "disconnect", "bridge", "late"]);
    assert_eq!(addresses(&w, "late", "eth0"), "");
    w.ok(&["restart", "-t", "1", "late"]);
    assert_eq!(addresses(&w, "late", "eth0"), "");
    assert!(addresses(&w, "late", "eth1").starts_with(&format!("{fixed}/")));
    // Its last network too: loopback only, kept so across a berthd restart (reconcile
    // leaves the sandbox) and a container restart; connecting again works.
    assert_eq!(w.ok(&["network", "disconnect", "front", "late"]), "");
    assert_eq!(links(&w, "late"), ["lo"]);
    assert_eq!(members(&w, "front"), ["peer"]);
    w.daemon.restart().await.unwrap();
    assert_eq!(links(&w, "late"), ["lo"]);
    w.ok(&["network", "connect", "front", "late"]);
    assert_eq!(links(&w, "late"), ["eth0", "lo"]);
    w.ok(&["network", "disconnect", "front", "late"]);
    w.ok(&["restart", "-t", "1", "late"]);
    assert_eq!(links(&w, "late"), ["lo"]);
    let doc: Value = serde_json::from_str(&w.ok(&["inspect", "late"])).unwrap();
    let nets = &doc[0]["NetworkSettings"]["Networks"];
    assert!(nets.as_object().is_none_or(|m| m.is_empty()), "{nets}");
    w.ok(&["network", "connect", "front", "late"]);
    assert_eq!(links(&w, "late"), ["eth0", "lo"]);
    let out = w.ok(&["exec", "late", "ping", "-c", "1", "-W", "5", "peer"]);
    assert!(out.contains("1 packets received"), "{out}");

    w.ok(&["rm", "-f", "app", "peer", "late"]);
    w.ok(&["network", "rm", "front"]);
}

#[tokio::test]
async fn system_events_prune_and_info() {
    let w = World::new().await;
    let bridge = TestNames::new();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();

    // Things happen: a container's life, a volume, a network.
    w.ok(&["run", "--name", "once", &w.busybox, "true"]);
    w.ok(&["volume", "create", "evvol"]);
    w.ok(&["volume", "rm", "evvol"]);
    let bridge_opt = format!("com.docker.network.bridge.name={}", bridge.bridge);
    w.ok(&["network", "create", "-o", &bridge_opt, "evnet"]);
    let anon = w.ok(&["volume", "create"]).trim().to_string();

    // events --since/--until replays the history and ends.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let events = w.ok(&["system", "events", "--since", &since, "--until", &until]);
    for want in [
        "container create",
        "container start",
        "container die",
        "volume create",
        "volume destroy",
        "network create",
    ] {
        assert!(events.contains(want), "{want} missing from:\n{events}");
    }
    assert!(events.contains("name=once"), "{events}");
    let only = w.ok(&[
        "system",
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "-f",
        "type=volume",
    ]);
    assert!(
        !only.is_empty() && only.lines().all(|l| l.contains(" volume ")),
        "{only}"
    );
    let err = w.fails(
        &["system", "events", "-f", "colour=red", "--until", &until],
        1,
    );
    assert!(err.contains("colour"), "{err}");

    // system prune: the stopped container, the unused network, the anonymous volume.
    let pruned = w.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert!(pruned.contains("evnet"), "{pruned}");
    assert!(pruned.contains(&anon), "{pruned}");
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    assert_eq!(w.ok(&["ps", "-a", "-q"]).trim(), "");
    assert!(
        w.ok(&["images"]).contains("busybox"),
        "a tagged image is kept without -a"
    );

    // info: counts and drivers.
    let info = w.ok(&["system", "info"]);
    for want in [
        "Storage Driver:      overlayfs",
        "Cgroup Driver:       cgroupfs",
        "Volumes:",
    ] {
        assert!(info.contains(want), "{want} missing from:\n{info}");
    }
}

#[tokio::test]
async fn system_df() {
    let w = World::new().await;
    w.sleeper("busy", &["-v", "dfvol:/data"]);
    w.ok(&[
        "exec",
        "busy",
        "sh",
        "-c",
        "head -c 100000 /bin/busybox > /data/blob; head -c 50000 /bin/busybox > /written",
    ]);
    w.ok(&["run", "--name", "done", &w.busybox, "true"]);
    let df = w.ok(&["system", "df"]);
    let lines: Vec<&str> = df.lines().collect();
    assert!(
        lines[0].starts_with("TYPE") && lines[0].contains("RECLAIMABLE"),
        "{df}"
    );
    let row = |t: &str| -> Vec<String> {
        let line = lines
            .iter()
            .find(|l| l.starts_with(t))
            .unwrap_or_else(|| panic!("{t}: {df}"));
        line[t.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // Images: one, in use. Containers: two, one running. Volumes: one, in use, >= 100kB.
    assert_eq!(&row("Images")[..2], ["1", "1"], "{df}");
    assert_eq!(&row("Containers")[..2], ["2", "1"], "{df}");
    let vols = row("Local Volumes");
    assert_eq!(&vols[..2], ["1", "1"], "{df}");
    assert!(vols[2].ends_with("kB") || vols[2].ends_with("MB"), "{df}");
    assert!(lines.iter().any(|l| l.starts_with("Build Cache")), "{df}");
    let v = w.ok(&["system", "df", "-v"]);
    for want in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "dfvol",
        "busy",
        "done",
    ] {
        assert!(v.contains(want), "{want} missing from:\n{v}");
    }

    // A committed image shares busybox's layer: SIZE, SHARED SIZE, UNIQUE SIZE per image.
    w.ok(&["commit", "busy", "dfsnap:v1"]);
    let v = w.ok(&["system", "df", "-v"]);
    let sizes = |repo: &str| -> Vec<String> {
        let line = v
            .lines()
            .find(|l| l.split_whitespace().next() == Some(repo))
            .unwrap_or_else(|| panic!("{repo} missing from:\n{v}"));
        let f: Vec<&str> = line.split_whitespace().collect();
        f[f.len() - 4..f.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let base = sizes(w.busybox.rsplit_once(':').unwrap().0);
    assert_eq!(base[1], base[0], "busybox's whole size is shared:\n{v}");
    assert_eq!(base[2], "0B", "{v}");
    let snap = sizes("dfsnap");
    assert_eq!(snap[1], base[0], "dfsnap shares busybox's layer:\n{v}");
    assert!(snap[2].ends_with("kB") || snap[2].ends_with("MB"), "{v}");
}

/// Spawns `berthctl -n NS ARGS` with its standard output sent, line by line, to the
/// returned channel. The caller kills the child (its own, by handle).
fn follow(w: &World, args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut cmd = w.daemon.berthctl().unwrap();
    cmd.args(["-n", &w.ns])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Serves `body` once over HTTP on 127.0.0.1; the port, and the request head it got.
fn serve_once(body: Vec<u8>) -> (u16, std::thread::JoinHandle<String>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    (port, server)
}

#[tokio::test]
async fn live_stats_import_from_a_url_and_commit_without_pause() {
    let w = World::new().await;
    w.sleeper("busy", &[]);

    // stats without --no-stream: a new sample every second until stopped.
    let (mut stats, samples) = follow(&w, &["--format", "json", "stats", "busy"]);
    for i in 0..3 {
        let line = samples
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("stats sample {i}: {e}"));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Name"], "busy", "{line}");
        assert_eq!(v["PIDs"], 1, "{line}");
    }
    stats.kill().unwrap();
    stats.wait().unwrap();

    // commit pauses the container unless -p=false: the task's paused/resumed events.
    let (mut events, topics) = follow(&w, &["events"]);
    std::thread::sleep(Duration::from_millis(500));
    w.ok(&["exec", "busy", "sh", "-c", "echo from-url > /marker"]);
    w.ok(&["commit", "-p=false", "busy", "unpaused:v1"]);
    w.ok(&["exec", "busy", "true"]);
    w.ok(&["commit", "busy", "paused:v1"]);
    w.ok(&["exec", "busy", "true"]);
    std::thread::sleep(Duration::from_millis(500));
    events.kill().unwrap();
    events.wait().unwrap();
    let seen: Vec<String> = topics.try_iter().collect();
    let count = |topic: &str| seen.iter().filter(|l| l.contains(topic)).count();
    assert_eq!(count("/tasks/exec-started"), 3, "{seen:#?}");
    assert_eq!(count("/tasks/paused"), 1, "{seen:#?}");
    assert_eq!(count("/tasks/resumed"), 1, "{seen:#?}");
    assert_eq!(
        w.ok(&["run", "--rm", "unpaused:v1", "cat", "/marker"]),
        "from-url\n"
    );

    // import from an http URL: berthd fetches it.
    let tar = w.scratch.path().join("busy.tar");
    w.ok(&["export", "-o", &tar.display().to_string(), "busy"]);
    let (port, server) = serve_once(std::fs::read(&tar).unwrap());
    let url = format!("http://127.0.0.1:{port}/rootfs/busy.tar");
    let id = w.ok(&["import", &url, "fromurl:v1"]).trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let head = server.join().unwrap();
    assert!(head.starts_with("GET /rootfs/busy.tar HTTP/1.1"), "{head}");
    assert_eq!(
        w.ok(&["run", "--rm", "fromurl:v1", "cat", "/marker"]),
        "from-url\n"
    );
    // Any other source is a file name, as with docker.
    let err = w.fails(&["import", "ftp://127.0.0.1/x.tar", "bad:v1"], 125);
    assert!(err.contains("open ftp://127.0.0.1/x.tar"), "{err}");
    w.ok(&["rm", "-f", "busy"]);
}
