//! The Docker notes as one scripted scenario through `berthctl` against a real berthd:
//! pull, images, run -d, ps, logs -f, exec, stop, commit, save, rmi, load, run the loaded
//! image, export/import, rm; each step's output and exit code asserted. It has its own
//! berthd, registry, namespace, bridge, subnet and cgroup parent.

use berth_integration::world::{World, eventually};

#[tokio::test]
async fn docker_notes_scenario() {
    let w = World::new().await;
    let dir = w.scratch.path();

    // pull (done by World::new, again: idempotent) and images.
    let out = w.ctl(&["pull", "-q", &w.busybox]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let images = w.ok(&["images"]);
    assert!(images.starts_with("REPOSITORY"), "{images}");
    assert!(
        images.contains("busybox") && images.contains("v1"),
        "{images}"
    );

    // run -d: the ID; ps: the container, up.
    let id = w
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            &w.busybox,
            "sh",
            "-c",
            "echo hello from web; exec sleep 1000",
        ])
        .trim()
        .to_string();
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    eventually("web to log", || {
        w.ok(&["logs", "web"]) == "hello from web\n"
    });
    let ps = w.ok(&["ps"]);
    let line = ps.lines().find(|l| l.contains("web")).unwrap_or_default();
    assert!(line.starts_with(&id[..12]) && line.contains("Up "), "{ps}");

    // logs -f follows until the container ends.
    w.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        &w.busybox,
        "sh",
        "-c",
        "for i in 1 2 3; do echo tick $i; sleep 0.2; done",
    ]);
    assert_eq!(w.ok(&["logs", "-f", "ticker"]), "tick 1\ntick 2\ntick 3\n");

    // exec: output and docker's exit codes.
    assert_eq!(
        w.ok(&[
            "exec",
            "web",
            "sh",
            "-c",
            "echo changed > /marker; cat /marker"
        ]),
        "changed\n"
    );
    assert_eq!(w.ctl(&["exec", "web", "false"]).status.code(), Some(1));
    assert_eq!(
        w.ctl(&["exec", "web", "no-such-command"]).status.code(),
        Some(127)
    );

    // stop: the name echoed; ps -a shows it exited.
    assert_eq!(w.ok(&["stop", "-t", "1", "web"]).trim(), "web");
    let ps = w.ok(&["ps", "-a"]);
    let line = ps.lines().find(|l| l.contains("web")).unwrap_or_default();
    assert!(line.contains("Exited ("), "{ps}");

    // commit the stopped container; save the image; rmi; load; run the loaded image.
    let image_id = w
        .ok(&["commit", "-m", "notes", "web", "notes:v1"])
        .trim()
        .to_string();
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    let archive = dir.join("notes.tar");
    w.ok(&["save", "-o", &archive.display().to_string(), "notes:v1"]);
    assert!(std::fs::metadata(&archive).unwrap().len() > 0);
    let rmi = w.ok(&["rmi", "notes:v1"]);
    assert!(
        rmi.contains("Untagged:") && rmi.contains("notes:v1"),
        "{rmi}"
    );
    assert!(!w.ok(&["images"]).contains("notes"));
    assert_eq!(
        w.ctl(&["run", "--rm", "--pull", "never", "notes:v1"])
            .status
            .code(),
        Some(125)
    );
    let load = w.ok(&["load", "-i", &archive.display().to_string()]);
    assert!(
        load.contains("Loaded image") && load.contains("notes:v1"),
        "{load}"
    );
    assert!(w.ok(&["images"]).contains("notes"));
    assert_eq!(
        w.ok(&["run", "--rm", "notes:v1", "cat", "/marker"]),
        "changed\n"
    );

    // export the container, import it as an image, run it.
    let flat = dir.join("web.tar");
    w.ok(&["export", "-o", &flat.display().to_string(), "web"]);
    let flat_id = w
        .ok(&["import", &flat.display().to_string(), "flat:v1"])
        .trim()
        .to_string();
    assert!(flat_id.starts_with("sha256:"), "{flat_id}");
    assert_eq!(
        w.ok(&["run", "--rm", "flat:v1", "cat", "/marker"]),
        "changed\n"
    );

    // exit codes of run: the container's own, 127 for a missing command.
    assert_eq!(
        w.ctl(&["run", "--rm", &w.busybox, "sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        w.ctl(&["run", "--rm", &w.busybox, "no-such-command"])
            .status
            .code(),
        Some(127)
    );

    // rm: the names echoed, nothing left.
    let rm = w.ok(&["rm", "web", "ticker"]);
    assert_eq!(rm, "web\nticker\n");
    assert_eq!(w.ok(&["ps", "-a", "-q"]).trim(), "");
    assert_eq!(w.ctl(&["rm", "web"]).status.code(), Some(1));
}
