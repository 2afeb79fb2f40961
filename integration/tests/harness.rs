//! The daemon harness itself, driven against `fake-berthd` (a stand-in that only answers
//! Version), so that starting, waiting, restarting, crashing, logging and the cleanup on
//! drop are tested whatever state the real berthd is in. The last test uses the real
//! berthd and the real ctr.

use std::path::PathBuf;
use std::time::Duration;

use berth_api::containerd::services::version::v1::version_client::VersionClient;
use berth_integration::error::Error;
use berth_integration::{Daemon, DaemonOptions};

fn fake(env: &[(&str, &str)]) -> DaemonOptions {
    DaemonOptions {
        binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_fake-berthd"))),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..DaemonOptions::default()
    }
}

async fn version(daemon: &Daemon) -> String {
    let channel = daemon.channel().await.unwrap();
    VersionClient::new(channel)
        .version(())
        .await
        .unwrap()
        .into_inner()
        .version
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn starts_answers_and_passes_the_standard_flags() {
    let daemon = Daemon::start_with(fake(&[])).await.unwrap();
    assert_eq!(version(&daemon).await, "fake-berthd");
    assert!(daemon.socket().exists());
    assert!(daemon.root().is_dir() && daemon.state().is_dir());
    let log = daemon.log();
    assert!(
        log.contains(&format!("root={}", daemon.root().display())),
        "{log}"
    );
    assert!(
        log.contains(&format!("state={}", daemon.state().display())),
        "{log}"
    );
    assert!(daemon.prefix().starts_with('t'));
    assert_ne!(daemon.namespace(), daemon.namespace());
    assert!(daemon.namespace().starts_with(daemon.prefix()));
}

#[tokio::test]
async fn stop_restart_and_kill9() {
    let mut daemon = Daemon::start_with(fake(&[])).await.unwrap();
    let first = daemon.pid().unwrap();

    daemon.restart().await.unwrap();
    let second = daemon.pid().unwrap();
    assert_ne!(first, second);
    assert!(!alive(first));
    assert_eq!(version(&daemon).await, "fake-berthd");

    daemon.kill9().unwrap();
    assert!(daemon.pid().is_none());
    assert!(!alive(second));
    // A crashed daemon leaves its socket behind; the restarted one takes over.
    daemon.restart().await.unwrap();
    assert_eq!(version(&daemon).await, "fake-berthd");

    let status = daemon.stop().unwrap().unwrap();
    assert!(status.success(), "{status}");
    assert!(!daemon.socket().exists(), "SIGTERM removes the socket");
    assert!(daemon.stop().unwrap().is_none());
    assert_eq!(daemon.log().matches("fake-berthd: started").count(), 3);
}

#[tokio::test]
async fn early_exit_is_reported_with_the_log() {
    let err = Daemon::start_with(fake(&[("FAKE_BERTHD_EXIT", "3")]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Exited { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("told to exit with 3"), "{text}");
}

#[tokio::test]
async fn slow_start_times_out_with_the_log() {
    let options = DaemonOptions {
        ready_timeout: Duration::from_millis(500),
        ..fake(&[("FAKE_BERTHD_DELAY_MS", "5000")])
    };
    let err = Daemon::start_with(options).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("fake-berthd: started"), "{err}");
}

#[tokio::test]
async fn waits_for_a_slow_daemon() {
    let daemon = Daemon::start_with(fake(&[("FAKE_BERTHD_DELAY_MS", "300")]))
        .await
        .unwrap();
    assert_eq!(version(&daemon).await, "fake-berthd");
}

#[tokio::test]
async fn drop_kills_strays_unmounts_and_removes_everything() {
    let daemon = Daemon::start_with(fake(&[
        ("FAKE_BERTHD_STRAY", "1"),
        ("FAKE_BERTHD_MOUNT", "1"),
    ]))
    .await
    .unwrap();
    let dir = daemon.dir().to_path_buf();
    let stray: u32 = std::fs::read_to_string(daemon.state().join("stray.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mnt = daemon.state().join("mnt");
    assert!(alive(stray));
    assert!(
        berth_integration::procs::mounts_under(&dir).contains(&mnt),
        "the fake mounted {}",
        mnt.display()
    );
    let strays = berth_integration::procs::processes_under(&dir);
    assert!(strays.contains(&stray), "{strays:?}");
    assert!(strays.len() >= 2, "the shell and its sleep: {strays:?}");
    drop(daemon);
    for pid in strays {
        assert!(!alive(pid), "pid {pid} survived the daemon's drop");
    }
    assert!(berth_integration::procs::mounts_under(&dir).is_empty());
    assert!(!dir.exists(), "{} removed", dir.display());
}

#[tokio::test]
async fn real_ctr_talks_to_the_harness_socket() {
    let daemon = Daemon::start_with(fake(&[])).await.unwrap();
    let ctr = daemon.ctr("default");
    // ctr then asks Introspection for the server's UUID, which the fake does not serve.
    let out = ctr.run_async(["version"]).await.unwrap();
    assert!(out.stdout.contains("Version:  fake-berthd"), "{out:?}");
}

#[tokio::test]
#[ignore = "needs the real berthd: run `cargo build -p berth-agent` first, then `cargo test -p berth-integration -- --ignored`"]
async fn real_berthd_answers_ctr_version() {
    let daemon = Daemon::start().await.unwrap();
    let out = daemon.ctr("default").ok_async(["version"]).await;
    assert!(out.contains("Server:"), "{out}");
}
