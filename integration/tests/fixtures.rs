//! The fixtures themselves: every image pushes to a real `docker-registry` and reads back
//! byte for byte, layers carry the whiteout and opaque markers, digests, diff IDs and chain
//! IDs are right, and the layout / archive writers produce what importers expect.

use std::collections::BTreeSet;

use berth_integration::fixtures::{
    self, Compression, Fixture, Format, Image, Platform, blob, chain_ids, layout, sha256,
};
use berth_integration::registry::{Registry, split_reference};

fn all_fixtures() -> Vec<(&'static str, &'static dyn Fixture)> {
    vec![
        ("busybox", fixtures::busybox()),
        ("busybox-none", fixtures::busybox_with(Compression::None)),
        ("busybox-zstd", fixtures::busybox_with(Compression::Zstd)),
        ("busybox-docker", fixtures::busybox_docker()),
        ("multilayer", fixtures::multilayer()),
        (
            "multilayer-zstd",
            fixtures::multilayer_with(Compression::Zstd),
        ),
        (
            "multilayer-none",
            fixtures::multilayer_with(Compression::None),
        ),
        ("multilayer-docker", fixtures::multilayer_docker()),
        ("multi-platform", fixtures::multi_platform()),
        ("multi-platform-docker", fixtures::multi_platform_docker()),
    ]
}

#[test]
fn every_fixture_pushes_and_reads_back_by_tag_and_digest() {
    let registry = Registry::start().expect("start docker-registry");
    for (repo, fixture) in all_fixtures() {
        let reference = format!("test/{repo}:v1");
        let digest = registry
            .push(fixture, &reference)
            .unwrap_or_else(|e| panic!("push {repo}: {e}"));
        assert_eq!(digest, fixture.digest(), "{repo}");

        let by_tag = registry
            .get_manifest(&format!("test/{repo}"), "v1")
            .unwrap();
        assert_eq!(by_tag.digest, fixture.digest(), "{repo}");
        assert_eq!(by_tag.media_type, fixture.media_type(), "{repo}");
        assert_eq!(by_tag.data, fixture.top().data, "{repo}");

        let by_digest = registry
            .get_manifest(&format!("test/{repo}"), fixture.digest())
            .unwrap();
        assert_eq!(by_digest.data, fixture.top().data, "{repo}");

        for blob in fixture.blobs() {
            if blob.media_type.contains("manifest") || blob.media_type.contains("index") {
                let m = registry
                    .get_manifest(&format!("test/{repo}"), &blob.digest)
                    .unwrap();
                assert_eq!(m.data, blob.data, "{repo} {}", blob.digest);
            } else {
                let data = registry
                    .get_blob(&format!("test/{repo}"), &blob.digest)
                    .unwrap();
                assert_eq!(sha256(&data), blob.digest, "{repo}");
            }
        }
        assert_eq!(registry.tags(&format!("test/{repo}")).unwrap(), vec!["v1"]);
    }
    let catalog: BTreeSet<String> = registry.catalog().unwrap().into_iter().collect();
    assert_eq!(catalog.len(), all_fixtures().len());
}

#[test]
fn pushing_twice_and_by_digest_works() {
    let registry = Registry::start().unwrap();
    let image = fixtures::busybox();
    registry.push(image, "busybox:1").unwrap();
    registry.push(image, "busybox:2").unwrap();
    registry
        .push(image, &format!("other@{}", image.digest()))
        .unwrap();
    let mut tags = registry.tags("busybox").unwrap();
    tags.sort();
    assert_eq!(tags, vec!["1", "2"]);
    assert!(registry.get_manifest("other", image.digest()).is_ok());
    registry.delete_manifest("other", image.digest()).unwrap();
    assert!(registry.get_manifest("other", image.digest()).is_err());
}

#[test]
fn registry_with_basic_auth_refuses_anonymous_and_accepts_the_user() {
    let registry = Registry::start_with_auth("tester", "s3cret").unwrap();
    let anonymous = registry.request("GET", "/v2/", &[], None, false).unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic")),
        "{:?}",
        anonymous.headers
    );
    let authed = registry.request("GET", "/v2/", &[], None, true).unwrap();
    assert_eq!(authed.status, 200);
    registry
        .push(fixtures::busybox(), "private/busybox:latest")
        .unwrap();
    let denied = registry
        .request(
            "GET",
            "/v2/private/busybox/manifests/latest",
            &[],
            None,
            false,
        )
        .unwrap();
    assert_eq!(denied.status, 401);
    assert_eq!(registry.credentials(), Some(("tester", "s3cret")));
}

#[test]
fn diff_ids_and_chain_ids_are_right() {
    for image in [
        fixtures::busybox(),
        fixtures::busybox_with(Compression::Zstd),
        fixtures::multilayer(),
        fixtures::multilayer_docker(),
    ] {
        let config = image.config.json();
        let in_config: Vec<String> = config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(in_config, image.diff_ids(), "{}", image.name);
        for layer in &image.layers {
            assert_eq!(layer.diff_id, sha256(&layer.tar));
            assert_eq!(
                layer.compression.decompress(&layer.blob.data).unwrap(),
                layer.tar
            );
            assert_eq!(layer.blob.digest, sha256(&layer.blob.data));
        }
        // chain(0) = diff_id(0); chain(n) = sha256(chain(n-1) + " " + diff_id(n)).
        let ids = image.diff_ids();
        let chains = image.chain_ids();
        assert_eq!(chains[0], ids[0]);
        for n in 1..ids.len() {
            assert_eq!(
                chains[n],
                sha256(format!("{} {}", chains[n - 1], ids[n]).as_bytes())
            );
        }
        assert_eq!(image.chain_id(), *chains.last().unwrap());
    }
    assert_eq!(fixtures::multilayer().layers.len(), 3);
    // The base layer is shared: same diff ID and chain ID as the one-layer image.
    assert_eq!(
        fixtures::multilayer().chain_ids()[0],
        fixtures::busybox().chain_id()
    );
    assert_eq!(
        chain_ids(&fixtures::busybox().diff_ids()),
        fixtures::busybox().chain_ids()
    );
}

#[test]
fn manifests_reference_the_right_blobs_and_media_types() {
    let check = |image: &Image, manifest_type: &str, config_type: &str, layer_type: &str| {
        let m = image.manifest.json();
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], manifest_type);
        assert_eq!(image.manifest.media_type, manifest_type);
        assert_eq!(m["config"]["digest"], image.config.digest.as_str());
        assert_eq!(m["config"]["mediaType"], config_type);
        assert_eq!(m["config"]["size"], image.config.size());
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), image.layers.len());
        for (desc, layer) in layers.iter().zip(&image.layers) {
            assert_eq!(desc["mediaType"], layer_type);
            assert_eq!(desc["digest"], layer.blob.digest.as_str());
            assert_eq!(desc["size"], layer.blob.size());
        }
        let config = image.config.json();
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], image.platform.architecture.as_str());
    };
    check(
        fixtures::busybox(),
        blob::OCI_MANIFEST,
        blob::OCI_CONFIG,
        blob::OCI_LAYER_GZIP,
    );
    check(
        fixtures::busybox_with(Compression::None),
        blob::OCI_MANIFEST,
        blob::OCI_CONFIG,
        blob::OCI_LAYER,
    );
    check(
        fixtures::busybox_with(Compression::Zstd),
        blob::OCI_MANIFEST,
        blob::OCI_CONFIG,
        blob::OCI_LAYER_ZSTD,
    );
    check(
        fixtures::busybox_docker(),
        blob::DOCKER_MANIFEST,
        blob::DOCKER_CONFIG,
        blob::DOCKER_LAYER_GZIP,
    );
    // Layer bytes carry their compression's magic numbers.
    assert_eq!(&fixtures::busybox().layers[0].blob.data[..2], &[0x1f, 0x8b]);
    assert_eq!(
        &fixtures::busybox_with(Compression::Zstd).layers[0]
            .blob
            .data[..4],
        &[0x28, 0xb5, 0x2f, 0xfd]
    );
    let config = fixtures::busybox().config.json();
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    assert!(
        config["config"]["Env"][0]
            .as_str()
            .unwrap()
            .starts_with("PATH=")
    );
}

#[test]
fn busybox_layer_has_the_binary_links_and_system_dirs() {
    let layer = &fixtures::busybox().layers[0];
    let paths: BTreeSet<String> = layer.paths().into_iter().collect();
    for p in [
        "bin/busybox",
        "etc/passwd",
        "etc/group",
        "tmp/",
        "root/",
        "proc/",
        "sys/",
        "dev/",
    ] {
        assert!(paths.contains(p), "missing {p}");
    }
    for applet in fixtures::APPLETS {
        assert!(
            paths.contains(&format!("bin/{applet}")),
            "missing applet {applet}"
        );
    }
    assert_eq!(
        layer.file("/bin/busybox").unwrap(),
        std::fs::read(fixtures::BUSYBOX).unwrap()
    );
    assert_eq!(
        String::from_utf8(layer.file("/etc/passwd").unwrap()).unwrap(),
        fixtures::PASSWD
    );
    // Sorted, and the same bytes on every build.
    let listed = layer.paths();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    let mut archive = tar::Archive::new(&layer.tar[..]);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        if &*entry.path_bytes() == b"tmp/" {
            assert_eq!(h.mode().unwrap(), 0o1777);
        }
        if &*entry.path_bytes() == b"bin/sh" {
            assert_eq!(h.entry_type(), tar::EntryType::Symlink);
            assert_eq!(&*entry.link_name_bytes().unwrap(), b"busybox");
        }
        assert_eq!(h.mtime().unwrap(), fixtures::tarball::MTIME);
    }
}

#[test]
fn multilayer_tars_hold_the_whiteout_and_the_opaque_marker() {
    let image = fixtures::multilayer();
    let layer2 = image.layers[1].paths();
    let layer3 = image.layers[2].paths();
    assert!(layer2.contains(&"data/deleted.txt".to_string()));
    assert!(layer2.contains(&"opaque/old.txt".to_string()));
    assert!(layer2.contains(&"opaque/sub/nested.txt".to_string()));
    assert!(
        layer3.contains(&fixtures::MULTILAYER_WHITEOUT_ENTRY.to_string()),
        "{layer3:?}"
    );
    assert!(
        layer3.contains(&fixtures::MULTILAYER_OPAQUE_ENTRY.to_string()),
        "{layer3:?}"
    );
    assert!(layer3.contains(&"opaque/new.txt".to_string()));
    // The opaque marker comes before the directory's new content.
    let marker = layer3
        .iter()
        .position(|p| p == fixtures::MULTILAYER_OPAQUE_ENTRY)
        .unwrap();
    let new = layer3.iter().position(|p| p == "opaque/new.txt").unwrap();
    assert!(marker < new);
    // Whiteouts are empty regular files.
    let mut archive = tar::Archive::new(&image.layers[2].tar[..]);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.path_bytes().windows(4).any(|w| w == b".wh.") {
            assert_eq!(entry.header().entry_type(), tar::EntryType::Regular);
            assert_eq!(entry.header().size().unwrap(), 0);
        }
    }
    // Every zstd / uncompressed variant has the same tars, so the same diff IDs.
    assert_eq!(
        fixtures::multilayer_with(Compression::Zstd).diff_ids(),
        image.diff_ids()
    );
    assert_eq!(fixtures::multilayer_docker().diff_ids(), image.diff_ids());
}

#[test]
fn multilayer_applied_in_order_gives_the_expected_tree() {
    // A tiny reference applier over a map (whiteouts and opaque dirs as the OCI spec says),
    // to check that the MULTILAYER_* expectations match the layers.
    use std::collections::BTreeMap;
    use std::io::Read;
    let mut fs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for layer in &fixtures::multilayer().layers {
        let mut archive = tar::Archive::new(&layer.tar[..]);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = format!(
                "/{}",
                String::from_utf8_lossy(&entry.path_bytes()).trim_end_matches('/')
            );
            let (dir, name) = path.rsplit_once('/').unwrap();
            if name == ".wh..wh..opq" {
                let prefix = format!("{dir}/");
                fs.retain(|k, _| !k.starts_with(&prefix));
            } else if let Some(gone) = name.strip_prefix(".wh.") {
                let gone = format!("{dir}/{gone}");
                fs.retain(|k, _| *k != gone && !k.starts_with(&format!("{gone}/")));
            } else {
                let mut data = Vec::new();
                if entry.header().entry_type() == tar::EntryType::Link {
                    let target = format!(
                        "/{}",
                        String::from_utf8_lossy(&entry.link_name_bytes().unwrap())
                    );
                    data = fs[&target].clone();
                } else {
                    entry.read_to_end(&mut data).unwrap();
                }
                fs.insert(path, data);
            }
        }
    }
    for (path, content) in fixtures::MULTILAYER_FILES {
        assert_eq!(
            fs.get(*path)
                .map(|d| String::from_utf8_lossy(d).into_owned()),
            Some(content.to_string()),
            "{path}"
        );
    }
    for path in fixtures::MULTILAYER_ABSENT {
        assert!(!fs.contains_key(*path), "{path} should be gone");
    }
    let opaque: Vec<&str> = fs
        .keys()
        .filter_map(|k| k.strip_prefix(&format!("{}/", fixtures::MULTILAYER_OPAQUE_DIR)))
        .collect();
    assert_eq!(opaque, fixtures::MULTILAYER_OPAQUE_CONTENT);
    assert!(fs.contains_key("/bin/busybox"));
}

#[test]
fn multi_platform_index_points_at_two_distinguishable_images() {
    for (index, index_type, manifest_type) in [
        (
            fixtures::multi_platform(),
            blob::OCI_INDEX,
            blob::OCI_MANIFEST,
        ),
        (
            fixtures::multi_platform_docker(),
            blob::DOCKER_MANIFEST_LIST,
            blob::DOCKER_MANIFEST,
        ),
    ] {
        let v = index.index.json();
        assert_eq!(v["mediaType"], index_type);
        let entries = v["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        let host = Platform::host();
        let foreign = Platform::foreign();
        for (entry, platform) in entries.iter().zip([&foreign, &host]) {
            assert_eq!(entry["mediaType"], manifest_type);
            assert_eq!(
                entry["platform"]["architecture"],
                platform.architecture.as_str()
            );
            assert_eq!(entry["platform"]["os"], "linux");
            let image = index.image_for(platform).unwrap();
            assert_eq!(entry["digest"], image.manifest.digest.as_str());
            let marker = image
                .layers
                .last()
                .unwrap()
                .file(fixtures::PLATFORM_FILE)
                .unwrap();
            assert_eq!(String::from_utf8(marker).unwrap(), format!("{platform}\n"));
        }
        let host_image = index.host_image();
        assert!(host_image.layers[0].file("/bin/busybox").is_some());
        let foreign_image = index.image_for(&foreign).unwrap();
        assert!(foreign_image.layers[0].file("/bin/busybox").is_none());
        assert_ne!(host_image.manifest.digest, foreign_image.manifest.digest);
    }
    // The host entry of the OCI index is exactly the busybox fixture.
    assert_eq!(
        fixtures::multi_platform().host_image().manifest.digest,
        fixtures::busybox().manifest.digest
    );
    assert_eq!(fixtures::multi_platform().blobs().len(), 7);
}

#[test]
fn oci_layout_and_archives_hold_every_blob() {
    let dir = tempfile::tempdir().unwrap();
    let name = "docker.io/library/busybox:latest";
    for (label, fixture) in all_fixtures() {
        let out = dir.path().join(label);
        fixture.write_oci_layout(&out, Some(name)).unwrap();
        let index = layout::read_index(&out).unwrap();
        assert_eq!(index["schemaVersion"], 2);
        let top = &index["manifests"][0];
        assert_eq!(top["digest"], fixture.digest());
        assert_eq!(top["mediaType"], fixture.media_type());
        assert_eq!(top["annotations"][layout::ANNOTATION_IMAGE_NAME], name);
        assert_eq!(top["annotations"][layout::ANNOTATION_REF_NAME], "latest");
        assert!(out.join("oci-layout").is_file());
        for blob in fixture.blobs() {
            let path = out.join("blobs/sha256").join(blob::hex_of(&blob.digest));
            assert_eq!(
                sha256(&std::fs::read(&path).unwrap()),
                blob.digest,
                "{label}"
            );
        }

        let archive = fixture.oci_archive(Some(name));
        assert_eq!(archive, fixture.oci_archive(Some(name)), "deterministic");
        let paths = fixtures::tarball::list(&archive).unwrap();
        assert!(paths.contains(&"index.json".to_string()));
        assert!(paths.contains(&"oci-layout".to_string()));
        assert_eq!(
            paths
                .iter()
                .filter(|p| p.starts_with("blobs/sha256/") && !p.ends_with('/'))
                .count(),
            fixture.blobs().len()
        );
    }
}

#[test]
fn docker_archive_is_in_docker_save_format() {
    let image = fixtures::multilayer();
    let archive = image.docker_archive(&["example/multilayer:v1"]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &fixtures::tarball::read_file(&archive, "manifest.json")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let entry = &manifest[0];
    assert_eq!(
        entry["RepoTags"],
        serde_json::json!(["example/multilayer:v1"])
    );
    let config_name = entry["Config"].as_str().unwrap();
    let config = fixtures::tarball::read_file(&archive, config_name)
        .unwrap()
        .unwrap();
    assert_eq!(config, image.config.data);
    let layers = entry["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for (path, diff_id) in layers.iter().zip(image.diff_ids()) {
        let tar = fixtures::tarball::read_file(&archive, path.as_str().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(sha256(&tar), diff_id);
    }
    let repositories: serde_json::Value = serde_json::from_slice(
        &fixtures::tarball::read_file(&archive, "repositories")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(repositories["example/multilayer"]["v1"].is_string());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    fixtures::multi_platform()
        .write_docker_archive(&path, &["mp:latest"])
        .unwrap();
    let written = std::fs::read(&path).unwrap();
    let m: serde_json::Value = serde_json::from_slice(
        &fixtures::tarball::read_file(&written, "manifest.json")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    // A docker-archive of an index holds the host platform's image.
    assert_eq!(
        m[0]["Config"].as_str().unwrap(),
        format!("{}.json", blob::hex_of(&fixtures::busybox().config.digest))
    );
}

#[test]
fn fixtures_are_deterministic() {
    // Rebuilding gives the same digests (fixed mtimes, sorted entries, fixed gzip header).
    let a = fixtures::ImageBuilder::new("x")
        .layer(
            fixtures::busybox_entries().unwrap(),
            "berth fixture: busybox-static",
        )
        .build();
    assert_eq!(a.manifest.digest, fixtures::busybox().manifest.digest);
    let docker = fixtures::ImageBuilder::new("x")
        .format(Format::Docker)
        .layer(
            fixtures::busybox_entries().unwrap(),
            "berth fixture: busybox-static",
        )
        .build();
    assert_eq!(
        docker.manifest.digest,
        fixtures::busybox_docker().manifest.digest
    );
    assert_ne!(
        fixtures::busybox_docker().digest(),
        fixtures::busybox().digest()
    );
}

#[test]
fn split_reference_handles_hosts_with_ports() {
    assert_eq!(
        split_reference("127.0.0.1:5000/busybox"),
        ("127.0.0.1:5000/busybox", Some("latest"))
    );
}
