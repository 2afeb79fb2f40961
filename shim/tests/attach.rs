//! End-to-end tests of berth's own stdio through a real berth-shim: WriteStdin, Attach
//! (before Start, several at once, slow and absent readers, reconnects, Detach), exec
//! streams, terminals, and json-lines logs with rotation. Needs root and cgroups.

#[macro_use]
mod common;

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use berth_api::berth::shim::v1 as pb;
use berth_api::shim::frame::{Frame, FrameBody, Method};
use berth_api::shim::{OutputEvent, OutputStream, ShimClient};
use common::Fixture;
use prost::Message;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(60);

/// What an attached stream delivered until its end.
#[derive(Debug, Default)]
struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    dropped: [u64; 3],
    eof: bool,
}

async fn collect_all(mut s: OutputStream) -> Collected {
    let mut c = Collected::default();
    while let Some(ev) = tokio::time::timeout(LONG, s.recv())
        .await
        .expect("attached output did not end")
    {
        match ev {
            OutputEvent::Data { stream, data } => match stream {
                pb::Stream::Stderr => c.stderr.extend_from_slice(&data),
                _ => c.stdout.extend_from_slice(&data),
            },
            OutputEvent::Dropped { stream, bytes } => c.dropped[stream as usize] += bytes,
            OutputEvent::Eof => c.eof = true,
        }
    }
    c
}

/// Reads stdout until `needle` shows up in what was read since the call; returns it all.
async fn read_until(s: &mut OutputStream, seen: &mut Vec<u8>, needle: &[u8]) {
    let start = seen.len();
    loop {
        if seen[start..].windows(needle.len()).any(|w| w == needle) {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(10), s.recv()).await {
            Ok(Some(OutputEvent::Data { data, .. })) => seen.extend_from_slice(&data),
            Ok(Some(other)) => panic!(
                "unexpected {other:?} waiting for {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(seen)
            ),
            Ok(None) => panic!(
                "output ended waiting for {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(seen)
            ),
            Err(_) => panic!(
                "timed out waiting for {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(seen)
            ),
        }
    }
}

fn attach_req(exec_id: &str, stdout: bool, stderr: bool) -> pb::AttachRequest {
    pb::AttachRequest {
        exec_id: exec_id.into(),
        stdout,
        stderr,
        logs: false,
    }
}

/// The `log` texts of a json-lines file, checking each entry's shape.
fn log_entries(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            assert!(l.starts_with("{\"log\":"), "not docker's key order: {l}");
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(v["time"].as_str().unwrap().ends_with('Z'));
            (
                v["stream"].as_str().unwrap().to_string(),
                v["log"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn finish(f: &Fixture, c: &ShimClient) {
    let _ = c.kill("", 9, true).await;
    let _ = tokio::time::timeout(LONG, c.wait("")).await;
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await, "shim did not exit after delete");
    f.assert_clean();
}

#[tokio::test]
async fn attach_before_start_gets_all_output_separated() {
    need_root!();
    let mut f = Fixture::new("att-all");
    f.write_spec(
        &[
            "sh",
            "-c",
            "echo out1; echo err1 >&2; echo out2; printf 'no newline'; printf e2 >&2",
        ],
        |_| {},
    );
    let c = f.start_shim().await;
    let log = f.dir.path().join("logs/c.json");
    let mut req = f.create_request();
    req.log_path = log.display().to_string();
    c.create(req).await.unwrap();
    let s = c.attach(attach_req("", true, true)).await.unwrap();
    assert!(s.response().stdout && s.response().stderr);
    let out = tokio::spawn(collect_all(s));
    c.start("").await.unwrap();
    assert_eq!(c.wait("").await.unwrap().exit_status, 0);
    let got = out.await.unwrap();
    assert!(got.eof);
    assert_eq!(got.stdout, b"out1\nout2\nno newline");
    assert_eq!(got.stderr, b"err1\ne2");
    assert_eq!(got.dropped, [0, 0, 0]);
    let mut entries = log_entries(&log);
    entries.sort();
    assert_eq!(
        entries,
        [
            ("stderr".into(), "e2".into()),
            ("stderr".into(), "err1\n".into()),
            ("stdout".into(), "no newline".into()),
            ("stdout".into(), "out1\n".into()),
            ("stdout".into(), "out2\n".into()),
        ]
    );
    // Attaching once the output ended: the end at once.
    let late = c.attach(attach_req("", true, false)).await.unwrap();
    let late = collect_all(late).await;
    assert!(late.eof && late.stdout.is_empty());
    finish(&f, &c).await;
}

#[tokio::test]
async fn uncaptured_streams_refuse_attach() {
    need_root!();
    let mut f = Fixture::new("att-none");
    f.write_spec(&["true"], |_| {});
    let c = f.start_shim().await;
    let out = f.fifo("out");
    let mut req = f.create_request();
    req.stdout = out.display().to_string();
    c.create(req).await.unwrap();
    let err = c.attach(attach_req("", true, true)).await.unwrap_err();
    assert_eq!(err.grpc_code(), tonic::Code::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("stderr"), "{err}");
    // The FIFO's stdout can be attached to alongside.
    let s = c.attach(attach_req("", true, false)).await.unwrap();
    drop(s);
    finish(&f, &c).await;
}

#[tokio::test]
async fn two_attachers_get_the_same_bytes() {
    need_root!();
    let mut f = Fixture::new("att-two");
    f.write_spec(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); done; echo bye >&2",
        ],
        |_| {},
    );
    let c = f.start_shim().await;
    let mut req = f.create_request();
    req.output_stream = true;
    c.create(req).await.unwrap();
    // One on this connection, one on another.
    let other = f.connect().await;
    let a = tokio::spawn(collect_all(
        c.attach(attach_req("", true, true)).await.unwrap(),
    ));
    let b = tokio::spawn(collect_all(
        other.attach(attach_req("", true, true)).await.unwrap(),
    ));
    c.start("").await.unwrap();
    assert_eq!(c.wait("").await.unwrap().exit_status, 0);
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let expected: String = (0..3000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&a.stdout), expected);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stderr, b"bye\n");
    assert_eq!(b.stderr, b"bye\n");
    assert!(a.eof && b.eof);
    finish(&f, &c).await;
}

/// Sends one request on a raw connection.
fn raw_request(sock: &mut UnixStream, id: u32, method: Method, msg: &impl Message) {
    sock.write_all(&Frame::request(id, method, msg.encode_to_vec()).to_bytes())
        .unwrap();
}

/// Reads frames from a raw connection until `stop` says so.
fn raw_frames(sock: &mut UnixStream, buf: &mut Vec<u8>, mut stop: impl FnMut(&Frame) -> bool) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some((frame, used)) = Frame::decode(buf).unwrap() {
            buf.drain(..used);
            if stop(&frame) {
                return;
            }
        }
        let n = sock.read(&mut chunk).unwrap();
        assert!(n > 0, "shim closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn readers_that_do_not_keep_up_never_block_the_process() {
    need_root!();
    const LINE: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq";
    const TOTAL: u64 = 50 << 20;
    let mut f = Fixture::new("att-slow");
    let cmd = format!("yes {LINE} | head -c {TOTAL}");
    f.write_spec(&["sh", "-c", &cmd], |_| {});
    let c = f.start_shim().await;
    let log = f.dir.path().join("logs/c.json");
    let mut req = f.create_request();
    req.log_path = log.display().to_string();
    c.create(req).await.unwrap();
    // A raw connection that attaches and then reads nothing at all.
    let mut raw = UnixStream::connect(&f.socket).unwrap();
    raw_request(&mut raw, 1, Method::Attach, &attach_req("", true, true));
    // A client whose consumer never calls recv (its queue is bounded too).
    let idle = f.connect().await;
    let idle_stream = idle.attach(attach_req("", true, true)).await.unwrap();
    c.start("").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(120), c.wait(""))
        .await
        .expect("the process was blocked by its attachers")
        .unwrap();
    assert_eq!(status.exit_status, 0);
    // The log has every line.
    let entries = log_entries(&log);
    let want = format!("{LINE}\n");
    assert_eq!(entries.len() as u64, TOTAL / want.len() as u64);
    assert!(entries.iter().all(|(s, l)| s == "stdout" && *l == want));
    // The idle client lost most of it, and says how much: nothing vanished unreported.
    let got = collect_all(idle_stream).await;
    assert!(got.eof);
    assert!(got.dropped[pb::Stream::Stdout as usize] > 0);
    assert_eq!(
        got.stdout.len() as u64 + got.dropped[pb::Stream::Stdout as usize],
        TOTAL
    );
    // So did the raw reader: data + dropped reports add up, the end is there.
    let mut buf = Vec::new();
    let (mut data, mut dropped, mut eof, mut replied) = (0u64, 0u64, false, false);
    raw_frames(&mut raw, &mut buf, |fr| {
        assert_eq!(fr.id, 1);
        match &fr.body {
            FrameBody::Reply(_) => replied = true,
            FrameBody::Event(p) => {
                let o = pb::Output::decode(p.as_slice()).unwrap();
                data += o.data.len() as u64;
                dropped += o.dropped;
                eof = o.eof;
            }
            other => panic!("unexpected {other:?}"),
        }
        eof
    });
    assert!(replied);
    assert!(
        dropped > 0,
        "a reader that never read cannot have had all of it"
    );
    assert_eq!(data + dropped, TOTAL);
    finish(&f, &c).await;
}

#[tokio::test]
async fn interactive_shell_through_a_pty() {
    need_root!();
    let mut f = Fixture::new("att-tty");
    f.write_spec(&["sh"], |s| {
        s["process"]["terminal"] = json!(true);
        s["process"]["env"] = json!(["PATH=/bin", "PS1=box# "]);
    });
    let c = f.start_shim().await;
    let mut req = f.create_request();
    req.terminal = true;
    req.stdin_stream = true;
    c.create(req).await.unwrap();
    let mut s = c.attach(attach_req("", true, true)).await.unwrap();
    // A terminal has one stream.
    assert!(s.response().stdout && !s.response().stderr);
    c.resize_pty("", 90, 30).await.unwrap();
    c.start("").await.unwrap();
    let mut seen = Vec::new();
    // The prompt has no newline: it shows up raw.
    read_until(&mut s, &mut seen, b"box# ").await;
    c.write_stdin("", b"echo hi; stty size\n".to_vec())
        .await
        .unwrap();
    read_until(&mut s, &mut seen, b"\r\nhi\r\n30 90\r\n").await;
    c.resize_pty("", 100, 40).await.unwrap();
    c.write_stdin("", b"stty size\n".to_vec()).await.unwrap();
    read_until(&mut s, &mut seen, b"40 100\r\n").await;
    c.write_stdin("", b"exit 7\n".to_vec()).await.unwrap();
    let rest = collect_all(s).await;
    assert!(rest.eof);
    assert_eq!(c.wait("").await.unwrap().exit_status, 7);
    finish(&f, &c).await;
}

#[tokio::test]
async fn stdin_stream_feeds_cat_until_close_io() {
    need_root!();
    let mut f = Fixture::new("att-cat");
    f.write_spec(&["cat"], |_| {});
    let c = f.start_shim().await;
    let mut req = f.create_request();
    req.stdin_stream = true;
    req.output_stream = true;
    c.create(req).await.unwrap();
    let mut s = c.attach(attach_req("", true, false)).await.unwrap();
    // Written before Start: waits in the pipe.
    c.write_stdin("", b"early\n".to_vec()).await.unwrap();
    c.start("").await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut s, &mut seen, b"early\n").await;
    c.write_stdin("", b"hello\n".to_vec()).await.unwrap();
    read_until(&mut s, &mut seen, b"hello\n").await;
    // More than a pipe holds, in one call: the reply waits until cat has read it.
    let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let writer = {
        let c = c.clone();
        let big = big.clone();
        tokio::spawn(async move { c.write_stdin("", big).await })
    };
    // Let it go out first; the next write queues behind it in the shim.
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.write_stdin("", b"\nlast\n".to_vec()).await.unwrap();
    writer.await.unwrap().unwrap();
    c.close_io("").await.unwrap();
    let err = c.write_stdin("", b"x".to_vec()).await.unwrap_err();
    assert_eq!(err.grpc_code(), tonic::Code::FailedPrecondition);
    let status = tokio::time::timeout(Duration::from_secs(10), c.wait(""))
        .await
        .expect("cat did not see end of file after CloseIO")
        .unwrap();
    assert_eq!(status.exit_status, 0);
    let rest = collect_all(s).await;
    seen.extend_from_slice(&rest.stdout);
    let mut want = b"early\nhello\n".to_vec();
    want.extend_from_slice(&big);
    want.extend_from_slice(b"\nlast\n");
    assert_eq!(seen.len(), want.len());
    assert!(seen == want, "cat's output differs from what was written");
    // stdin_stream and a stdin FIFO exclude each other.
    finish(&f, &c).await;
    let mut f = Fixture::new("att-both");
    let c = f.start_shim().await;
    let fifo = f.fifo("in");
    let mut req = f.create_request();
    req.stdin_stream = true;
    req.stdin = fifo.display().to_string();
    let err = c.create(req).await.unwrap_err();
    assert_eq!(err.grpc_code(), tonic::Code::InvalidArgument, "{err}");
    c.shutdown(false).await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

fn process(args: &[&str], terminal: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/bin", "PS1=exec# "],
        "cwd": "/"
    }))
    .unwrap()
}

#[tokio::test]
async fn exec_streams_terminal_and_optional_log() {
    need_root!();
    let mut f = Fixture::new("att-exec");
    f.write_spec(&["sh", "-c", "echo init-line; exec sleep 100"], |_| {});
    let c = f.start_shim().await;
    let log = f.dir.path().join("logs/c.json");
    let mut req = f.create_request();
    req.log_path = log.display().to_string();
    c.create(req).await.unwrap();
    c.start("").await.unwrap();
    // Exec with a stdin stream, attached before its start, logged into the container's log.
    c.exec(pb::ExecRequest {
        exec_id: "cat".into(),
        process: process(&["sh", "-c", "cat; echo cat-done >&2"], false),
        stdin_stream: true,
        log_path: log.display().to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = c.attach(attach_req("cat", true, true)).await.unwrap();
    let out = tokio::spawn(collect_all(s));
    c.start("cat").await.unwrap();
    c.write_stdin("cat", b"through exec\n".to_vec())
        .await
        .unwrap();
    c.close_io("cat").await.unwrap();
    assert_eq!(c.wait("cat").await.unwrap().exit_status, 0);
    let got = out.await.unwrap();
    assert_eq!(got.stdout, b"through exec\n");
    assert_eq!(got.stderr, b"cat-done\n");
    // An exec without log_path is not logged (output_stream still lets Attach see it).
    c.exec(pb::ExecRequest {
        exec_id: "quiet".into(),
        process: process(&["echo", "not-logged"], false),
        output_stream: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let s = c.attach(attach_req("quiet", true, true)).await.unwrap();
    c.start("quiet").await.unwrap();
    assert_eq!(collect_all(s).await.stdout, b"not-logged\n");
    c.wait("quiet").await.unwrap();
    let texts: Vec<String> = log_entries(&log).into_iter().map(|(_, l)| l).collect();
    assert!(texts.contains(&"init-line\n".to_string()), "{texts:?}");
    assert!(texts.contains(&"through exec\n".to_string()), "{texts:?}");
    assert!(texts.contains(&"cat-done\n".to_string()), "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("not-logged")), "{texts:?}");
    // exec -it: a terminal fed by WriteStdin, resized.
    c.exec(pb::ExecRequest {
        exec_id: "tty".into(),
        process: process(&["sh"], true),
        terminal: true,
        stdin_stream: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut s = c.attach(attach_req("tty", true, true)).await.unwrap();
    c.start("tty").await.unwrap();
    c.resize_pty("tty", 120, 50).await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut s, &mut seen, b"exec# ").await;
    c.write_stdin("tty", b"stty size; exit\n".to_vec())
        .await
        .unwrap();
    read_until(&mut s, &mut seen, b"50 120\r\n").await;
    assert!(collect_all(s).await.eof);
    assert_eq!(c.wait("tty").await.unwrap().exit_status, 0);
    for id in ["cat", "quiet", "tty"] {
        c.delete(id).await.unwrap();
    }
    finish(&f, &c).await;
}

#[tokio::test]
async fn log_rotation_keeps_max_files_of_consecutive_lines() {
    need_root!();
    let mut f = Fixture::new("att-rot");
    f.write_spec(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); done",
        ],
        |_| {},
    );
    let c = f.start_shim().await;
    let log = f.dir.path().join("logs/c.json");
    let mut req = f.create_request();
    req.log_path = log.display().to_string();
    req.log_max_size = 4096;
    req.log_max_files = 3;
    c.create(req).await.unwrap();
    c.start("").await.unwrap();
    assert_eq!(c.wait("").await.unwrap().exit_status, 0);
    let name = |i: u32| {
        if i == 0 {
            log.clone()
        } else {
            log.with_extension(format!("json.{i}"))
        }
    };
    assert!(!name(3).exists(), "more than 3 files kept");
    let mut texts = Vec::new();
    for i in [2, 1, 0] {
        let p = name(i);
        let len = std::fs::metadata(&p).unwrap().len();
        assert!(len <= 4096, "{} has {len} bytes", p.display());
        // A rotated file was full: the next entry would not have fitted.
        assert!(i == 0 || len > 4000, "{} has {len} bytes", p.display());
        texts.extend(log_entries(&p).into_iter().map(|(_, l)| l));
    }
    // Oldest to newest, the kept lines are consecutive and end with the last one.
    let first: u32 = texts[0]["line ".len()..].trim().parse().unwrap();
    let want: Vec<String> = (first..3000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(texts, want);
    finish(&f, &c).await;
}

#[tokio::test]
async fn attach_with_logs_gives_the_log_position_and_the_held_back_line() {
    need_root!();
    let mut f = Fixture::new("att-logs");
    f.write_spec(
        &["sh", "-c", "echo a; echo b; printf partial; exec sleep 100"],
        |_| {},
    );
    let c = f.start_shim().await;
    let log = f.dir.path().join("logs/c.json");
    let mut req = f.create_request();
    req.log_path = log.display().to_string();
    c.create(req).await.unwrap();
    c.start("").await.unwrap();
    for _ in 0..500 {
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // `printf partial` ran before `sleep`; give the shim a moment to read it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = c
        .attach(pb::AttachRequest {
            exec_id: String::new(),
            stdout: true,
            stderr: true,
            logs: true,
        })
        .await
        .unwrap();
    let r = s.response().clone();
    let meta = std::fs::metadata(&log).unwrap();
    assert_eq!(r.log_path, log.display().to_string());
    assert_eq!(r.log_inode, meta.ino());
    assert_eq!(r.log_size, meta.len());
    let first = tokio::time::timeout(Duration::from_secs(5), s.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first,
        OutputEvent::Data {
            stream: pb::Stream::Stdout,
            data: b"partial".to_vec()
        }
    );
    drop(s);
    finish(&f, &c).await;
    // The partial line reached the log when the process ended.
    let texts: Vec<String> = log_entries(&log).into_iter().map(|(_, l)| l).collect();
    assert_eq!(texts, ["a\n", "b\n", "partial"]);
}

#[tokio::test]
async fn reattach_after_disconnect_and_detach() {
    need_root!();
    let mut f = Fixture::new("att-re");
    f.write_spec(
        &[
            "sh",
            "-c",
            "i=0; while true; do echo \"tick $i\"; i=$((i+1)); sleep 0.02; done",
        ],
        |_| {},
    );
    let c = f.start_shim().await;
    let mut req = f.create_request();
    req.output_stream = true;
    c.create(req).await.unwrap();
    c.start("").await.unwrap();
    let ticks = |bytes: &[u8]| -> Vec<u32> {
        String::from_utf8_lossy(bytes)
            .lines()
            .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
            .collect()
    };
    // berthd attaches on its own connection, then dies (connection gone).
    let last_before = {
        let b = f.connect().await;
        let mut s = b.attach(attach_req("", true, true)).await.unwrap();
        let mut seen = Vec::new();
        read_until(&mut s, &mut seen, b"\ntick ").await;
        read_until(&mut s, &mut seen, b"\n").await;
        *ticks(&seen).last().unwrap()
    };
    // A raw connection killed in the middle of an attach.
    {
        let mut raw = UnixStream::connect(&f.socket).unwrap();
        raw_request(&mut raw, 5, Method::Attach, &attach_req("", true, false));
        let mut buf = Vec::new();
        raw_frames(&mut raw, &mut buf, |fr| {
            matches!(fr.body, FrameBody::Event(_))
        });
    }
    // Reconnected: the output continues, newer than what was seen.
    let b = f.connect().await;
    let mut s = b.attach(attach_req("", true, true)).await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut s, &mut seen, b"\ntick ").await;
    read_until(&mut s, &mut seen, b"\n").await;
    let after = ticks(&seen);
    assert!(
        after.iter().all(|t| *t > last_before),
        "{after:?} after {last_before}"
    );
    // Detach on a live connection: no frame of that subscription follows the reply.
    let mut raw = UnixStream::connect(&f.socket).unwrap();
    raw_request(&mut raw, 7, Method::Attach, &attach_req("", true, false));
    let mut buf = Vec::new();
    raw_frames(&mut raw, &mut buf, |fr| {
        matches!(fr.body, FrameBody::Event(_))
    });
    raw_request(
        &mut raw,
        8,
        Method::Detach,
        &pb::DetachRequest { attach_id: 7 },
    );
    raw_frames(&mut raw, &mut buf, |fr| fr.id == 8);
    tokio::time::sleep(Duration::from_millis(200)).await;
    raw_request(&mut raw, 9, Method::State, &pb::StateRequest::default());
    raw_frames(&mut raw, &mut buf, |fr| {
        assert_ne!(fr.id, 7, "output after Detach");
        fr.id == 9
    });
    // The other subscription is unaffected.
    read_until(&mut s, &mut seen, b"\ntick ").await;
    drop(s);
    finish(&f, &c).await;
}

#[tokio::test]
async fn stdin_backlog_is_bounded_and_fails_when_the_process_goes() {
    need_root!();
    let mut f = Fixture::new("att-full");
    f.write_spec(&["sleep", "100"], |_| {});
    let c = f.start_shim().await;
    let mut req = f.create_request();
    req.stdin_stream = true;
    c.create(req).await.unwrap();
    c.start("").await.unwrap();
    // sleep never reads: 2 MiB is accepted (nothing was waiting), its reply waits.
    let pending = {
        let c = c.clone();
        tokio::spawn(async move { c.write_stdin("", vec![b'x'; 2 << 20]).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished());
    let err = c.write_stdin("", b"more".to_vec()).await.unwrap_err();
    assert_eq!(err.grpc_code(), tonic::Code::ResourceExhausted, "{err}");
    // The process dies: the waiting write fails instead of hanging.
    c.kill("", 9, false).await.unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("a write to a dead process kept waiting")
        .unwrap();
    let err = res.unwrap_err();
    assert_eq!(err.grpc_code(), tonic::Code::FailedPrecondition, "{err}");
    finish(&f, &c).await;
}
