//! Running containers, end to end with the real ctr: `ctr run` (foreground, detached,
//! with stdin, under a terminal), `ctr tasks ...`, `ctr containers ...`, resource
//! limits, berthd crashes with containers running, and cleanliness after many runs.

use std::time::{Duration, Instant};

use berth_integration::{Ctr, Daemon, Registry, fixtures, procs};

/// A daemon with the busybox fixture pulled into a fresh namespace.
struct Setup {
    _registry: Registry,
    daemon: Daemon,
    ctr: Ctr,
    image: String,
}

async fn setup() -> Setup {
    let registry = Registry::start().unwrap();
    registry.push(fixtures::busybox(), "busybox:v1").unwrap();
    let image = registry.reference("busybox:v1");
    let daemon = Daemon::start().await.unwrap();
    let ctr = daemon
        .ctr(&daemon.namespace())
        .with_timeout(Duration::from_secs(60));
    ctr.ok_async(["images", "pull", "--plain-http", &image])
        .await;
    Setup {
        _registry: registry,
        daemon,
        ctr,
        image,
    }
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn ctr_run_rm_prints_and_exits_with_the_code() {
    let s = setup().await;
    let out = s
        .ctr
        .ok_async(["run", "--rm", &s.image, "c1", "echo", "hi"])
        .await;
    assert_eq!(out, "hi\n");
    let out = s
        .ctr
        .run_async(["run", "--rm", &s.image, "c2", "sh", "-c", "exit 3"])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // Killed by a signal: 128 + 9, and stderr arrives separately.
    let mut run = s
        .ctr
        .spawn([
            "run",
            "--rm",
            &s.image,
            "c3",
            "sh",
            "-c",
            "echo err >&2; echo up; sleep 1000",
        ])
        .unwrap();
    run.wait_for("up", Duration::from_secs(20)).unwrap();
    s.ctr
        .ok_async(["tasks", "kill", "-s", "SIGKILL", "c3"])
        .await;
    let out = run.wait(Duration::from_secs(20)).unwrap();
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    assert_eq!(out.stderr, "err\n", "{out:?}");
    // --rm left nothing behind.
    assert_eq!(s.ctr.ok_async(["containers", "ls", "-q"]).await, "");
    assert_eq!(s.ctr.ok_async(["tasks", "ls", "-q"]).await, "");
}

#[tokio::test]
async fn ctr_run_pipes_stdin_and_isolates() {
    let s = setup().await;
    let c = s.ctr.clone();
    let image = s.image.clone();
    let out = tokio::task::spawn_blocking(move || {
        c.run_with_stdin(
            ["run", "--rm", &image, "cat1", "cat"],
            b"through the pipe\n",
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, "through the pipe\n");
    // Own pid namespace and hostname.
    let ps = s
        .ctr
        .ok_async(["run", "--rm", &s.image, "ps1", "ps", "-o", "pid,comm"])
        .await;
    let pids: Vec<&str> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(pids, ["1"], "{ps}");
    // Own UTS, IPC and mount namespaces (ctr's spec sets no hostname: it is inherited).
    let inside = s
        .ctr
        .ok_async([
            "run",
            "--rm",
            &s.image,
            "named",
            "sh",
            "-c",
            "for n in uts ipc mnt; do busybox readlink /proc/self/ns/$n; done",
        ])
        .await;
    for (line, ns) in inside.lines().zip(["uts", "ipc", "mnt"]) {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert_ne!(
            line,
            host.to_string_lossy(),
            "{ns} namespace shared with the host"
        );
    }
}

#[tokio::test]
async fn ctr_detached_task_verbs() {
    let s = setup().await;
    let ctr = &s.ctr;
    ctr.ok_async(["run", "-d", &s.image, "d1", "sleep", "1000"])
        .await;
    let ls = ctr.ok_async(["tasks", "ls"]).await;
    let line = ls
        .lines()
        .find(|l| l.starts_with("d1"))
        .unwrap_or_else(|| panic!("{ls}"));
    assert!(line.contains("RUNNING"), "{line}");

    let ps = ctr.ok_async(["tasks", "ps", "d1"]).await;
    assert_eq!(ps.lines().count(), 2, "header and sleep: {ps}");

    let out = ctr
        .ok_async([
            "tasks",
            "exec",
            "--exec-id",
            "e1",
            "d1",
            "sh",
            "-c",
            "echo in-exec; hostname",
        ])
        .await;
    assert!(out.starts_with("in-exec\n"), "{out}");
    let code = ctr
        .run_async([
            "tasks",
            "exec",
            "--exec-id",
            "e2",
            "d1",
            "sh",
            "-c",
            "exit 7",
        ])
        .await
        .unwrap();
    assert_eq!(code.status.code(), Some(7), "{code:?}");

    ctr.ok_async(["tasks", "pause", "d1"]).await;
    assert!(ctr.ok_async(["tasks", "ls"]).await.contains("PAUSED"));
    ctr.ok_async(["tasks", "resume", "d1"]).await;
    assert!(ctr.ok_async(["tasks", "ls"]).await.contains("RUNNING"));

    let metrics = ctr.ok_async(["tasks", "metrics", "d1"]).await;
    assert!(
        metrics.contains("memory") || metrics.contains("MEMORY") || metrics.contains("pids"),
        "{metrics}"
    );

    let info = ctr.ok_async(["containers", "info", "d1"]).await;
    assert!(
        info.contains("\"Runtime\"") && info.contains("sleep"),
        "{info}"
    );
    ctr.ok_async(["containers", "label", "d1", "team=blue"])
        .await;
    assert!(ctr.ok_async(["containers", "ls"]).await.contains("d1"));
    assert!(
        ctr.ok_async(["containers", "info", "d1"])
            .await
            .contains("team")
    );

    // SIGKILL the task, wait for it to stop, then delete everything.
    ctr.ok_async(["tasks", "kill", "-s", "SIGKILL", "d1"]).await;
    eventually("d1 to stop", async || {
        ctr.ok_async(["tasks", "ls"]).await.contains("STOPPED")
    })
    .await;
    ctr.ok_async(["tasks", "delete", "d1"]).await;
    ctr.ok_async(["containers", "rm", "d1"]).await;
    assert_eq!(ctr.ok_async(["containers", "ls", "-q"]).await, "");
    let missing = ctr.run_async(["tasks", "delete", "d1"]).await.unwrap();
    assert!(!missing.status.success(), "{missing:?}");
}

#[tokio::test]
async fn ctr_containers_create_then_tasks_start() {
    let s = setup().await;
    s.ctr
        .ok_async(["containers", "create", &s.image, "cs1", "echo", "started"])
        .await;
    let out = s.ctr.ok_async(["tasks", "start", "cs1"]).await;
    assert_eq!(out, "started\n");
    s.ctr.ok_async(["containers", "rm", "cs1"]).await;
}

#[tokio::test]
async fn memory_limit_kills_with_an_oom_event() {
    let s = setup().await;
    let mut events = s.ctr.spawn(["events"]).unwrap();
    let out = s
        .ctr
        .run_async([
            "run",
            "--rm",
            "--memory-limit",
            "16777216",
            &s.image,
            "oom1",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=64M",
            "count=1",
        ])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    events
        .wait_for("/tasks/oom", Duration::from_secs(10))
        .unwrap();
}

#[tokio::test]
async fn containers_survive_a_berthd_crash() {
    let mut s = setup().await;
    let ctr = s.ctr.clone();
    ctr.ok_async([
        "run",
        "-d",
        &s.image,
        "k1",
        "sh",
        "-c",
        "echo before; sleep 1000",
    ])
    .await;
    let pid_before = ctr.ok_async(["tasks", "ls"]).await;
    s.daemon.kill9().unwrap();
    s.daemon.restart().await.unwrap();
    let ls = ctr.ok_async(["tasks", "ls"]).await;
    assert_eq!(ls, pid_before, "same task, same pid, still running");
    let out = ctr
        .ok_async(["tasks", "exec", "--exec-id", "after", "k1", "echo", "alive"])
        .await;
    assert_eq!(out, "alive\n");
    ctr.ok_async(["tasks", "kill", "-s", "SIGKILL", "k1"]).await;
    eventually("k1 to stop", async || {
        ctr.ok_async(["tasks", "ls"]).await.contains("STOPPED")
    })
    .await;
    ctr.ok_async(["tasks", "delete", "k1"]).await;
    ctr.ok_async(["containers", "rm", "k1"]).await;
}

#[tokio::test]
async fn a_dead_shim_is_noticed_and_cleaned_up() {
    let s = setup().await;
    let ctr = &s.ctr;
    ctr.ok_async(["run", "-d", &s.image, "doomed", "sleep", "1000"])
        .await;
    let shims = procs::processes_under(s.daemon.dir());
    let shim = shims
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .map(|c| c.contains("berth-shim"))
                .unwrap_or(false)
        })
        .expect("the shim runs");
    procs::signal(shim, nix::sys::signal::Signal::SIGKILL);
    eventually("the task to be stopped", async || {
        ctr.ok_async(["tasks", "ls"]).await.contains("STOPPED")
    })
    .await;
    let out = ctr.run_async(["tasks", "delete", "doomed"]).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    ctr.ok_async(["containers", "rm", "doomed"]).await;
    assert!(procs::mounts_under(&s.daemon.state().join("tasks")).is_empty());
    // The delete waited for the dead shim's cleanup: the container's cgroup is gone.
    let cgroup = std::path::Path::new("/sys/fs/cgroup/pids")
        .join(ctr.namespace())
        .join("doomed");
    assert!(!cgroup.exists(), "{} is left", cgroup.display());
}

#[tokio::test]
async fn many_runs_leave_nothing_behind() {
    let s = setup().await;
    for i in 0..100 {
        let id = format!("loop{i}");
        let out = s.ctr.ok_async(["run", "--rm", &s.image, &id, "true"]).await;
        assert_eq!(out, "");
    }
    assert!(
        procs::mounts_under(s.daemon.dir()).is_empty(),
        "{:?}",
        procs::mounts_under(s.daemon.dir())
    );
    let leftovers: Vec<u32> = procs::processes_under(s.daemon.dir())
        .into_iter()
        .filter(|p| Some(*p) != s.daemon.pid())
        .collect();
    assert!(leftovers.is_empty(), "processes left: {leftovers:?}");
    let ns = s.ctr.namespace().to_string();
    for controller in ["memory", "pids", "cpu,cpuacct", "freezer"] {
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&ns);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let left: Vec<_> = entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name())
                .collect();
            assert!(
                left.is_empty(),
                "cgroups left in {}: {left:?}",
                dir.display()
            );
        }
    }
    let tasks_dir = s.daemon.state().join("tasks");
    let bundles = std::fs::read_dir(&tasks_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(bundles, 0, "bundles left in {}", tasks_dir.display());
}

#[tokio::test]
async fn ctr_run_t_gets_a_terminal() {
    let s = setup().await;
    // ctr needs a terminal of its own for -t: `script` gives it one.
    let ctr = s.ctr.command([
        "run",
        "-t",
        "--rm",
        &s.image,
        "tty1",
        "sh",
        "-c",
        "tty; echo done",
    ]);
    let line = berth_integration::procs::shell_line(&ctr);
    let out = procs::run(
        std::process::Command::new("script").args(["-qec", &line, "/dev/null"]),
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("/dev/console") || out.stdout.contains("/dev/pts/"),
        "{out:?}"
    );
    assert!(out.stdout.contains("done"), "{out:?}");
}

#[tokio::test]
async fn ctr_tasks_attach_reopens_the_stdio() {
    let s = setup().await;
    let ctr = &s.ctr;
    ctr.ok_async([
        "run",
        "-d",
        &s.image,
        "att1",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.1; done",
    ])
    .await;
    let mut attach = ctr.spawn(["tasks", "attach", "att1"]).unwrap();
    attach.wait_for("tick", Duration::from_secs(20)).unwrap();
    ctr.ok_async(["tasks", "kill", "-s", "SIGKILL", "att1"])
        .await;
    let out = attach.wait(Duration::from_secs(20)).unwrap();
    assert!(out.stdout.contains("tick"), "{out:?}");
    ctr.ok_async(["containers", "rm", "att1"]).await;
}

#[tokio::test]
async fn stdin_eof_after_start_reaches_the_container() {
    let s = setup().await;
    // ctr sends CloseIO when its stdin ends after the task exists.
    let line = berth_integration::procs::shell_line(
        &s.ctr.command(["run", "--rm", &s.image, "late", "cat"]),
    );
    let out = procs::run(
        std::process::Command::new("sh")
            .args(["-c", &format!("(sleep 1; echo late-line) | {line}")]),
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, "late-line\n");
}
