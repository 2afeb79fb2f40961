//! The fixtures against the reference: a private Debian containerd 1.6 (on the same
//! harness as berthd) imports the OCI and docker archives, pulls every fixture from the
//! real registry with the real ctr, and runs them with runc. What containerd accepts here
//! is what berthd must accept too.

use std::time::Duration;

use berth_integration::fixtures::{self, Compression, Fixture, Platform};
use berth_integration::{Daemon, Registry, containerd};

async fn reference() -> Daemon {
    containerd::start()
        .await
        .expect("start a private containerd")
}

#[tokio::test]
async fn containerd_imports_oci_and_docker_archives() {
    let daemon = reference().await;
    let ns = daemon.namespace();
    let ctr = daemon.ctr(&ns);

    let oci = daemon.dir().join("busybox-oci.tar");
    fixtures::busybox()
        .write_oci_archive(&oci, Some("docker.io/library/busybox:oci"))
        .unwrap();
    let docker = daemon.dir().join("multilayer-docker.tar");
    fixtures::multilayer()
        .write_docker_archive(&docker, &["example/multilayer:v1"])
        .unwrap();
    let oci_index = daemon.dir().join("multi-platform-oci.tar");
    fixtures::multi_platform()
        .write_oci_archive(&oci_index, Some("docker.io/library/mp:latest"))
        .unwrap();
    for file in [&oci, &docker, &oci_index] {
        // All platforms: without it containerd keeps only the host's blobs of the index.
        ctr.ok_async([
            "images".as_ref(),
            "import".as_ref(),
            "--all-platforms".as_ref(),
            file.as_os_str(),
        ])
        .await;
    }
    let listed = ctr.ok_async(["images", "ls"]).await;
    assert!(listed.contains("docker.io/library/busybox:oci"), "{listed}");
    assert!(
        listed.contains("docker.io/example/multilayer:v1"),
        "{listed}"
    );
    assert!(listed.contains("docker.io/library/mp:latest"), "{listed}");
    assert!(listed.contains(fixtures::busybox().digest()), "{listed}");
    assert!(
        listed.contains(fixtures::multi_platform().digest()),
        "{listed}"
    );
    // Every blob of the index arrived under its digest, and the images unpacked.
    let content = ctr.ok_async(["content", "ls", "-q"]).await;
    for blob in fixtures::multi_platform().blobs() {
        assert!(
            content.contains(&blob.digest),
            "{} missing:\n{content}",
            blob.digest
        );
    }
    let out = ctr
        .ok_async([
            "run",
            "--rm",
            "docker.io/example/multilayer:v1",
            "c1",
            "cat",
            "/etc/motd",
        ])
        .await;
    assert_eq!(out, "layer 3\n");
}

#[tokio::test]
async fn containerd_pulls_every_fixture_from_the_registry_and_runs_them() {
    let registry = Registry::start().unwrap();
    let daemon = reference().await;
    let ns = daemon.namespace();
    let ctr = daemon.ctr(&ns).with_timeout(Duration::from_secs(120));

    let cases: Vec<(&str, &dyn Fixture)> = vec![
        ("busybox", fixtures::busybox()),
        ("busybox-none", fixtures::busybox_with(Compression::None)),
        ("busybox-zstd", fixtures::busybox_with(Compression::Zstd)),
        ("busybox-docker", fixtures::busybox_docker()),
        ("multilayer", fixtures::multilayer()),
        (
            "multilayer-zstd",
            fixtures::multilayer_with(Compression::Zstd),
        ),
        ("multi-platform", fixtures::multi_platform()),
        ("multi-platform-docker", fixtures::multi_platform_docker()),
    ];
    for (i, (name, fixture)) in cases.iter().enumerate() {
        let image = registry.reference(&format!("{name}:v1"));
        registry.push(*fixture, &format!("{name}:v1")).unwrap();
        ctr.ok_async(["images", "pull", "--plain-http", &image])
            .await;
        let out = ctr
            .ok_async([
                "run",
                "--rm",
                &image,
                &format!("c{i}"),
                "cat",
                fixtures::PLATFORM_FILE,
            ])
            .await;
        assert_eq!(out, format!("{}\n", Platform::host()), "{name}");
    }

    let multilayer = registry.reference("multilayer:v1");
    let script = "cat /data/keep.txt /data/hardlink /data/added.txt /etc/motd; \
                  ls -A /opaque; test -e /data/deleted.txt || echo deleted-is-gone; \
                  stat -c '%u:%g:%a' /data/nobody.txt; stat -c '%a' /tmp";
    let out = ctr
        .ok_async(["run", "--rm", &multilayer, "check", "sh", "-c", script])
        .await;
    let expected = format!(
        "kept from layer 2\nkept from layer 2\nadded by layer 3\nlayer 3\n{}\ndeleted-is-gone\n{}:{}:{:o}\n1777\n",
        fixtures::MULTILAYER_OPAQUE_CONTENT.join("\n"),
        fixtures::MULTILAYER_NOBODY.0,
        fixtures::MULTILAYER_NOBODY.1,
        fixtures::MULTILAYER_NOBODY.2,
    );
    assert_eq!(out, expected);

    // The foreign platform of the index is there too, for a client that asks for it.
    let mp = registry.reference("multi-platform:v1");
    let foreign = Platform::foreign();
    ctr.ok_async([
        "images",
        "pull",
        "--plain-http",
        "--platform",
        &format!("{}/{}", foreign.os, foreign.architecture),
        &mp,
    ])
    .await;
}

#[tokio::test]
async fn containerd_pulls_from_a_registry_with_basic_auth() {
    let registry = Registry::start_with_auth("tester", "s3cret").unwrap();
    registry
        .push(fixtures::busybox(), "private/busybox:v1")
        .unwrap();
    let daemon = reference().await;
    let ctr = daemon.ctr(&daemon.namespace());
    let image = registry.reference("private/busybox:v1");
    let denied = ctr
        .run_async(["images", "pull", "--plain-http", &image])
        .await
        .unwrap();
    assert!(!denied.success(), "{denied:?}");
    ctr.ok_async([
        "images",
        "pull",
        "--plain-http",
        "--user",
        "tester:s3cret",
        &image,
    ])
    .await;
}
