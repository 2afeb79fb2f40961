//! berth's own containers end to end through `berthctl` (berth.v1): run, ps, logs,
//! stop/kill/restart/pause/unpause/wait/rename/rm/prune, inspect (with `nsenter`),
//! docker's exit codes, `--rm`, restart policies across a berthd crash, names and ID
//! prefixes, published ports, links, network modes, hosts and DNS files, binds and
//! volumes, resources, the image's config, attach and exec, security flags
//! (capabilities, `--privileged`, `--security-opt`, `--read-only`, `--user`,
//! `--sysctl`) and `userns_remap`. Each test has its own berthd, namespace, bridge,
//! subnet and cgroup parent, and `ctr containers ls` sees the containers.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_integration::fixtures::{self, Entry, ImageBuilder};
use berth_integration::procs::Output;
use berth_integration::world::{eventually, tail};
use serde_json::{Value, json};

/// The shared world plus `app`: an image with Env, WorkingDir, User, Entrypoint,
/// Volumes, ExposedPorts and StopSignal set, and content under /data.
struct World {
    world: berth_integration::world::World,
    app: String,
}

impl std::ops::Deref for World {
    type Target = berth_integration::world::World;
    fn deref(&self) -> &Self::Target {
        &self.world
    }
}

impl std::ops::DerefMut for World {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.world
    }
}

fn app_image() -> fixtures::Image {
    let mut entries = fixtures::catalog::busybox_entries().unwrap();
    entries.push(Entry::dir("/data", 0o755));
    entries.push(Entry::file(
        "/data/seed.txt",
        0o644,
        "seeded by the image\n",
    ));
    entries.push(Entry::dir("/srv", 0o777));
    ImageBuilder::new("app")
        .layer(entries, "berth fixture: app")
        .config(
            "Env",
            json!([
                fixtures::catalog::PATH_ENV,
                "GREETING=from-image",
                "KEEP=image"
            ]),
        )
        .config("WorkingDir", json!("/srv"))
        .config("User", json!("nobody"))
        .config("Entrypoint", json!(["/bin/sh", "-c"]))
        .config("Cmd", json!(["echo default-cmd"]))
        .config("Volumes", json!({"/data": {}}))
        .config("ExposedPorts", json!({"80/tcp": {}}))
        .config("StopSignal", json!("SIGINT"))
        .build()
}

impl World {
    async fn new() -> World {
        World::with("").await
    }

    /// A world whose berthd has these extra `[containers]` settings.
    async fn with(containers: &str) -> World {
        let world =
            berth_integration::world::World::with(containers, &[(&app_image(), "app:v1")]).await;
        let app = world.reference("app:v1");
        World { world, app }
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[tokio::test]
async fn lifecycle_through_berthctl_and_ctr() {
    let w = World::new().await;
    let id = w
        .ok(&[
            "run", "-d", "--name", "sleeper", &w.busybox, "sleep", "1000",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    // containerd's view of the same container.
    assert!(w.ctr_containers().contains(&id));
    let ps = w.ok(&["ps"]);
    assert!(ps.contains("sleeper") && ps.contains(&id[..12]), "{ps}");
    assert!(ps.contains("Up "), "{ps}");
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert_eq!(w.ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(w.ok(&["ps", "-q", "--no-trunc"]).trim(), id);

    // inspect: a pid that nsenter can use; hostname is the short id.
    let doc = w.inspect("sleeper");
    assert_eq!(doc["Name"], "/sleeper");
    assert_eq!(doc["State"]["Running"], true);
    let pid = doc["State"]["Pid"].as_u64().unwrap();
    assert!(pid > 0);
    let out = std::process::Command::new("nsenter")
        .args(["--target", &pid.to_string(), "-u", "hostname"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), &id[..12]);
    assert_eq!(
        w.ok(&["inspect", "-f", "{{.State.Pid}}", "sleeper"]).trim(),
        pid.to_string()
    );

    // pause / unpause.
    w.ok(&["pause", "sleeper"]);
    assert_eq!(w.status("sleeper"), "paused");
    assert!(w.ok(&["ps"]).contains("(Paused)"));
    w.ok(&["unpause", "sleeper"]);
    assert_eq!(w.status("sleeper"), "running");

    // stop: sleep as pid 1 ignores SIGTERM, so the kill after 1 s ends it: 137.
    let started = Instant::now();
    w.ok(&["stop", "-t", "1", &id[..10]]);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(w.status("sleeper"), "exited");
    assert_eq!(w.inspect("sleeper")["State"]["ExitCode"], 137);
    assert_eq!(w.ok(&["ps", "-q"]).trim(), "");
    assert!(w.ok(&["ps", "-a"]).contains("Exited (137)"));

    // start again, kill with a signal, wait for the code.
    w.ok(&["start", "sleeper"]);
    assert_eq!(w.status("sleeper"), "running");
    let new_pid = w.inspect("sleeper")["State"]["Pid"].as_u64().unwrap();
    assert_ne!(new_pid, pid);
    w.ok(&["kill", "-s", "KILL", "sleeper"]);
    assert_eq!(w.ok(&["wait", "sleeper"]).trim(), "137");

    // restart runs it again.
    w.ok(&["restart", "-t", "1", "sleeper"]);
    assert_eq!(w.status("sleeper"), "running");

    // rename, then rm refuses a running container without -f.
    w.ok(&["rename", "sleeper", "dozer"]);
    assert!(!w.ctl(&["inspect", "sleeper"]).success());
    let out = w.ctl(&["rm", "dozer"]);
    assert_eq!(code(&out), 1, "{out:?}");
    assert!(out.stderr.contains("running"), "{out:?}");
    w.ok(&["rm", "-f", "dozer"]);
    assert_eq!(w.ok(&["ps", "-aq"]).trim(), "");
    assert!(!w.ctr_containers().contains(&id));

    // prune removes stopped containers only.
    let a = w.ok(&["run", "-d", &w.busybox, "true"]).trim().to_string();
    let b = w
        .ok(&["run", "-d", &w.busybox, "sleep", "1000"])
        .trim()
        .to_string();
    w.wait_status(&a, "exited");
    let out = w.ok(&["container", "prune", "-f"]);
    assert!(out.contains(&a) && !out.contains(&b), "{out}");
    assert_eq!(w.ok(&["ps", "-aq", "--no-trunc"]).trim(), b);
    w.ok(&["rm", "-f", &b]);
}

#[tokio::test]
async fn names_prefixes_filters_and_formats() {
    let w = World::new().await;
    let one = w
        .ok(&[
            "create", "--name", "one", "-l", "tier=web", &w.busybox, "true",
        ])
        .trim()
        .to_string();
    let out = w.ctl(&["create", "--name", "one", &w.busybox, "true"]);
    assert_eq!(code(&out), 125, "{out:?}");
    assert!(out.stderr.contains("already in use"), "{out:?}");
    let two = w
        .ok(&["create", "--name", "two", &w.busybox, "true"])
        .trim()
        .to_string();
    // Generated names for unnamed containers.
    let three = w.ok(&["create", &w.busybox, "true"]).trim().to_string();
    let name3 = w.inspect(&three)["Name"].as_str().unwrap().to_string();
    assert!(name3.starts_with('/') && name3.contains('_'), "{name3}");
    // A unique prefix works, an ambiguous one says so.
    assert_eq!(w.inspect(&one[..8])["Id"], one.as_str());
    let common = one
        .chars()
        .zip(two.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let out = w.ctl(&["inspect", &one[..common]]);
    if common > 0 {
        assert!(!out.success(), "{out:?}");
    }
    assert!(!w.ctl(&["inspect", "nosuchthing"]).success());
    // Filters and formats.
    let names = w.ok(&["ps", "-a", "--format", "{{.Names}}", "-f", "label=tier=web"]);
    assert_eq!(names.trim(), "one");
    let names = w.ok(&["ps", "-a", "--format", "{{.Names}}", "-f", "name=tw"]);
    assert_eq!(names.trim(), "two");
    let created = w.ok(&["ps", "-q", "-f", "status=created"]);
    assert_eq!(created.lines().count(), 3, "{created}");
    let anc = w.ok(&["ps", "-aq", "-f", &format!("ancestor={}", w.busybox)]);
    assert_eq!(anc.lines().count(), 3, "{anc}");
    assert_eq!(
        w.ok(&["ps", "-aq", "--last", "1", "--no-trunc"]).trim(),
        three
    );
    assert_eq!(w.ok(&["ps", "-lq", "--no-trunc"]).trim(), three);
    let json = w.ok(&["ps", "-a", "--format", "json"]);
    for line in json.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["ID"].is_string() && v["Status"] == "Created", "{line}");
    }
    w.ok(&["rm", "one", "two", &three]);
}

#[tokio::test]
async fn exit_codes_like_docker() {
    let w = World::new().await;
    let id = w
        .ok(&["run", "-d", &w.busybox, "sh", "-c", "exit 3"])
        .trim()
        .to_string();
    assert_eq!(w.ok(&["wait", &id]).trim(), "3");
    assert!(w.ok(&["ps", "-a"]).contains("Exited (3)"));
    // 127: the command is not found.
    let out = w.ctl(&["run", "-d", &w.busybox, "/no/such/binary"]);
    assert_eq!(code(&out), 127, "{out:?}");
    let out = w.ctl(&["run", "-d", &w.busybox, "nosuchcommand"]);
    assert_eq!(code(&out), 127, "{out:?}");
    // 126: it cannot be executed.
    let out = w.ctl(&["run", "-d", &w.busybox, "/etc/passwd"]);
    assert_eq!(code(&out), 126, "{out:?}");
    // 125: berth itself refuses.
    let out = w.ctl(&["run", "-d", "--pull", "never", "no-such-image:v9", "true"]);
    assert_eq!(code(&out), 125, "{out:?}");
    let out = w.ctl(&["run", "-d", "--cap-add", "BOGUS", &w.busybox, "true"]);
    assert_eq!(code(&out), 125, "{out:?}");
    // A failed start is recorded.
    let failed = w
        .ok(&["ps", "-aq", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let errors: Vec<i64> = failed
        .iter()
        .map(|id| w.inspect(id)["State"]["ExitCode"].as_i64().unwrap())
        .collect();
    assert!(errors.contains(&127) && errors.contains(&126), "{errors:?}");
}

#[tokio::test]
async fn auto_remove_and_logs() {
    let w = World::new().await;
    let id = w
        .ok(&[
            "run",
            "-d",
            "--name",
            "talker",
            &w.busybox,
            "sh",
            "-c",
            "echo one; echo two >&2; echo three; sleep 2; echo four",
        ])
        .trim()
        .to_string();
    // Follow until the end.
    let out = w.ok(&["logs", "-f", "talker"]);
    assert_eq!(out, "one\nthree\nfour\n");
    let out = w.ctl(&["logs", "talker"]);
    assert_eq!(out.stderr, "two\n");
    assert_eq!(w.ok(&["logs", "--tail", "1", "talker"]), "four\n");
    let stamped = w.ok(&["logs", "-t", "--tail", "2", "talker"]);
    for line in stamped.lines() {
        let (t, _) = line.split_once(' ').unwrap();
        assert!(chrono_like(t), "{line}");
    }
    assert_eq!(
        w.ok(&["logs", "--since", "1m", "--tail", "1", "talker"]),
        "four\n"
    );
    assert_eq!(
        w.ok(&["logs", "--until", "2000-01-01T00:00:00Z", "talker"]),
        ""
    );
    w.ok(&["rm", &id]);
    // --rm: gone after it exits, with its log.
    let id = w
        .ok(&["run", "-d", "--rm", &w.busybox, "sh", "-c", "sleep 1"])
        .trim()
        .to_string();
    eventually("the --rm container to go", || {
        !w.ok(&["ps", "-aq", "--no-trunc"]).contains(&id)
    });
    assert!(!w.ctr_containers().contains(&id));
    assert!(!w.daemon.dir().join("logs").join(&w.ns).join(&id).exists());
}

fn chrono_like(t: &str) -> bool {
    t.len() > 20 && t.ends_with('Z') && t.contains('T')
}

#[tokio::test]
async fn image_config_and_flags() {
    let w = World::new().await;
    w.ok(&["pull", "-q", &w.app]);
    // The image's entrypoint, cmd, env, workdir and user.
    let id = w
        .ok(&[
            "run",
            "-d",
            &w.app,
            "echo $GREETING $KEEP; pwd; id -u; id -g",
        ])
        .trim()
        .to_string();
    assert_eq!(w.ok(&["wait", &id]).trim(), "0");
    assert_eq!(
        w.ok(&["logs", &id]),
        "from-image image\n/srv\n65534\n65534\n"
    );
    let doc = w.inspect(&id);
    assert_eq!(doc["Config"]["StopSignal"], "SIGINT");
    assert_eq!(doc["Config"]["WorkingDir"], "/srv");
    assert!(doc["Config"]["ExposedPorts"]["80/tcp"].is_object());
    // An anonymous volume for the image's VOLUME, filled from the image.
    let mounts = doc["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0]["Destination"], "/data");
    assert_eq!(mounts[0]["Type"], "volume");
    let source = mounts[0]["Source"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(Path::new(&source).join("seed.txt")).unwrap(),
        "seeded by the image\n"
    );
    let first = id.clone();
    // Flags override: env, workdir, user, entrypoint, hostname.
    let id = w
        .ok(&[
            "run",
            "-d",
            "-e",
            "GREETING=from-flag",
            "-w",
            "/tmp",
            "-u",
            "0:0",
            "-h",
            "myhost",
            "--entrypoint",
            "/bin/sh",
            &w.app,
            "-c",
            "echo $GREETING $KEEP; pwd; id -u; hostname; cat /etc/hostname",
        ])
        .trim()
        .to_string();
    assert_eq!(w.ok(&["wait", &id]).trim(), "0");
    assert_eq!(
        w.ok(&["logs", &id]),
        "from-flag image\n/tmp\n0\nmyhost\nmyhost\n"
    );
    // A user name from the image's passwd, an unknown one refused at start.
    let id = w
        .ok(&["run", "-d", "-u", "nobody", &w.busybox, "id", "-u"])
        .trim()
        .to_string();
    w.ok(&["wait", &id]);
    assert_eq!(w.ok(&["logs", &id]), "65534\n");
    let out = w.ctl(&["run", "-d", "-u", "ghost", &w.busybox, "true"]);
    assert_eq!(code(&out), 125, "{out:?}");
    assert!(out.stderr.contains("unable to find user ghost"), "{out:?}");
    // rm -v removes the anonymous volume too.
    w.ok(&["rm", "-v", &first]);
    assert!(!Path::new(&source).exists(), "{source}");
}

#[tokio::test]
async fn binds_and_named_volumes() {
    let w = World::new().await;
    w.ok(&["pull", "-q", &w.app]);
    let host = w.scratch.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("hello.txt"), "from the host\n").unwrap();
    let bind = format!("{}:/mnt/host:ro", host.display());
    let id = w
        .ok(&[
            "run",
            "-d",
            "-v",
            &bind,
            &w.busybox,
            "sh",
            "-c",
            "cat /mnt/host/hello.txt; touch /mnt/host/x 2>/dev/null && echo writable || echo read-only",
        ])
        .trim()
        .to_string();
    w.ok(&["wait", &id]);
    assert_eq!(w.ok(&["logs", &id]), "from the host\nread-only\n");
    assert!(!host.join("x").exists());
    // A named volume: created on first use, filled from the image, shared, kept.
    let writer = w
        .ok(&[
            "run",
            "-d",
            "-v",
            "appdata:/data",
            "-u",
            "0",
            &w.app,
            "cat /data/seed.txt; echo written > /data/new.txt",
        ])
        .trim()
        .to_string();
    assert_eq!(w.ok(&["wait", &writer]).trim(), "0");
    assert_eq!(w.ok(&["logs", &writer]), "seeded by the image\n");
    let reader = w
        .ok(&[
            "run",
            "-d",
            "-v",
            "appdata:/vol",
            &w.busybox,
            "cat",
            "/vol/new.txt",
        ])
        .trim()
        .to_string();
    w.ok(&["wait", &reader]);
    assert_eq!(w.ok(&["logs", &reader]), "written\n");
    let data = w.daemon.root().join("volumes/appdata/_data");
    assert!(data.join("seed.txt").is_file());
    w.ok(&["rm", "-v", &writer, &reader]);
    // Named volumes outlive their containers.
    assert!(data.join("new.txt").is_file());
}

#[tokio::test]
async fn resources_in_the_cgroup() {
    let w = World::new().await;
    let id = w
        .ok(&[
            "run",
            "-d",
            "--memory",
            "64m",
            "--pids-limit",
            "32",
            "--cpus",
            "0.5",
            &w.busybox,
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let limit = w.cgroup_file("memory", &id, "memory.limit_in_bytes");
    assert_eq!(
        std::fs::read_to_string(&limit).unwrap().trim(),
        (64u64 << 20).to_string(),
        "{}",
        limit.display()
    );
    let pids = w.cgroup_file("pids", &id, "pids.max");
    assert_eq!(std::fs::read_to_string(&pids).unwrap().trim(), "32");
    let quota = w.cgroup_file("cpu,cpuacct", &id, "cpu.cfs_quota_us");
    if quota.exists() {
        assert_eq!(std::fs::read_to_string(&quota).unwrap().trim(), "50000");
    }
    let doc = w.inspect(&id);
    assert_eq!(doc["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(doc["HostConfig"]["PidsLimit"], 32);
    w.ok(&["rm", "-f", &id]);
    assert!(!limit.exists());
    // Over its memory limit: killed, and inspect says OOMKilled.
    let hog = w
        .ok(&[
            "run",
            "-d",
            "--memory",
            "8m",
            &w.busybox,
            "sh",
            "-c",
            "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
        ])
        .trim()
        .to_string();
    assert_eq!(w.ok(&["wait", &hog]).trim(), "137");
    eventually("OOMKilled", || {
        w.inspect(&hog)["State"]["OOMKilled"] == true
    });
    w.ok(&["rm", &hog]);
}

#[tokio::test]
async fn published_ports_and_links() {
    let w = World::new().await;
    let port = berth_integration::ports::free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let web = w
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &publish,
            &w.busybox,
            "sh",
            "-c",
            "mkdir -p /www && echo hello from web > /www/index.html && httpd -f -p 80 -h /www",
        ])
        .trim()
        .to_string();
    let ps = w.ok(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    let mut body = String::new();
    eventually("the published port to answer", || {
        body = http_get(port).unwrap_or_default();
        body.contains("hello from web")
    });
    let doc = w.inspect("web");
    assert_eq!(
        doc["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    let ip = doc["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with("10."), "{ip}");
    // A link: the alias resolves to web, and the page is reachable through it.
    let client = w
        .ok(&[
            "run",
            "-d",
            "--link",
            "web:www",
            &w.busybox,
            "sh",
            "-c",
            "grep www /etc/hosts; wget -q -O - http://www/",
        ])
        .trim()
        .to_string();
    assert_eq!(w.ok(&["wait", &client]).trim(), "0");
    let logs = w.ok(&["logs", &client]);
    assert!(logs.contains(&ip) && logs.contains("www"), "{logs}");
    assert!(logs.contains("hello from web"), "{logs}");
    w.ok(&["rm", "-f", &web, &client]);
    // The port is free again.
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

fn http_get(port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[tokio::test]
async fn restart_policies_survive_a_berthd_crash() {
    let mut w = World::new().await;
    // on-failure:2 gives up after two restarts.
    let flaky = w
        .ok(&[
            "run",
            "-d",
            "--restart",
            "on-failure:2",
            &w.busybox,
            "sh",
            "-c",
            "exit 4",
        ])
        .trim()
        .to_string();
    eventually("two restarts", || {
        let d = w.inspect(&flaky);
        d["RestartCount"] == 2 && d["State"]["Status"] == "exited"
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(w.inspect(&flaky)["RestartCount"], 2);
    // always: survives berthd being killed, and is restarted after a crash of its own.
    let id = w
        .ok(&[
            "run",
            "-d",
            "--restart",
            "always",
            "--name",
            "keeper",
            &w.busybox,
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let pid = w.inspect("keeper")["State"]["Pid"].as_u64().unwrap();
    w.daemon.kill9().unwrap();
    w.daemon.restart().await.unwrap();
    let doc = w.inspect("keeper");
    assert_eq!(doc["State"]["Status"], "running");
    assert_eq!(doc["State"]["Pid"].as_u64().unwrap(), pid);
    // The container's process dies: berthd restarts it.
    berth_integration::procs::signal(pid as u32, nix::sys::signal::Signal::SIGKILL);
    eventually("keeper to be restarted", || {
        let d = w.inspect("keeper");
        d["State"]["Status"] == "running" && d["State"]["Pid"].as_u64() != Some(pid)
    });
    assert_eq!(w.inspect("keeper")["RestartCount"], 1);
    // It dies while berthd is down: restarted when berthd comes back.
    let pid = w.inspect("keeper")["State"]["Pid"].as_u64().unwrap();
    w.daemon.kill9().unwrap();
    berth_integration::procs::signal(pid as u32, nix::sys::signal::Signal::SIGKILL);
    std::thread::sleep(Duration::from_millis(300));
    w.daemon.restart().await.unwrap();
    eventually("keeper to run again", || {
        let d = w.inspect("keeper");
        d["State"]["Status"] == "running" && d["State"]["Pid"].as_u64() != Some(pid)
    });
    // A manual stop is respected.
    w.ok(&["stop", "-t", "1", "keeper"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(w.status("keeper"), "exited");
    w.ok(&["rm", "-f", &id, &flaky]);
}

/// A berthctl process with piped stdin, its output collected as it comes.
struct Interactive {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    err: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Interactive {
    fn spawn(program: &str, args: &[String]) -> Interactive {
        use std::process::{Command, Stdio};
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let err = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        for (pipe, buf) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                out.clone(),
            ),
            (Box::new(child.stderr.take().unwrap()), err.clone()),
        ] {
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut b = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut b) {
                    if n == 0 {
                        break;
                    }
                    buf.lock().unwrap().extend_from_slice(&b[..n]);
                }
            });
        }
        Interactive {
            stdin: child.stdin.take(),
            child,
            out,
            err,
        }
    }

    fn ctl(w: &World, args: &[&str]) -> Interactive {
        let mut all = vec![
            "--address".to_string(),
            w.daemon.address(),
            "-n".to_string(),
            w.ns.clone(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let bin = berth_integration::daemon::binary("berthctl").unwrap();
        Interactive::spawn(bin.to_str().unwrap(), &all)
    }

    fn write(&mut self, data: &[u8]) {
        use std::io::Write;
        let s = self.stdin.as_mut().unwrap();
        s.write_all(data).unwrap();
        s.flush().unwrap();
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.stdout();
            if out.contains(needle) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}: stdout {out:?}, stderr {:?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the exit; returns the code.
    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "berthctl did not exit: stdout {:?}, stderr {:?}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn run_attached_with_stdin_and_exit_codes() {
    let w = World::new().await;
    let out = w.ctl(&["run", "--rm", &w.busybox, "echo", "hi"]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(out.stdout, "hi\n");
    let out = w.ctl(&[
        "run",
        "--rm",
        &w.busybox,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&out), 3, "{out:?}");
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
    // --rm: gone when run returns.
    assert_eq!(w.ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(w.ctr_containers().trim(), "");
    // 127 and 126 in the foreground too.
    let out = w.ctl(&["run", "--rm", &w.busybox, "nosuchcommand"]);
    assert_eq!(code(&out), 127, "{out:?}");
    let out = w.ctl(&["run", "--rm", &w.busybox, "/etc"]);
    assert_eq!(code(&out), 126, "{out:?}");
    assert_eq!(
        w.ok(&["ps", "-aq"]).trim(),
        "",
        "failed --rm runs are removed"
    );
    // stdin with -i.
    let mut cmd = w.daemon.berthctl().unwrap();
    cmd.args([
        "-n",
        &w.ns,
        "run",
        "--rm",
        "-i",
        &w.busybox,
        "sh",
        "-c",
        "cat; echo done",
    ]);
    let out = berth_integration::procs::run(
        &mut cmd,
        Some(b"through the pipe\n"),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(out.stdout, "through the pipe\ndone\n");
    // A pulled-on-demand image: run pulls what is missing.
    w.ok(&["rmi", &w.busybox]);
    let out = w.ctl(&["run", "--rm", &w.busybox, "echo", "pulled"]);
    assert_eq!(out.stdout, "pulled\n", "{out:?}");
    assert!(out.stderr.contains("Unable to find image"), "{out:?}");
}

#[tokio::test]
async fn signals_are_proxied() {
    let w = World::new().await;
    let mut run = Interactive::ctl(
        &w,
        &[
            "run",
            "--rm",
            &w.busybox,
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    run.wait_for("ready");
    berth_integration::procs::signal(run.pid(), nix::sys::signal::Signal::SIGTERM);
    assert_eq!(run.wait(), 7, "stderr: {}", run.stderr());
    assert!(run.stdout().contains("got TERM"));
}

#[tokio::test]
async fn exec_into_a_running_container() {
    let w = World::new().await;
    let id = w
        .ok(&[
            "run", "-d", "--name", "box", "-e", "BASE=1", &w.busybox, "sleep", "1000",
        ])
        .trim()
        .to_string();
    assert_eq!(w.ok(&["exec", "box", "echo", "hello"]), "hello\n");
    assert_eq!(
        w.ok(&[
            "exec",
            "-e",
            "X=2",
            "-w",
            "/tmp",
            "box",
            "sh",
            "-c",
            "echo $BASE $X; pwd"
        ]),
        "1 2\n/tmp\n"
    );
    assert_eq!(
        w.ok(&["exec", "-u", "nobody", "box", "id", "-u"]),
        "65534\n"
    );
    let out = w.ctl(&["exec", "box", "sh", "-c", "exit 9"]);
    assert_eq!(code(&out), 9, "{out:?}");
    let out = w.ctl(&["exec", "box", "nosuchcommand"]);
    assert_eq!(code(&out), 127, "{out:?}");
    // stdin with -i.
    let mut cmd = w.daemon.berthctl().unwrap();
    cmd.args(["-n", &w.ns, "exec", "-i", "box", "sh", "-c", "tr a-z A-Z"]);
    let out =
        berth_integration::procs::run(&mut cmd, Some(b"shout\n"), Duration::from_secs(60)).unwrap();
    assert_eq!(out.stdout, "SHOUT\n", "{out:?}");
    // -d: runs on its own.
    w.ok(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "echo detached > /tmp/marker",
    ]);
    eventually("the detached exec", || {
        w.ctl(&["exec", "box", "cat", "/tmp/marker"]).stdout == "detached\n"
    });
    // Same pid namespace: the exec sees the init process as pid 1.
    assert!(
        w.ok(&["exec", "box", "ps", "-o", "pid,comm"])
            .contains("1 sleep")
    );
    // Not running: refused.
    w.ok(&["stop", "-t", "0", "box"]);
    let out = w.ctl(&["exec", "box", "true"]);
    assert_ne!(code(&out), 0);
    assert!(out.stderr.contains("not running"), "{out:?}");
    w.ok(&["rm", &id]);
}

#[tokio::test]
async fn two_attachers_and_detach_keys() {
    let w = World::new().await;
    let id = w
        .ok(&[
            "run",
            "-d",
            "-i",
            "--name",
            "echoer",
            &w.busybox,
            "sh",
            "-c",
            "echo started; while read line; do echo got $line; done",
        ])
        .trim()
        .to_string();
    let mut a = Interactive::ctl(&w, &["attach", "echoer"]);
    let b = Interactive::ctl(&w, &["attach", "--no-stdin", "echoer"]);
    // Both are attached once a line sent through a reaches both.
    let mut n = 0;
    eventually("both attachers to see the same output", || {
        n += 1;
        a.write(format!("ping{n}\n").as_bytes());
        std::thread::sleep(Duration::from_millis(200));
        let want = format!("got ping{n}");
        a.stdout().contains(&want) && b.stdout().contains(&want)
    });
    a.write(b"hello\n");
    a.wait_for("got hello");
    b.wait_for("got hello");
    // ctrl-p ctrl-q detaches a; the container runs on and b stays attached.
    a.write(b"\x10\x11");
    assert_eq!(a.wait(), 0, "stderr: {}", a.stderr());
    assert_eq!(w.status("echoer"), "running");
    let mut c = Interactive::ctl(&w, &["attach", "--detach-keys", "ctrl-x", "echoer"]);
    std::thread::sleep(Duration::from_millis(500));
    c.write(b"again\n");
    b.wait_for("got again");
    c.wait_for("got again");
    c.write(b"\x18");
    assert_eq!(c.wait(), 0);
    // The container ends: b ends with its code.
    w.ok(&["kill", "echoer"]);
    let mut b = b;
    assert_eq!(b.wait(), 137, "stderr: {}", b.stderr());
    w.ok(&["rm", &id]);
}

#[tokio::test]
async fn run_it_under_a_terminal() {
    let w = World::new().await;
    let line = format!(
        "{} --address {} -n {} run -it --rm {} sh",
        berth_integration::daemon::binary("berthctl")
            .unwrap()
            .display(),
        w.daemon.address(),
        w.ns,
        w.busybox
    );
    let mut s = Interactive::spawn(
        "script",
        &["-qec".to_string(), line, "/dev/null".to_string()],
    );
    s.write(b"tty; echo answer=$((6*7))\n");
    let out = s.wait_for("answer=42");
    assert!(
        out.contains("/dev/console") || out.contains("/dev/pts"),
        "{out}"
    );
    s.write(b"exit 5\n");
    assert_eq!(s.wait(), 5, "stdout: {} stderr: {}", s.stdout(), s.stderr());
    assert_eq!(w.ok(&["ps", "-aq"]).trim(), "");
}

/// The interface of the host's default route (from `/proc/net/route`), if any.
fn default_route_interface() -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 1 && f[1] == "00000000").then(|| f[0].to_string())
    })
}

#[tokio::test]
async fn network_modes_and_publish_all() {
    let w = World::new().await;
    // Two containers on the default bridge reach each other by IP.
    w.ok(&["run", "-d", "--name", "peer", &w.busybox, "sleep", "300"]);
    let ip_a = w.inspect("peer")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip_a.starts_with("10."), "{ip_a}");
    let out = w.ok(&[
        "run", "--rm", &w.busybox, "ping", "-c", "1", "-W", "10", &ip_a,
    ]);
    assert!(out.contains("1 packets received"), "{out}");
    // --net none: only lo, and it is up.
    let out = w.ok(&[
        "run",
        "--rm",
        "--net",
        "none",
        &w.busybox,
        "sh",
        "-c",
        "ls /sys/class/net; ip -4 addr show lo",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("lo"), "{out}");
    assert!(out.contains("127.0.0.1/8") && out.contains("UP"), "{out}");
    assert!(!out.contains("eth0"), "{out}");
    // --net host: the host's interfaces.
    if let Some(iface) = default_route_interface() {
        let out = w.ok(&[
            "run",
            "--rm",
            "--net",
            "host",
            &w.busybox,
            "ls",
            "/sys/class/net",
        ]);
        assert!(out.split_whitespace().any(|i| i == iface), "{iface}: {out}");
    }
    // --net container:peer shares peer's address.
    let out = w.ok(&[
        "run",
        "--rm",
        "--net",
        "container:peer",
        &w.busybox,
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains(&format!("inet {ip_a}/")), "{out}");
    // -P: every exposed port of the image to a random host port in the range.
    w.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-P",
        "-u",
        "root",
        &w.app,
        "mkdir -p /tmp/www && echo hello from -P > /tmp/www/index.html && httpd -f -p 80 -h /tmp/www",
    ]);
    let doc = w.inspect("web");
    let host_port: u16 = doc["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((32768..=60999).contains(&host_port), "{host_port}");
    let ps = w.ok(&["ps", "-f", "name=web"]);
    assert!(ps.contains(&format!(":{host_port}->80/tcp")), "{ps}");
    eventually("the -P port to answer", || {
        http_get(host_port)
            .unwrap_or_default()
            .contains("hello from -P")
    });
    w.ok(&["rm", "-f", "peer", "web"]);
    eventually("the -P port to be released", || {
        std::net::TcpListener::bind(("0.0.0.0", host_port)).is_ok()
    });
}

/// A field of `/proc/self/status` as a container process sees it.
fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

/// docker's default capability set: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID,
/// SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
const DEFAULT_CAPS: u64 = 0xa804_25fb;
const CAP_NET_RAW: u64 = 1 << 13;
const CAP_SYS_ADMIN: u64 = 1 << 21;

#[tokio::test]
async fn capabilities_and_security_options() {
    let w = World::new().await;
    let status = |flags: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[w.busybox.as_str(), "cat", "/proc/self/status"]);
        w.ok(&args)
    };
    let caps = |s: &str| u64::from_str_radix(&status_field(s, "CapEff"), 16).unwrap();
    // Defaults: docker's 14 capabilities in every set that matters, seccomp filtering.
    let s = status(&[]);
    assert_eq!(caps(&s), DEFAULT_CAPS, "{s}");
    assert_eq!(
        u64::from_str_radix(&status_field(&s, "CapBnd"), 16).unwrap(),
        DEFAULT_CAPS
    );
    assert_eq!(status_field(&s, "Seccomp"), "2");
    assert_eq!(status_field(&s, "NoNewPrivs"), "0");
    // --cap-drop and --cap-add, with or without the CAP_ prefix, any case.
    let s = status(&["--cap-drop", "NET_RAW", "--cap-add", "cap_sys_admin"]);
    assert_eq!(
        caps(&s),
        (DEFAULT_CAPS & !CAP_NET_RAW) | CAP_SYS_ADMIN,
        "{s}"
    );
    let s = status(&["--cap-drop", "ALL", "--cap-add", "CHOWN"]);
    assert_eq!(caps(&s), 1, "{s}");
    // Without NET_RAW, ping cannot open its socket.
    let out = w.ctl(&[
        "run",
        "--rm",
        "--cap-drop",
        "NET_RAW",
        &w.busybox,
        "ping",
        "-c",
        "1",
        "127.0.0.1",
    ]);
    assert_ne!(code(&out), 0, "{out:?}");
    // --privileged: every capability this host has (root here lacks some), no seccomp.
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bounding = u64::from_str_radix(&status_field(&host, "CapBnd"), 16).unwrap();
    let s = status(&["--privileged"]);
    assert_eq!(caps(&s), host_bounding, "{s}");
    assert_eq!(status_field(&s, "Seccomp"), "0");
    // --security-opt.
    let s = status(&["--security-opt", "no-new-privileges"]);
    assert_eq!(status_field(&s, "NoNewPrivs"), "1");
    let s = status(&["--security-opt", "seccomp=unconfined"]);
    assert_eq!(status_field(&s, "Seccomp"), "0");
    let out = w.ctl(&["run", "--rm", "--security-opt", "bogus", &w.busybox, "true"]);
    assert_eq!(code(&out), 125, "{out:?}");
    // By default a container cannot mount; with SYS_ADMIN it can.
    let out = w.ctl(&[
        "run", "--rm", &w.busybox, "mount", "-t", "tmpfs", "t", "/tmp",
    ]);
    assert_ne!(code(&out), 0, "{out:?}");
    let out = w.ok(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        &w.busybox,
        "sh",
        "-c",
        "mount -t tmpfs t /tmp && echo mounted",
    ]);
    assert_eq!(out, "mounted\n");
}

#[tokio::test]
async fn read_only_user_and_sysctls() {
    let w = World::new().await;
    // --read-only: the root is read-only, a --tmpfs and a volume stay writable.
    let out = w.ctl(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "-v",
        "rw-vol:/data",
        &w.busybox,
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo root-writable; touch /scratch/ok /data/ok && echo ok",
    ]);
    assert_eq!(code(&out), 0, "{out:?}");
    assert_eq!(out.stdout, "ok\n", "{out:?}");
    let out = w.ctl(&["run", "--rm", &w.busybox, "sh", "-c", "touch /x && echo ok"]);
    assert_eq!(out.stdout, "ok\n", "{out:?}");
    let doc = w.inspect(w.ok(&["create", "--read-only", &w.busybox]).trim());
    assert_eq!(doc["HostConfig"]["ReadonlyRootfs"], true);
    // --user: numeric ids without a passwd entry, and supplementary groups.
    let out = w.ok(&[
        "run",
        "--rm",
        "--user",
        "1000:1000",
        "--group-add",
        "5",
        &w.busybox,
        "sh",
        "-c",
        "id -u; id -g; id -G",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["1000", "1000"], "{out}");
    assert!(lines[2].split_whitespace().any(|g| g == "5"), "{out}");
    // A non-root user has no effective capabilities.
    let s = w.ok(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        &w.busybox,
        "cat",
        "/proc/self/status",
    ]);
    assert_eq!(status_field(&s, "CapEff"), "0000000000000000");
    // --sysctl: namespaced ones apply in the container only; others are refused.
    let out = w.ok(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=0",
        &w.busybox,
        "cat",
        "/proc/sys/net/ipv4/ip_unprivileged_port_start",
    ]);
    assert_eq!(out.trim(), "0");
    let out = w.ctl(&[
        "run",
        "--rm",
        "--sysctl",
        "vm.swappiness=1",
        &w.busybox,
        "true",
    ]);
    assert_eq!(code(&out), 125, "{out:?}");
}

#[tokio::test]
async fn hosts_dns_and_port_conflicts() {
    let w = World::new().await;
    // --hostname, --add-host, --dns, --dns-search and --dns-option in the generated files.
    let out = w.ok(&[
        "run",
        "--rm",
        "-h",
        "box1",
        "--add-host",
        "db.test:10.9.8.7",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "example.test",
        "--dns-option",
        "ndots:2",
        &w.busybox,
        "sh",
        "-c",
        "hostname; cat /etc/hostname; cat /etc/hosts; cat /etc/resolv.conf",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("box1"), "{out}");
    assert_eq!(lines.next(), Some("box1"), "{out}");
    let has = |ws: &[&str]| {
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ws)
    };
    assert!(has(&["10.9.8.7", "db.test"]), "{out}");
    assert!(out.lines().any(|l| l.starts_with("127.0.0.1")), "{out}");
    assert!(has(&["nameserver", "10.0.0.53"]), "{out}");
    assert!(has(&["search", "example.test"]), "{out}");
    assert!(has(&["options", "ndots:2"]), "{out}");
    // The container's own address names it in /etc/hosts.
    let out = w.ok(&["run", "--rm", "-h", "box2", &w.busybox, "cat", "/etc/hosts"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("10.") && l.split_whitespace().any(|n| n == "box2")),
        "{out}"
    );
    // Without --dns, no loopback resolver of the host is copied in.
    let out = w.ok(&["run", "--rm", &w.busybox, "cat", "/etc/resolv.conf"]);
    assert!(
        !out.lines()
            .any(|l| l.starts_with("nameserver 127.") || l.starts_with("nameserver ::1")),
        "{out}"
    );
    // --expose is recorded and -P publishes it; -p CPORT picks a random host port.
    let id = w
        .ok(&[
            "create", "--expose", "7000", "-P", "-p", "9000", &w.busybox, "sleep", "300",
        ])
        .trim()
        .to_string();
    w.ok(&["start", &id]);
    let doc = w.inspect(&id);
    assert!(
        doc["Config"]["ExposedPorts"].get("7000/tcp").is_some(),
        "{doc}"
    );
    for port in ["7000/tcp", "9000/tcp"] {
        assert!(
            doc["NetworkSettings"]["Ports"][port][0]["HostPort"]
                .as_str()
                .is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0)),
            "{port}: {doc}"
        );
    }
    w.ok(&["rm", "-f", &id]);
    // A host port in use is a clear error at run, and nothing is left running.
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let publish = format!("127.0.0.1:{port}:80");
    let out = w.ctl(&[
        "run", "-d", "--name", "clash", "-p", &publish, &w.busybox, "sleep", "300",
    ]);
    assert_eq!(code(&out), 125, "{out:?}");
    assert!(out.stderr.contains("already in use"), "{out:?}");
    assert_ne!(w.status("clash"), "running");
    drop(listener);
    // Once the port is free the same container starts.
    w.ok(&["start", "clash"]);
    assert_eq!(w.status("clash"), "running");
    w.ok(&["rm", "-f", "clash"]);
}

#[tokio::test]
async fn userns_remap() {
    // A host range no other test uses: ids 0..65536 inside are HOST.. outside.
    let host: u32 = 1_000_000 + (std::process::id() % 1000) * 65_536;
    let w = World::with(&format!("userns_remap = \"{host}:65536\"")).await;
    // Root inside, an unprivileged id outside; the image's files are owned by root
    // inside and root can write to them.
    let script = "id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox; \
                  touch /made && stat -c %u /made; echo x > /etc/hostname.new && echo wrote";
    let out = w.ctl(&["run", "--rm", &w.busybox, "sh", "-c", script]);
    assert_eq!(code(&out), 0, "{out:?}\n{}", tail(&w.daemon.log()));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "0", "{out:?}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", host.to_string().as_str(), "65536"],
        "{out:?}"
    );
    assert_eq!(lines[2..], ["0", "0", "wrote"], "{out:?}");
    // The process on the host runs as the mapped id; exec joins the same namespace.
    let id = w
        .ok(&["run", "-d", &w.busybox, "sleep", "300"])
        .trim()
        .to_string();
    let pid = w.inspect(&id)["State"]["Pid"].as_u64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(
        status_field(&status, "Uid").split_whitespace().next(),
        Some(host.to_string().as_str()),
        "{status}"
    );
    assert_eq!(w.ok(&["exec", &id, "id", "-u"]).trim(), "0");
    // A second container of the same image reuses the shifted root; an image volume
    // is seeded with owners root inside.
    let out = w.ok(&[
        "run",
        "--rm",
        "-u",
        "root",
        &w.app,
        "stat -c %u /data/seed.txt; id -u",
    ]);
    assert_eq!(out, "0\n0\n", "{out}");
    // A new named volume is given to the container's root.
    let out = w.ok(&[
        "run",
        "--rm",
        "-v",
        "remapped:/vol",
        &w.busybox,
        "sh",
        "-c",
        "touch /vol/f && stat -c %u /vol /vol/f",
    ]);
    assert_eq!(out, "0\n0\n", "{out}");
    // What a user namespace cannot give is refused clearly.
    let out = w.ctl(&["run", "--rm", "--privileged", &w.busybox, "true"]);
    assert_eq!(code(&out), 125, "{out:?}");
    assert!(out.stderr.contains("user namespaces"), "{out:?}");
    let out = w.ctl(&["run", "--rm", "--net", "host", &w.busybox, "true"]);
    assert_eq!(code(&out), 125, "{out:?}");
    // --userns=host opts out: the host's user namespace, the image's own files, and
    // what needs the host's namespace is allowed again.
    let out = w.ok(&[
        "run",
        "--rm",
        "--userns",
        "host",
        "--privileged",
        &w.busybox,
        "sh",
        "-c",
        "cat /proc/self/uid_map; stat -c %u /bin/busybox",
    ]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines, [vec!["0", "0", "4294967295"], vec!["0"]], "{out}");
    let out = w.ctl(&["run", "--rm", "--userns", "private", &w.busybox, "true"]);
    assert_eq!(code(&out), 125, "{out:?}");
    assert!(out.stderr.contains("--userns=private"), "{out:?}");
    w.ok(&["rm", "-f", &id]);
}

#[tokio::test]
async fn env_file_and_sig_proxy_off() {
    let w = World::new().await;
    // --env-file: comments and blank lines skipped; -e given later wins.
    let file = w.scratch.path().join("vars.env");
    std::fs::write(&file, "# settings\n\nFROM_FILE=yes\nBOTH=file\n").unwrap();
    let out = w.ok(&[
        "run",
        "--rm",
        "--env-file",
        file.to_str().unwrap(),
        "-e",
        "BOTH=flag",
        &w.busybox,
        "sh",
        "-c",
        "echo $FROM_FILE $BOTH",
    ]);
    assert_eq!(out, "yes flag\n");
    // --sig-proxy=false: a signal to berthctl is not forwarded; the container runs on.
    let mut run = Interactive::ctl(
        &w,
        &[
            "run",
            "--name",
            "unproxied",
            "--sig-proxy=false",
            &w.busybox,
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    run.wait_for("ready");
    berth_integration::procs::signal(run.pid(), nix::sys::signal::Signal::SIGTERM);
    run.wait();
    assert!(!run.stdout().contains("got TERM"), "{}", run.stdout());
    assert_eq!(w.status("unproxied"), "running");
    w.ok(&["kill", "unproxied"]);
    assert_eq!(w.ok(&["wait", "unproxied"]).trim(), "137");
    let logs = w.ok(&["logs", "unproxied"]);
    assert!(!logs.contains("got TERM"), "{logs}");
    w.ok(&["rm", "unproxied"]);
}

#[tokio::test]
async fn a_default_container_stays_inside() {
    let w = World::new().await;
    let host_name = nix::unistd::gethostname().unwrap();
    let script = "mount -t tmpfs t /tmp 2>/dev/null && echo MOUNTED; \
                  date -s \"$(date +'%Y-%m-%d %H:%M:%S')\" 2>&1 >/dev/null | grep -q \"can't set\" && echo TIME-REFUSED; \
                  hostname changed-inside 2>/dev/null && echo HOSTNAME-SET; \
                  ps -o pid | tail -n +2 | wc -l; \
                  echo x > /proc/sys/kernel/hostname 2>/dev/null && echo SYSCTL-WRITTEN; \
                  echo done";
    let out = w.ok(&["run", "--rm", &w.busybox, "sh", "-c", script]);
    assert!(!out.contains("MOUNTED"), "{out}");
    assert!(!out.contains("HOSTNAME-SET"), "{out}");
    assert!(!out.contains("SYSCTL-WRITTEN"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    // The clock (set to now, so that a regression does no harm) and the host name
    // stay as they are.
    assert_eq!(lines[0], "TIME-REFUSED", "{out}");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);
    // Only its own processes: sh, ps, tail and wc at most.
    let procs: usize = lines[1].trim().parse().unwrap();
    assert!(procs <= 4, "{out}");
    assert_eq!(lines.last(), Some(&"done"), "{out}");
    assert!(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            > 1_700_000_000
    );
    // Its own UTS namespace: --hostname is its name, not the host's.
    let out = w.ok(&["run", "--rm", "-h", "inside", &w.busybox, "hostname"]);
    assert_eq!(out, "inside\n");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);
}
