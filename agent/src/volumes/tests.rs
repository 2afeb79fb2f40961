use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use super::*;

fn subsystem() -> (tempfile::TempDir, Volumes) {
    let dir = tempfile::tempdir().unwrap();
    let md = Arc::new(Metadata::open(&dir.path().join("meta.redb")).unwrap());
    let v = Volumes::open(md, dir.path()).unwrap();
    (dir, v)
}

#[test]
fn names() {
    assert!(valid_name("data"));
    assert!(valid_name("a1_b.c-d"));
    assert!(!valid_name("a"));
    assert!(!valid_name("-ab"));
    assert!(!valid_name("a/b"));
    assert!(!valid_name(""));
}

#[test]
fn create_is_idempotent_and_makes_the_directory() {
    let (dir, vols) = subsystem();
    let v = vols
        .create(VolumeCreate {
            name: "data".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(v.mountpoint, dir.path().join("volumes/data/_data"));
    assert!(v.mountpoint.is_dir());
    assert!(!v.anonymous);
    let again = vols
        .create(VolumeCreate {
            name: "data".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(again.created_at, v.created_at);
    let anon = vols.create(VolumeCreate::default()).unwrap();
    assert_eq!(anon.name.len(), 64);
    assert!(anon.anonymous);
    assert_eq!(vols.list().unwrap().len(), 2);
    assert!(matches!(
        vols.create(VolumeCreate {
            name: "x".into(),
            ..Default::default()
        }),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        vols.create(VolumeCreate {
            name: "nfs".into(),
            driver: "nfs".into(),
            ..Default::default()
        }),
        Err(Error::Unimplemented(_))
    ));
}

#[test]
fn in_use_volumes_are_not_removed() {
    let (_dir, vols) = subsystem();
    let (v, created) = vols.acquire("shared", "ns/c1").unwrap();
    assert!(created);
    let (_, created) = vols.acquire("shared", "ns/c2").unwrap();
    assert!(!created);
    let err = vols.remove("shared").unwrap_err().to_string();
    assert!(err.contains("in use") && err.contains("ns/c1"), "{err}");
    vols.release("shared", "ns/c1", true).unwrap();
    vols.release("shared", "ns/c2", true).unwrap();
    // A named volume stays after its last user.
    assert!(v.mountpoint.is_dir());
    vols.remove("shared").unwrap();
    assert!(!v.mountpoint.exists());
    assert!(matches!(vols.remove("shared"), Err(Error::NotFound(_))));
}

#[test]
fn anonymous_volumes_go_with_their_container() {
    let (_dir, vols) = subsystem();
    let a = vols.acquire_anonymous("ns/c1").unwrap();
    vols.release(&a.name, "ns/c1", false).unwrap();
    assert!(vols.get(&a.name).is_ok(), "kept without -v");
    vols.acquire(&a.name, "ns/c2").unwrap();
    vols.release(&a.name, "ns/c2", true).unwrap();
    assert!(matches!(vols.get(&a.name), Err(Error::NotFound(_))));
    assert!(!a.mountpoint.exists());
}

#[test]
fn prune_spares_named_and_used_volumes() {
    let (_dir, vols) = subsystem();
    let anon = vols.create(VolumeCreate::default()).unwrap();
    vols.create(VolumeCreate {
        name: "named".into(),
        ..Default::default()
    })
    .unwrap();
    vols.acquire("busy", "ns/c").unwrap();
    let (removed, _) = vols.prune(false, |_| false).unwrap();
    assert_eq!(removed, vec![anon.name.clone()]);
    let (removed, _) = vols.prune(true, |_| false).unwrap();
    assert_eq!(removed, vec!["named".to_string()]);
    assert_eq!(vols.list().unwrap().len(), 1);
}

#[test]
fn populate_copies_into_an_empty_volume_only() {
    let (dir, vols) = subsystem();
    let src = dir.path().join("image-content");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/file"), b"from the image").unwrap();
    std::fs::set_permissions(src.join("sub/file"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
    let (v, _) = vols.acquire("data", "ns/c").unwrap();
    assert!(vols.populate("data", &src).unwrap());
    assert_eq!(
        std::fs::read(v.mountpoint.join("sub/file")).unwrap(),
        b"from the image"
    );
    let mode = std::fs::metadata(v.mountpoint.join("sub/file"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_link(v.mountpoint.join("link")).unwrap(),
        std::path::PathBuf::from("/etc/passwd")
    );
    std::fs::write(src.join("sub/file"), b"changed").unwrap();
    assert!(!vols.populate("data", &src).unwrap(), "not empty any more");
    assert!(!vols.populate("data", &dir.path().join("missing")).unwrap());
}
