//! End-to-end tests of berth-shim: real `berth-shim start`, real containers from a
//! busybox rootfs, driven with berth-api's async client. Needs root and cgroups.

mod common;

use std::time::Duration;

use berth_api::berth::shim::v1 as pb;
use berth_api::shim::frame::{Frame, Method};
use common::{Fixture, collect};
use prost::Message;
use serde_json::json;
use tokio::io::AsyncWriteExt;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

async fn run_to_exit(f: &mut Fixture, args: &[&str]) -> (u32, String, String) {
    f.write_spec(args, |_| {});
    let c = f.start_shim().await;
    let out = f.fifo("out");
    let err = f.fifo("err");
    let mut req = f.create_request();
    req.stdout = out.display().to_string();
    req.stderr = err.display().to_string();
    c.create(req).await.unwrap();
    let out_text = collect(&out);
    let err_text = collect(&err);
    let waiter = {
        let c = c.clone();
        tokio::spawn(async move { c.wait("").await })
    };
    c.start("").await.unwrap();
    let status = waiter.await.unwrap().unwrap().exit_status;
    let state = c.state("").await.unwrap();
    assert_eq!(state.status, pb::Status::Stopped as i32);
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await, "shim did not exit after delete");
    f.assert_clean();
    (status, out_text.await.unwrap(), err_text.await.unwrap())
}

#[tokio::test]
async fn echo_hi() {
    need_root!();
    let mut f = Fixture::new("echo");
    let (status, out, _) = run_to_exit(&mut f, &["echo", "hi"]).await;
    assert_eq!(status, 0);
    assert_eq!(out, "hi\n");
}

#[tokio::test]
async fn exit_code_is_reported() {
    need_root!();
    let mut f = Fixture::new("exit3");
    let (status, _, _) = run_to_exit(&mut f, &["sh", "-c", "exit 3"]).await;
    assert_eq!(status, 3);
}

#[tokio::test]
async fn missing_executable_fails_create() {
    need_root!();
    let mut f = Fixture::new("noexe");
    f.write_spec(&["no-such-program"], |_| {});
    let c = f.start_shim().await;
    let err = c.create(f.create_request()).await.unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    c.shutdown(false).await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

#[tokio::test]
async fn killed_process_is_128_plus_signal_and_events_flow() {
    need_root!();
    let mut f = Fixture::new("kill");
    f.write_spec(&["sleep", "100"], |_| {});
    let c = f.start_shim().await;
    let mut events = c.subscribe().await.unwrap();
    let created = c.create(f.create_request()).await.unwrap();
    let started = c.start("").await.unwrap();
    assert_eq!(created.pid, started.pid);
    let st = c.state("").await.unwrap();
    assert_eq!(st.status, pb::Status::Running as i32);
    // A second Wait on another connection, answered out of order with respect to Kill.
    let other = f.connect().await;
    let w = tokio::spawn(async move { other.wait("").await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.kill("", 9, false).await.unwrap();
    assert_eq!(w.await.unwrap().unwrap().exit_status, 137);
    assert_eq!(c.wait("").await.unwrap().exit_status, 137);
    let mut saw_start = false;
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        match ev.kind.unwrap() {
            pb::event::Kind::Started(s) => saw_start = s.pid == started.pid,
            pb::event::Kind::Exited(e) => {
                assert_eq!(e.exit_status, 137);
                assert_eq!(e.pid, started.pid);
                break;
            }
            _ => {}
        }
    }
    assert!(saw_start);
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

#[tokio::test]
async fn stdin_reaches_cat() {
    need_root!();
    let mut f = Fixture::new("cat");
    f.write_spec(&["cat"], |_| {});
    let c = f.start_shim().await;
    let inp = f.fifo("in");
    let out = f.fifo("out");
    let mut req = f.create_request();
    req.stdin = inp.display().to_string();
    req.stdout = out.display().to_string();
    c.create(req).await.unwrap();
    let text = collect(&out);
    c.start("").await.unwrap();
    let mut tx = tokio::net::unix::pipe::OpenOptions::new()
        .open_sender(&inp)
        .unwrap();
    tx.write_all(b"hello through stdin\n").await.unwrap();
    drop(tx);
    let status = tokio::time::timeout(Duration::from_secs(10), c.wait(""))
        .await
        .expect("cat did not see EOF")
        .unwrap();
    assert_eq!(status.exit_status, 0);
    assert_eq!(text.await.unwrap(), "hello through stdin\n");
    c.delete("").await.unwrap();
}

#[tokio::test]
async fn close_io_ends_stdin() {
    need_root!();
    let mut f = Fixture::new("closeio");
    f.write_spec(&["cat"], |_| {});
    let c = f.start_shim().await;
    let inp = f.fifo("in");
    let out = f.fifo("out");
    let mut req = f.create_request();
    req.stdin = inp.display().to_string();
    req.stdout = out.display().to_string();
    c.create(req).await.unwrap();
    let text = collect(&out);
    c.start("").await.unwrap();
    // The writer stays open (as ctr's does); CloseIO ends the stream.
    let mut tx = tokio::net::unix::pipe::OpenOptions::new()
        .open_sender(&inp)
        .unwrap();
    tx.write_all(b"x\n").await.unwrap();
    c.close_io("").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), c.wait(""))
        .await
        .expect("cat did not see EOF after CloseIO")
        .unwrap();
    assert_eq!(status.exit_status, 0);
    assert_eq!(text.await.unwrap(), "x\n");
    drop(tx);
    c.delete("").await.unwrap();
}

#[tokio::test]
async fn exec_into_running_container() {
    need_root!();
    let mut f = Fixture::new("exec");
    f.write_spec(&["sleep", "100"], |_| {});
    let c = f.start_shim().await;
    c.create(f.create_request()).await.unwrap();
    c.start("").await.unwrap();
    let out = f.fifo("exec-out");
    let process = json!({
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", "echo from-exec $$; hostname; ls /proc/self/fd"],
        "env": ["PATH=/bin"],
        "cwd": "/tmp"
    });
    c.exec(pb::ExecRequest {
        exec_id: "e1".into(),
        process: serde_json::to_vec(&process).unwrap(),
        stdout: out.display().to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dup = c
        .exec(pb::ExecRequest {
            exec_id: "e1".into(),
            process: serde_json::to_vec(&process).unwrap(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(dup.grpc_code(), tonic::Code::AlreadyExists);
    let text = collect(&out);
    let st = c.state("e1").await.unwrap();
    assert_eq!(st.status, pb::Status::Created as i32);
    let pid = c.start("e1").await.unwrap().pid;
    assert!(pid > 0);
    assert_eq!(c.wait("e1").await.unwrap().exit_status, 0);
    let text = text.await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("from-exec "), "{text}");
    let inner_pid: u32 = lines[0]["from-exec ".len()..].parse().unwrap();
    assert!(
        inner_pid > 1,
        "exec'd process must be in the container's pid namespace"
    );
    assert!(
        inner_pid < 100,
        "pid {inner_pid} is not from the container's pid namespace"
    );
    assert_eq!(lines[1], "berth-box");
    // No host descriptor leaked: 0, 1, 2 and ls's own directory.
    assert_eq!(&lines[2..], ["0", "1", "2", "3"], "{text}");
    let d = c.delete("e1").await.unwrap();
    assert_eq!(d.exit_status, 0);
    assert!(c.state("e1").await.unwrap_err().is_not_found());
    c.kill("", 9, false).await.unwrap();
    c.wait("").await.unwrap();
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

#[tokio::test]
async fn pause_and_resume() {
    need_root!();
    let mut f = Fixture::new("pause");
    f.write_spec(&["sleep", "100"], |_| {});
    let c = f.start_shim().await;
    c.create(f.create_request()).await.unwrap();
    c.start("").await.unwrap();
    c.pause().await.unwrap();
    assert_eq!(c.state("").await.unwrap().status, pb::Status::Paused as i32);
    let freezer = common::cgroup_roots()
        .into_iter()
        .find(|r| r.ends_with("freezer"))
        .map(|r| {
            r.join(f.cgroup.trim_start_matches('/'))
                .join("freezer.state")
        });
    if let Some(path) = &freezer {
        let s = std::fs::read_to_string(path).unwrap();
        assert!(s.starts_with("FROZEN") || s.starts_with("FREEZING"), "{s}");
    }
    c.resume().await.unwrap();
    assert_eq!(
        c.state("").await.unwrap().status,
        pb::Status::Running as i32
    );
    c.kill("", 9, true).await.unwrap();
    assert_eq!(c.wait("").await.unwrap().exit_status, 137);
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

#[tokio::test]
async fn hostname_and_pid_namespace_are_isolated() {
    need_root!();
    let mut f = Fixture::new("iso");
    let (status, out, err) = run_to_exit(
        &mut f,
        &[
            "sh",
            "-c",
            "hostname; echo $$; ls /proc | grep -c '^[0-9]'; ls /dev",
        ],
    )
    .await;
    assert_eq!(status, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "berth-box");
    assert_eq!(lines[1], "1");
    let visible: u32 = lines[2].parse().unwrap();
    assert!(visible <= 3, "container sees {visible} processes");
    for dev in ["null", "zero", "urandom", "tty", "ptmx", "pts", "shm", "fd"] {
        assert!(lines[3..].contains(&dev), "/dev/{dev} missing: {out}");
    }
}

#[tokio::test]
async fn memory_limit_oom_kills_and_reports() {
    need_root!();
    let mut f = Fixture::new("oom");
    f.write_spec(
        &["sh", "-c", "x=0123456789; while true; do x=$x$x; done"],
        |s| {
            s["linux"]["resources"]["memory"] = json!({"limit": 16 * 1024 * 1024});
        },
    );
    let c = f.start_shim().await;
    let mut events = c.subscribe().await.unwrap();
    c.create(f.create_request()).await.unwrap();
    c.start("").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), c.wait(""))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.exit_status, 137);
    let mut oom = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        if matches!(ev.kind, Some(pb::event::Kind::Oom(_))) {
            oom = true;
            break;
        }
    }
    assert!(oom, "no oom event");
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

#[tokio::test]
async fn pids_limit_is_enforced() {
    need_root!();
    let mut f = Fixture::new("pids");
    f.write_spec(
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done; wait",
        ],
        |s| {
            s["linux"]["resources"]["pids"] = json!({"limit": 4});
        },
    );
    let c = f.start_shim().await;
    let err = f.fifo("err");
    let mut req = f.create_request();
    req.stderr = err.display().to_string();
    c.create(req).await.unwrap();
    let text = collect(&err);
    c.start("").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pids = c.pids().await.unwrap();
    assert!(
        pids.len() <= 4,
        "{} processes despite pids limit 4",
        pids.len()
    );
    c.kill("", 9, true).await.unwrap();
    c.wait("").await.unwrap();
    assert!(text.await.unwrap().contains("fork"));
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

#[tokio::test]
async fn client_gone_then_reconnect() {
    need_root!();
    let mut f = Fixture::new("reconnect");
    f.write_spec(&["sleep", "100"], |_| {});
    let c = f.start_shim().await;
    c.create(f.create_request()).await.unwrap();
    let pid = c.start("").await.unwrap().pid;
    // A client dies in the middle of calls (as after kill -9: the kernel closes its
    // socket): a Wait and a Subscribe pending, a request half written.
    {
        let mut raw = std::os::unix::net::UnixStream::connect(&f.socket).unwrap();
        use std::io::Write;
        raw.write_all(&Frame::request(1, Method::Subscribe, Vec::new()).to_bytes())
            .unwrap();
        let wait = pb::WaitRequest {
            exec_id: String::new(),
        }
        .encode_to_vec();
        raw.write_all(&Frame::request(2, Method::Wait, wait).to_bytes())
            .unwrap();
        let half = Frame::request(3, Method::State, Vec::new()).to_bytes();
        raw.write_all(&half[..5]).unwrap();
    }
    // And an async client with a call in flight is dropped.
    let waiting = tokio::spawn(async move { c.wait("").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    waiting.abort();
    let c = f.connect().await;
    let info = c.connect_info().await.unwrap();
    assert_eq!(info.task_pid, pid);
    assert_eq!(Some(info.shim_pid as i32), f.shim_pid);
    assert_eq!(
        c.state("").await.unwrap().status,
        pb::Status::Running as i32
    );
    c.kill("", 9, false).await.unwrap();
    assert_eq!(c.wait("").await.unwrap().exit_status, 137);
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

#[tokio::test]
async fn terminal_with_resize_and_log() {
    need_root!();
    let mut f = Fixture::new("tty");
    f.write_spec(&["sh", "-c", "tty; stty size"], |s| {
        s["process"]["terminal"] = json!(true);
    });
    let c = f.start_shim().await;
    let out = f.fifo("out");
    let log = f.dir.path().join("logs/c.json");
    let mut req = f.create_request();
    req.terminal = true;
    req.stdout = out.display().to_string();
    req.log_path = log.display().to_string();
    c.create(req).await.unwrap();
    c.resize_pty("", 100, 40).await.unwrap();
    let text = collect(&out);
    c.start("").await.unwrap();
    assert_eq!(c.wait("").await.unwrap().exit_status, 0);
    let text = text.await.unwrap();
    assert_eq!(text, "/dev/pts/0\r\n40 100\r\n");
    let logged = std::fs::read_to_string(&log).unwrap();
    let first: serde_json::Value = serde_json::from_str(logged.lines().next().unwrap()).unwrap();
    assert_eq!(first["stream"], "stdout");
    assert_eq!(first["log"], "/dev/pts/0\r\n");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

#[tokio::test]
async fn stats_and_update() {
    need_root!();
    let mut f = Fixture::new("stats");
    f.write_spec(&["sleep", "100"], |_| {});
    let c = f.start_shim().await;
    c.create(f.create_request()).await.unwrap();
    c.start("").await.unwrap();
    c.update(serde_json::to_vec(&json!({"pids": {"limit": 50}})).unwrap())
        .await
        .unwrap();
    let stats = c.stats().await.unwrap();
    match stats.metrics.unwrap() {
        pb::stats_response::Metrics::V1(m) => {
            assert_eq!(m.pids.unwrap().limit, 50);
            assert!(m.memory.unwrap().usage.unwrap().usage > 0);
        }
        pb::stats_response::Metrics::V2(m) => {
            assert_eq!(m.pids.unwrap().limit, 50);
        }
    }
    c.kill("", 9, true).await.unwrap();
    c.wait("").await.unwrap();
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
}

#[tokio::test]
async fn twenty_runs_leave_nothing_behind() {
    need_root!();
    for i in 0..20 {
        let mut f = Fixture::new("loop");
        let (status, out, _) = run_to_exit(&mut f, &["echo", &format!("run {i}")]).await;
        assert_eq!(status, 0);
        assert_eq!(out, format!("run {i}\n"));
    }
}

/// Not a check: prints the memory of a shim with a running container
/// (`cargo test -p berth-shim --test shim shim_memory -- --nocapture`).
#[tokio::test]
async fn shim_memory() {
    need_root!();
    let mut f = Fixture::new("mem");
    f.write_spec(&["sleep", "100"], |_| {});
    let c = f.start_shim().await;
    let out = f.fifo("out");
    let mut req = f.create_request();
    req.stdout = out.display().to_string();
    c.create(req).await.unwrap();
    c.start("").await.unwrap();
    let pid = f.shim_pid.unwrap();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let get = |k: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .unwrap_or_default()
    };
    eprintln!(
        "shim memory with a running container: Rss {} kB, Pss {} kB, Private_Dirty {} kB",
        get("Rss:"),
        get("Pss:"),
        get("Private_Dirty:")
    );
    c.kill("", 9, true).await.unwrap();
    c.wait("").await.unwrap();
    c.delete("").await.unwrap();
}

/// Not a check: prints how long Create takes and where the time goes, as wall time and
/// as the shim's and the container child's time on a CPU and waiting for one
/// (`/proc/PID/schedstat`); the rest is sleeping in the kernel
/// (`cargo test -p berth-shim --test shim create_time -- --nocapture`).
#[tokio::test]
async fn create_time() {
    need_root!();
    let schedstat = |pid: u32| -> (u64, u64) {
        let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap_or_default();
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        (
            v.first().copied().unwrap_or(0),
            v.get(1).copied().unwrap_or(0),
        )
    };
    for _ in 0..5 {
        let mut f = Fixture::new("ctime");
        f.write_spec(&["sleep", "100"], |_| {});
        let c = f.start_shim().await;
        let shim = f.shim_pid.unwrap() as u32;
        let mut req = f.create_request();
        req.log_path = f.dir.path().join("log.json").display().to_string();
        let before = schedstat(shim);
        let began = std::time::Instant::now();
        let created = c.create(req).await.unwrap();
        let wall = began.elapsed();
        let after = schedstat(shim);
        let child = schedstat(created.pid);
        eprintln!(
            "create {:>6} us: shim on cpu {:>5} us, runnable {:>5} us; child on cpu {:>5} us, runnable {:>5} us",
            wall.as_micros(),
            (after.0 - before.0) / 1000,
            (after.1 - before.1) / 1000,
            child.0 / 1000,
            child.1 / 1000
        );
        c.kill("", 9, true).await.unwrap();
        c.wait("").await.unwrap();
        c.delete("").await.unwrap();
        assert!(f.wait_shim_exit().await);
    }
}
