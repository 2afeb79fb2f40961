//! The foundation, end to end: the real berthd driven by the real ctr and by berthctl.
//! Daemon process (flags, config, lock, socket, signals, crash safety), Version,
//! Introspection, Namespaces, Leases, Events.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use berth_api::containerd::services::namespaces::v1::ListNamespacesRequest;
use berth_api::containerd::services::namespaces::v1::namespaces_client::NamespacesClient;
use berth_integration::error::Error;
use berth_integration::{Daemon, DaemonOptions, daemon, procs};

fn server_uuid(ctr_version: &str) -> String {
    ctr_version
        .lines()
        .find_map(|l| l.trim().strip_prefix("UUID:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no UUID in {ctr_version}"))
}

#[tokio::test]
async fn ctr_version_and_uuid_survive_restart() {
    let mut d = Daemon::start().await.unwrap();
    let ctr = d.ctr("default");
    let out = ctr.ok_async(["version"]).await;
    assert!(
        out.contains("Server:") && out.contains("Version:  0.1.0"),
        "{out}"
    );
    let uuid = server_uuid(&out);
    d.restart().await.unwrap();
    let again = server_uuid(&ctr.ok_async(["version"]).await);
    assert_eq!(uuid, again, "the server UUID is persisted");
}

#[tokio::test]
async fn socket_is_0660_and_removed_on_sigterm() {
    let mut d = Daemon::start().await.unwrap();
    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let status = d.stop().unwrap().expect("was running");
    assert!(status.success(), "{status}");
    assert!(!d.socket().exists(), "socket removed on SIGTERM");
    assert!(d.log().contains("SIGTERM"), "{}", d.log());
}

#[tokio::test]
async fn second_daemon_on_the_same_root_refuses() {
    let d = Daemon::start().await.unwrap();
    let other = d.dir().join("other.sock");
    let out = procs::run(
        std::process::Command::new(daemon::binary("berthd").unwrap()).args([
            "--root".as_ref(),
            d.root().as_os_str(),
            "--state".as_ref(),
            d.state().as_os_str(),
            "--address".as_ref(),
            other.as_os_str(),
        ]),
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("in use by another berthd"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("pid {}", d.pid().unwrap())),
        "{}",
        out.stderr
    );
    assert!(!other.exists());
    // The first one is unharmed.
    d.ctr("default").ok_async(["version"]).await;
}

#[tokio::test]
async fn config_errors_name_the_key() {
    let options = DaemonOptions {
        config: Some("version = 1\n[grpc]\nadress = \"/x\"\n".into()),
        ..DaemonOptions::default()
    };
    let err = Daemon::start_with(options).await.unwrap_err();
    assert!(matches!(err, Error::Exited { .. }), "{err}");
    assert!(err.to_string().contains("adress"), "{err}");
}

#[tokio::test]
async fn config_file_and_default_print() {
    let out = procs::run(
        std::process::Command::new(daemon::binary("berthd").unwrap()).args(["config", "default"]),
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout.contains("version = 1") && out.stdout.contains("[grpc]"),
        "{}",
        out.stdout
    );
    // The printed defaults are a valid config file.
    let options = DaemonOptions {
        config: Some(out.stdout.clone()),
        ..DaemonOptions::default()
    };
    let d = Daemon::start_with(options).await.unwrap();
    d.ctr("default").ok_async(["version"]).await;
}

#[tokio::test]
async fn ctr_plugins_ls_with_filters() {
    let d = Daemon::start().await.unwrap();
    let ctr = d.ctr("default");
    let out = ctr.ok_async(["plugins", "ls"]).await;
    for want in [
        "io.containerd.grpc.v1",
        "namespaces",
        "leases",
        "events",
        "introspection",
    ] {
        assert!(out.contains(want), "{want} missing: {out}");
    }
    let grpc = ctr
        .ok_async(["plugins", "ls", "type==io.containerd.grpc.v1"])
        .await;
    assert!(!grpc.contains("io.containerd.metadata.v1"), "{grpc}");
    assert!(
        grpc.lines()
            .filter(|l| l.starts_with("io.containerd.grpc.v1"))
            .count()
            >= 5
    );
    let one = ctr
        .ok_async(["plugins", "ls", "id==leases,type==io.containerd.grpc.v1"])
        .await;
    assert_eq!(one.lines().count(), 2, "header and one plugin: {one}");
    assert!(one.contains("ok"), "{one}");
}

#[tokio::test]
async fn ctr_namespaces_create_label_ls_rm() {
    let d = Daemon::start().await.unwrap();
    let ns = d.namespace();
    let ctr = d.ctr("default");
    ctr.ok_async(["namespaces", "create", &ns, "team=a", "tier=1"])
        .await;
    let dup = ctr.run_async(["namespaces", "create", &ns]).await.unwrap();
    assert!(
        !dup.status.success() && dup.stderr.contains("already exists"),
        "{dup:?}"
    );
    ctr.ok_async(["namespaces", "label", &ns, "team=b", "tier="])
        .await;
    let ls = ctr.ok_async(["namespaces", "ls"]).await;
    let line = ls
        .lines()
        .find(|l| l.starts_with(&ns))
        .unwrap_or_else(|| panic!("{ls}"));
    assert!(line.contains("team=b") && !line.contains("tier"), "{line}");
    assert!(
        ctr.ok_async(["namespaces", "ls", "-q"])
            .await
            .lines()
            .any(|l| l == ns)
    );

    // A namespace holding something (a lease) cannot be removed.
    d.ctr(&ns)
        .ok_async(["leases", "create", "--id", "keep"])
        .await;
    let busy = ctr.run_async(["namespaces", "rm", &ns]).await.unwrap();
    assert!(!busy.status.success(), "{busy:?}");
    assert!(busy.stderr.contains("must be empty"), "{busy:?}");
    d.ctr(&ns).ok_async(["leases", "rm", "keep"]).await;
    ctr.ok_async(["namespaces", "rm", &ns]).await;
    assert!(
        !ctr.ok_async(["namespaces", "ls", "-q"])
            .await
            .lines()
            .any(|l| l == ns)
    );
    let bad = ctr
        .run_async(["namespaces", "create", "bad/name"])
        .await
        .unwrap();
    assert!(
        !bad.status.success() && bad.stderr.contains("invalid"),
        "{bad:?}"
    );
}

#[tokio::test]
async fn ctr_leases_create_ls_rm() {
    let d = Daemon::start().await.unwrap();
    let ns = d.namespace();
    let ctr = d.ctr(&ns);
    let generated = ctr.ok_async(["leases", "create"]).await.trim().to_string();
    assert!(!generated.is_empty());
    ctr.ok_async(["leases", "create", "--id", "mine", "--expires", "1h"])
        .await;
    let ls = ctr.ok_async(["leases", "ls"]).await;
    assert!(ls.contains(&generated) && ls.contains("mine"), "{ls}");
    let line = ls.lines().find(|l| l.starts_with("mine")).unwrap();
    assert!(line.contains("containerd.io/gc.expire="), "{line}");
    ctr.ok_async(["leases", "rm", "mine", &generated]).await;
    assert_eq!(ctr.ok_async(["leases", "ls", "-q"]).await.trim(), "");
    let missing = ctr.run_async(["leases", "rm", "mine"]).await.unwrap();
    assert!(
        !missing.status.success() && missing.stderr.contains("not found"),
        "{missing:?}"
    );
}

#[tokio::test]
async fn ctr_events_see_a_namespace_being_created() {
    let d = Daemon::start().await.unwrap();
    let ns = d.namespace();
    let ctr = d.ctr("default");
    let mut events = ctr.spawn(["events"]).unwrap();
    // Subscribe is asynchronous: retry creating namespaces until one is seen.
    let mut seen = String::new();
    for i in 0..50 {
        let name = format!("{ns}-{i}");
        ctr.ok_async(["namespaces", "create", &name]).await;
        if let Ok(out) = events.wait_for("/namespaces/create", Duration::from_millis(200)) {
            seen = out;
            break;
        }
    }
    assert!(
        seen.contains("/namespaces/create") && seen.contains(&ns),
        "{seen}"
    );
    assert!(seen.contains("\"name\""), "event printed as JSON: {seen}");
}

#[tokio::test]
async fn calls_without_a_namespace_are_refused() {
    let d = Daemon::start().await.unwrap();
    let mut plain = berth_api::containerd::services::leases::v1::leases_client::LeasesClient::new(
        d.channel().await.unwrap(),
    );
    let err = plain
        .list(berth_api::containerd::services::leases::v1::ListRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    // Namespaces need none.
    let mut ns = NamespacesClient::new(d.channel().await.unwrap());
    ns.list(ListNamespacesRequest::default()).await.unwrap();
}

#[tokio::test]
async fn kill9_loses_no_committed_metadata() {
    let mut d = Daemon::start().await.unwrap();
    let ns = d.namespace();
    let ctr = d.ctr(&ns);
    ctr.ok_async(["leases", "create", "--id", "durable"]).await;
    d.ctr("default")
        .ok_async(["namespaces", "label", &ns, "k=v"])
        .await;
    d.kill9().unwrap();
    d.restart().await.unwrap();
    assert!(
        ctr.ok_async(["leases", "ls", "-q"])
            .await
            .lines()
            .any(|l| l == "durable")
    );
    let ls = d.ctr("default").ok_async(["namespaces", "ls"]).await;
    assert!(
        ls.lines().any(|l| l.starts_with(&ns) && l.contains("k=v")),
        "{ls}"
    );
}

#[tokio::test]
async fn berthctl_version_info_namespaces_events() {
    let d = Daemon::start().await.unwrap();
    let ns = d.namespace();
    let out = d.run_berthctl(["version"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("Server:") && out.stdout.contains("0.1.0"),
        "{out:?}"
    );

    let out = d.run_berthctl(["--format", "json", "info"]).unwrap();
    let info: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(info["root"], d.root().display().to_string());
    assert_eq!(info["pid"], d.pid().unwrap());

    let mut events =
        procs::spawn(
            d.berthctl()
                .unwrap()
                .args(["events", "-f", "topic~=\"/namespaces/\""]),
        )
        .unwrap();
    let mut created = false;
    for i in 0..50 {
        let name = format!("{ns}-{i}");
        let out = d
            .run_berthctl(["namespace", "create", &name, "a=1"])
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        if events
            .wait_for("/namespaces/create", Duration::from_millis(200))
            .is_ok()
        {
            created = true;
            break;
        }
    }
    assert!(
        created,
        "berthctl events saw no namespace: {}",
        events.stdout()
    );

    let name = format!("{ns}-x");
    assert!(
        d.run_berthctl(["namespace", "create", &name, "a=1"])
            .unwrap()
            .status
            .success()
    );
    assert!(
        d.run_berthctl(["namespace", "label", &name, "a=", "b=2"])
            .unwrap()
            .status
            .success()
    );
    let out = d
        .run_berthctl(["--format", "json", "namespace", "ls"])
        .unwrap();
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap();
    assert_eq!(entry["labels"], serde_json::json!({"b": "2"}));
    let out = d
        .run_berthctl(["namespace", "rm", &name, "no-such-ns"])
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stdout.contains(&name) && out.stderr.contains("not found"),
        "{out:?}"
    );
}
