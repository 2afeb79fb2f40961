//! Isolation of berth's containers, with real containers: the default hardening
//! (capabilities, seccomp, masked and read-only paths, devices), the docker-style
//! options, and regression tests for the known escape classes (runtime binary
//! overwrite, leaked descriptors, mount-target symlinks, exec with more privileges).
//! Needs root and cgroups.

#[macro_use]
mod common;

use berth_api::berth::shim::v1 as pb;
use berth_shim::spec_defaults::SecurityOptions;
use common::{Fixture, collect};
use serde_json::json;

/// Docker's 14 default capabilities as /proc/self/status shows them.
const DOCKER_CAPS: &str = "00000000a80425fb";

/// Runs the container already written to the fixture's config.json to its exit:
/// (status, stdout, stderr).
async fn run(f: &mut Fixture) -> (u32, String, String) {
    f.run_written().await
}

/// `key:value` lines of a /proc/self/status dump.
fn status_field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map_or("", str::trim)
}

fn host_hostname() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[tokio::test]
async fn default_container_is_confined() {
    need_root!();
    let mut f = Fixture::new("confined");
    let before = host_hostname();
    let script = r#"
        cat /proc/self/status
        echo "---"
        mount -t tmpfs none /tmp 2>/dev/null && echo mount:ok || echo mount:denied
        touch /tmp/x.ko; insmod /tmp/x.ko 2>/dev/null && echo insmod:ok || echo insmod:denied
        hostname evil-host 2>/dev/null && echo hostname:ok || echo hostname:denied
        date -s 2001-01-01 2>&1 | grep -q "can't set date" && echo date:denied || echo date:ok
        unshare -m true 2>/dev/null && echo unshare:ok || echo unshare:denied
        echo procs:$(ls /proc | grep -c '^[0-9]')
        echo timers:$(wc -c < /proc/timer_list)
        echo firmware:$(ls /sys/firmware | wc -l)
        echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sysw:ok || echo sysw:denied
        echo keys:$(cat /proc/keys 2>/dev/null | wc -l)
        mknod /tmp/sda b 8 0 && (head -c1 /tmp/sda >/dev/null 2>&1 && echo blk:ok || echo blk:denied)
        head -c1 /dev/zero | wc -c
    "#;
    f.write_hardened(&["sh", "-c", script], &SecurityOptions::default(), |s| {
        s["process"]["noNewPrivileges"] = json!(false);
    });
    let (status, out, err) = run(&mut f).await;
    assert_eq!(status, 0, "{out}\n{err}");
    let (st, rest) = out.split_once("---\n").unwrap();
    assert_eq!(status_field(st, "Seccomp"), "2", "{st}");
    assert_eq!(status_field(st, "CapEff"), DOCKER_CAPS);
    assert_eq!(status_field(st, "CapPrm"), DOCKER_CAPS);
    assert_eq!(status_field(st, "CapBnd"), DOCKER_CAPS);
    assert_eq!(status_field(st, "CapInh"), "0000000000000000");
    assert_eq!(status_field(st, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(st, "NoNewPrivs"), "0");
    for want in [
        "mount:denied",
        "insmod:denied",
        "hostname:denied",
        "date:denied",
        "unshare:denied",
        "timers:0",
        "firmware:0",
        "sysw:denied",
        "keys:0",
        "blk:denied",
    ] {
        assert!(
            rest.lines().any(|l| l == want),
            "want {want}:\n{rest}\n{err}"
        );
    }
    let procs: u32 = rest
        .lines()
        .find_map(|l| l.strip_prefix("procs:"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(procs <= 4, "container sees {procs} processes:\n{rest}");
    assert!(rest.ends_with("1\n"), "/dev/zero unreadable:\n{rest}");
    assert_eq!(host_hostname(), before);
}

#[tokio::test]
async fn privileged_gets_what_the_host_has() {
    need_root!();
    let mut f = Fixture::new("priv");
    let opts = SecurityOptions {
        privileged: true,
        ..SecurityOptions::default()
    };
    f.write_hardened(&["cat", "/proc/self/status"], &opts, |_| {});
    let (status, out, err) = run(&mut f).await;
    assert_eq!(status, 0, "{err}");
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(status_field(&out, "CapEff"), status_field(&host, "CapBnd"));
    assert_eq!(status_field(&out, "CapBnd"), status_field(&host, "CapBnd"));
    assert_eq!(status_field(&out, "Seccomp"), "0");
}

#[tokio::test]
async fn cap_add_drop_and_no_new_privileges() {
    need_root!();
    let mut f = Fixture::new("capopts");
    let mut opts = SecurityOptions {
        cap_add: vec!["NET_ADMIN".into(), "SYS_RESOURCE".into()],
        cap_drop: vec!["CHOWN".into()],
        ..SecurityOptions::default()
    };
    opts.parse_security_opt("no-new-privileges").unwrap();
    f.write_hardened(&["cat", "/proc/self/status"], &opts, |_| {});
    let (status, out, err) = run(&mut f).await;
    assert_eq!(status, 0, "{err}");
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bnd = u64::from_str_radix(status_field(&host, "CapBnd"), 16).unwrap();
    // Docker's set, less CHOWN, plus NET_ADMIN and (when the host has it) SYS_RESOURCE.
    let want = (0xa804_25fb_u64 & !1) | (1 << 12) | ((1 << 24) & host_bnd);
    assert_eq!(status_field(&out, "CapEff"), format!("{want:016x}"));
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    assert_eq!(status_field(&out, "Seccomp"), "2");
}

#[tokio::test]
async fn seccomp_unconfined_read_only_root_and_sysctls() {
    need_root!();
    let mut f = Fixture::new("ro");
    let mut opts = SecurityOptions {
        read_only: true,
        ..SecurityOptions::default()
    };
    opts.parse_security_opt("seccomp=unconfined").unwrap();
    opts.sysctls
        .insert("net.ipv4.ip_unprivileged_port_start".into(), "80".into());
    let script = "grep Seccomp: /proc/self/status; touch /x 2>/dev/null && echo root:rw || echo root:ro; cat /proc/sys/net/ipv4/ip_unprivileged_port_start";
    f.write_hardened(&["sh", "-c", script], &opts, |_| {});
    let (status, out, err) = run(&mut f).await;
    assert_eq!(status, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].split_whitespace().nth(1), Some("0"));
    assert_eq!(lines[1], "root:ro");
    assert_eq!(lines[2], "80");
}

#[tokio::test]
async fn host_sysctls_are_refused_at_create() {
    need_root!();
    let mut f = Fixture::new("sysctl");
    f.write_spec(&["true"], |s| {
        s["linux"]["sysctl"] = json!({"kernel.panic": "1"});
    });
    let c = f.start_shim().await;
    let err = c.create(f.create_request()).await.unwrap_err().to_string();
    assert!(
        err.contains("kernel.panic") && err.contains("not namespaced"),
        "{err}"
    );
    c.shutdown(false).await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

#[tokio::test]
async fn custom_profile_with_argument_filter() {
    need_root!();
    let mut f = Fixture::new("profile");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profile.json");
    // Everything allowed except mkdir (EROFS) and chmod to mode 0700 (EPERM).
    std::fs::write(
        &file,
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":30},
                        {"names":["chmod"],"action":"SCMP_ACT_ERRNO","errnoRet":1,
                         "args":[{"index":1,"value":448,"op":"SCMP_CMP_EQ"}]},
                        {"names":["fchmodat"],"action":"SCMP_ACT_ERRNO","errnoRet":1,
                         "args":[{"index":2,"value":448,"op":"SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    let mut opts = SecurityOptions::default();
    opts.parse_security_opt(&format!("seccomp={}", file.display()))
        .unwrap();
    let script = "mkdir /tmp/d 2>&1; touch /tmp/f; \
        chmod 755 /tmp/f && echo 755:ok || echo 755:denied; \
        chmod 700 /tmp/f 2>/dev/null && echo 700:ok || echo 700:denied; \
        grep Seccomp: /proc/self/status";
    f.write_hardened(&["sh", "-c", script], &opts, |_| {});
    let (status, out, err) = run(&mut f).await;
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(
        out.contains("755:ok") && out.contains("700:denied"),
        "{out}"
    );
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

/// Starts a container running `sleep`, execs `process` in it and returns its output.
async fn exec_output(f: &mut Fixture, process: serde_json::Value) -> (u32, String) {
    let c = f.start_shim().await;
    c.create(f.create_request()).await.unwrap();
    c.start("").await.unwrap();
    let out = f.fifo("exec-out");
    c.exec(pb::ExecRequest {
        exec_id: "e1".into(),
        process: serde_json::to_vec(&process).unwrap(),
        stdout: out.display().to_string(),
        stderr: out.display().to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
    let text = collect(&out);
    c.start("e1").await.unwrap();
    let status = c.wait("e1").await.unwrap().exit_status;
    let text = text.await.unwrap();
    c.kill("", 9, true).await.unwrap();
    c.wait("").await.unwrap();
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
    (status, text)
}

#[tokio::test]
async fn exec_gets_the_containers_restrictions_never_more() {
    need_root!();
    let mut f = Fixture::new("execcaps");
    let mut opts = SecurityOptions::default();
    opts.parse_security_opt("no-new-privileges").unwrap();
    f.write_hardened(&["sleep", "100"], &opts, |_| {});
    // The exec asks for every capability and no no_new_privileges.
    let all: Vec<String> = berth_shim::caps::ALL
        .iter()
        .map(|c| berth_shim::caps::name(*c))
        .collect();
    let script = r#"cat /proc/self/status; echo ---
        for n in ipc mnt net pid uts cgroup; do
          [ "$(readlink /proc/self/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] && echo ns:$n:same || echo ns:$n:differs
        done
        [ "$(cat /proc/self/cgroup)" = "$(cat /proc/1/cgroup)" ] && echo cgroup:same || echo cgroup:differs
        mount -t tmpfs none /tmp 2>/dev/null && echo mount:ok || echo mount:denied"#;
    let process = json!({
        "user": {"uid": 0, "gid": 0},
        "args": ["sh", "-c", script],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "noNewPrivileges": false,
        "capabilities": {"bounding": all, "effective": all, "permitted": all}
    });
    let (status, out) = exec_output(&mut f, process).await;
    assert_eq!(status, 0, "{out}");
    let (st, rest) = out.split_once("---\n").unwrap();
    assert_eq!(status_field(st, "CapEff"), DOCKER_CAPS, "{st}");
    assert_eq!(status_field(st, "CapBnd"), DOCKER_CAPS);
    assert_eq!(status_field(st, "Seccomp"), "2");
    assert_eq!(status_field(st, "NoNewPrivs"), "1");
    for n in ["ipc", "mnt", "net", "pid", "uts", "cgroup"] {
        assert!(rest.contains(&format!("ns:{n}:same")), "{rest}");
    }
    assert!(rest.contains("cgroup:same"), "{rest}");
    assert!(rest.contains("mount:denied"), "{rest}");
}

#[tokio::test]
async fn no_host_descriptor_reaches_the_container() {
    need_root!();
    let mut f = Fixture::new("fds");
    // The init process and an exec both list their descriptors.
    f.write_hardened(
        &["sh", "-c", "ls /proc/self/fd; sleep 100"],
        &SecurityOptions::default(),
        |_| {},
    );
    let c = f.start_shim().await;
    let out = f.fifo("out");
    let mut req = f.create_request();
    req.stdout = out.display().to_string();
    c.create(req).await.unwrap();
    let init_out = collect(&out);
    c.start("").await.unwrap();
    let eout = f.fifo("exec-out");
    c.exec(pb::ExecRequest {
        exec_id: "e1".into(),
        process: serde_json::to_vec(&json!({
            "user": {"uid": 0, "gid": 0}, "args": ["ls", "/proc/self/fd"],
            "env": ["PATH=/bin"], "cwd": "/"
        }))
        .unwrap(),
        stdout: eout.display().to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
    let exec_out = collect(&eout);
    c.start("e1").await.unwrap();
    assert_eq!(c.wait("e1").await.unwrap().exit_status, 0);
    // ls has its own directory open as 3.
    assert_eq!(exec_out.await.unwrap(), "0\n1\n2\n3\n");
    // A working directory or executable through a descriptor of the shim is refused.
    for (i, (cwd, arg0)) in [
        ("/proc/self/fd/3", "true"),
        ("/proc/self/fd/4", "true"),
        ("/proc/self/fd/7", "true"),
        ("/", "/proc/self/fd/3/../../../bin/true"),
        ("/", "/proc/self/exe"),
    ]
    .into_iter()
    .enumerate()
    {
        let res = c
            .exec(pb::ExecRequest {
                exec_id: format!("bad{i}"),
                process: serde_json::to_vec(&json!({
                    "user": {"uid": 0, "gid": 0}, "args": [arg0],
                    "env": ["PATH=/bin"], "cwd": cwd
                }))
                .unwrap(),
                ..Default::default()
            })
            .await;
        match res {
            Err(_) => {}
            Ok(_) => {
                let started = c.start(&format!("bad{i}")).await;
                assert!(started.is_err(), "exec with cwd {cwd} / {arg0} ran");
            }
        }
    }
    c.kill("", 9, true).await.unwrap();
    c.wait("").await.unwrap();
    assert_eq!(init_out.await.unwrap(), "0\n1\n2\n3\n");
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
}

#[tokio::test]
async fn mount_targets_cannot_leave_the_rootfs() {
    need_root!();
    let mut f = Fixture::new("symlink");
    // A host directory, and a symlink in the rootfs pointing at it by its host path.
    let host_dir = f.dir.path().join("host-dir");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("marker"), "host").unwrap();
    std::os::unix::fs::symlink(&host_dir, f.rootfs_src.join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", f.rootfs_src.join("up")).unwrap();
    let vol = f.dir.path().join("volume");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("volfile"), "vol").unwrap();
    let script = "ls /evil/vol; ls /up/t; echo host:$(cat /evil/marker 2>/dev/null)";
    f.write_hardened(&["sh", "-c", script], &SecurityOptions::default(), |s| {
        let mounts = s["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/evil/vol", "type": "bind",
                           "source": vol.display().to_string(), "options": ["rbind", "ro"]}));
        mounts.push(json!({"destination": "/up/t/x", "type": "tmpfs", "source": "tmpfs"}));
    });
    let (status, out, err) = run(&mut f).await;
    assert_eq!(status, 0, "{out}\n{err}");
    // Inside, the links resolve within the rootfs: the volume is where /evil leads.
    assert_eq!(out, "volfile\nx\nhost:\n", "{err}");
    // Nothing was created or mounted in the host directory or above the rootfs.
    let entries: Vec<_> = std::fs::read_dir(&host_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["marker"]);
    assert!(!std::path::Path::new("/t").exists());
    let inside = f
        .rootfs_src
        .join(host_dir.strip_prefix("/").unwrap())
        .join("vol");
    assert!(
        inside.is_dir(),
        "the mount point was not made inside the rootfs"
    );
}

#[tokio::test]
async fn swapped_symlink_race_stays_inside() {
    need_root!();
    let mut f = Fixture::new("race");
    let host_dir = f.dir.path().join("host-target");
    std::fs::create_dir_all(&host_dir).unwrap();
    let vol = f.dir.path().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    f.write_spec(&["true"], |s| {
        s["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data/sub/mnt", "type": "bind",
            "source": vol.display().to_string(), "options": ["rbind"]}));
    });
    // A thread swaps rootfs/data between a directory and a link to the host directory.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let data = f.rootfs_src.join("data");
        let link = f.rootfs_src.join("data-link");
        let real = f.rootfs_src.join("data-dir");
        let host_dir = host_dir.clone();
        std::fs::create_dir_all(real.join("sub")).unwrap();
        std::os::unix::fs::symlink(&host_dir, &link).unwrap();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let from = if n.is_multiple_of(2) { &link } else { &real };
                // rename(2) over the name: atomic replacement.
                let tmp = data.with_extension("tmp");
                let _ = std::fs::remove_file(&tmp);
                if from == &link {
                    let _ = std::os::unix::fs::symlink(&host_dir, &tmp);
                    let _ = std::fs::rename(&tmp, &data);
                } else if std::fs::symlink_metadata(&data).is_ok_and(|m| m.is_symlink()) {
                    let _ = std::fs::remove_file(&data);
                    let _ = std::fs::create_dir(&data);
                }
                n += 1;
                std::thread::yield_now();
            }
        })
    };
    for i in 0..15 {
        let c = f.start_shim().await;
        if c.create(f.create_request()).await.is_ok() {
            let _ = c.start("").await;
            let _ = c.wait("").await;
            let _ = c.delete("").await;
        } else {
            let _ = c.shutdown(true).await;
        }
        assert!(f.wait_shim_exit().await, "iteration {i}");
        let escaped: Vec<_> = std::fs::read_dir(&host_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(escaped.is_empty(), "created on the host: {escaped:?}");
        let _ = std::fs::remove_file(&f.socket);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    f.assert_clean();
}

/// Makes the fixture's directories traversable by a remapped root (as berthd's state
/// directories are) and writes a user-namespaced spec running `script`.
fn userns_fixture(name: &str, script: &str) -> Fixture {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(name);
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let range = berth_shim::spec_defaults::IdRange {
        container: 0,
        host: 100_000,
        size: 65_536,
    };
    f.write_hardened(&["sh", "-c", script], &SecurityOptions::default(), |s| {
        let mut spec: oci_spec::runtime::Spec = serde_json::from_value(s.clone()).unwrap();
        berth_shim::spec_defaults::with_user_namespace(&mut spec, &[range], &[range]);
        *s = serde_json::to_value(&spec).unwrap();
    });
    f
}

const USERNS_SCRIPT: &str = "id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox; \
    touch /made-inside; stat -c %u:%g /made-inside; grep -E '^(CapEff|Seccomp):' /proc/self/status; \
    hostname";

fn check_userns_output(out: &str, err: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7, "{out}\n{err}");
    assert_eq!(lines[0], "0");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(lines[2], "0", "rootfs not owned by the container's root");
    assert_eq!(lines[3], "0:0");
    assert_eq!(lines[4], format!("CapEff:\t{DOCKER_CAPS}"));
    assert_eq!(lines[5], "Seccomp:\t2");
    assert_eq!(lines[6], "berth-box");
}

#[tokio::test]
async fn user_namespace_with_shifted_rootfs() {
    need_root!();
    use std::os::unix::fs::MetadataExt;
    let mut f = userns_fixture("userns-shift", USERNS_SCRIPT);
    let range = berth_shim::spec_defaults::IdRange {
        container: 0,
        host: 100_000,
        size: 65_536,
    };
    berth_shim::idshift::shift_tree(&f.rootfs_src, &[range], &[range]).unwrap();
    let (status, out, err) = run(&mut f).await;
    assert_eq!(status, 0, "{out}\n{err}");
    check_userns_output(&out, &err);
    // On the host, what the container's root made belongs to the mapped id.
    let m = std::fs::metadata(f.rootfs_src.join("made-inside")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100_000, 100_000));
}

#[tokio::test]
async fn user_namespace_with_idmapped_rootfs() {
    need_root!();
    use std::os::unix::fs::MetadataExt;
    if !berth_shim::idshift::idmap_supported(std::path::Path::new("/tmp")) {
        eprintln!("skipped: the kernel cannot idmap this filesystem");
        return;
    }
    let mut f = userns_fixture("userns-idmap", USERNS_SCRIPT);
    let (status, out, err) = run(&mut f).await;
    assert_eq!(status, 0, "{out}\n{err}");
    check_userns_output(&out, &err);
    // The rootfs on disk keeps its ids: the mount maps them.
    let m = std::fs::metadata(f.rootfs_src.join("made-inside")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
}

#[tokio::test]
async fn exec_joins_the_user_namespace() {
    need_root!();
    let range = berth_shim::spec_defaults::IdRange {
        container: 0,
        host: 100_000,
        size: 65_536,
    };
    let mut f = userns_fixture("userns-exec", "sleep 100");
    berth_shim::idshift::shift_tree(&f.rootfs_src, &[range], &[range]).unwrap();
    let script = "id -u; cat /proc/self/uid_map; [ \"$(readlink /proc/self/ns/user)\" = \"$(readlink /proc/1/ns/user)\" ] && echo same-userns";
    let (status, out) = exec_output(
        &mut f,
        json!({"user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", script],
               "env": ["PATH=/bin"], "cwd": "/"}),
    )
    .await;
    assert_eq!(status, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert!(lines[1].contains("100000"), "{out}");
    assert_eq!(lines[2], "same-userns");
}

/// Runs an attack from inside a container while an exec'd process (shim code until it
/// is started) sits in its pid namespace: every /proc/PID/exe the container can see is
/// read and appended to. Returns the attack's output.
async fn attack_exe(f: &mut Fixture) -> String {
    let c = f.start_shim().await;
    c.create(f.create_request()).await.unwrap();
    c.start("").await.unwrap();
    // Created, not started: a clone of the shim waits inside the container.
    c.exec(pb::ExecRequest {
        exec_id: "waiting".into(),
        process: serde_json::to_vec(&json!({"user": {"uid": 0, "gid": 0},
            "args": ["true"], "env": ["PATH=/bin"], "cwd": "/"}))
        .unwrap(),
        ..Default::default()
    })
    .await
    .unwrap();
    let script = r#"for d in /proc/[0-9]*; do p=${d#/proc/}; [ $p = $$ ] && continue
        t=$(readlink $d/exe 2>/dev/null || echo unreadable)
        if echo x >> $d/exe 2>/dev/null; then w=written; else w=refused; fi
        echo "$p|$t|$w"; done"#;
    let out = f.fifo("attack-out");
    c.exec(pb::ExecRequest {
        exec_id: "attack".into(),
        process: serde_json::to_vec(&json!({"user": {"uid": 0, "gid": 0},
            "args": ["sh", "-c", script], "env": ["PATH=/bin"], "cwd": "/"}))
        .unwrap(),
        stdout: out.display().to_string(),
        ..Default::default()
    })
    .await
    .unwrap();
    let text = collect(&out);
    c.start("attack").await.unwrap();
    assert_eq!(c.wait("attack").await.unwrap().exit_status, 0);
    let text = text.await.unwrap();
    c.kill("", 9, true).await.unwrap();
    c.wait("").await.unwrap();
    c.delete("").await.unwrap();
    assert!(f.wait_shim_exit().await);
    f.assert_clean();
    text
}

#[tokio::test]
async fn runtime_binary_cannot_be_overwritten() {
    need_root!();
    for privileged in [false, true] {
        let mut f = Fixture::new(if privileged { "exe-priv" } else { "exe" });
        // The shim runs from a sealed copy of a private copy of its binary, as berthd
        // starts it: if protection failed, only the private copy could be harmed.
        let copy = f.dir.path().join("berth-shim-copy");
        std::fs::copy(env!("CARGO_BIN_EXE_berth-shim"), &copy).unwrap();
        let before = std::fs::read(&copy).unwrap();
        let sealed = berth_shim::sealed_exe::SealedExe::from_path(&copy).unwrap();
        f.shim_exe = sealed.path();
        let opts = SecurityOptions {
            privileged,
            ..SecurityOptions::default()
        };
        f.write_hardened(&["sleep", "100"], &opts, |_| {});
        let out = attack_exe(&mut f).await;
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() >= 2, "{out}");
        for l in &lines {
            let parts: Vec<&str> = l.split('|').collect();
            let (target, result) = (parts[1], parts[2]);
            if target.contains("berth-shim") || target == "unreadable" {
                assert_eq!(result, "refused", "privileged={privileged}: {out}");
            }
            assert!(
                !target.contains(copy.to_str().unwrap()),
                "the binary on disk is reachable: {out}"
            );
        }
        if privileged {
            // With every capability the waiting child's exe can be read: it is the
            // sealed memfd.
            assert!(out.contains("memfd:berth-shim"), "{out}");
        } else {
            // Otherwise the waiting child is not even readable (non-dumpable).
            assert!(out.contains("|unreadable|"), "{out}");
        }
        assert_eq!(std::fs::read(&copy).unwrap(), before);
        drop(sealed);
    }
}

/// cgroup v2 device rules as an eBPF program. This machine is cgroup v1, but its
/// hybrid layout has a cgroup2 hierarchy (`/sys/fs/cgroup/unified`) whose device
/// programs the kernel runs too: the program is tested there, on a process moved into
/// a cgroup of it. Skipped where no cgroup2 hierarchy is mounted.
#[test]
fn cgroup_v2_device_program() {
    need_root!();
    let base = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| {
            p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists()
                || p.join("cgroup.procs").exists() && p.ends_with("unified")
        });
    let Some(base) = base else {
        eprintln!("skipped: no cgroup2 hierarchy");
        return;
    };
    let dir = base.join(format!("berth-devtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let rule =
        |allow: bool, typ: Option<&str>, major: Option<i64>, minor: Option<i64>, access: &str| {
            let mut v = json!({"allow": allow, "access": access});
            if let Some(t) = typ {
                v["type"] = json!(t);
            }
            if let Some(m) = major {
                v["major"] = json!(m);
            }
            if let Some(m) = minor {
                v["minor"] = json!(m);
            }
            serde_json::from_value::<oci_spec::runtime::LinuxDeviceCgroup>(v).unwrap()
        };
    let probe = |dir: &std::path::Path| -> String {
        let script = format!(
            "echo $$ > {}/cgroup.procs
             head -c1 /dev/null >/dev/null 2>&1 && echo null:ok || echo null:denied
             head -c1 /dev/zero 2>/dev/null | wc -c | sed 's/^/zero-read:/'
             (echo x > /dev/zero) 2>/dev/null && echo zero-write:ok || echo zero-write:denied
             head -c1 /dev/full >/dev/null 2>&1 && echo full:ok || echo full:denied",
            dir.display()
        );
        let out = std::process::Command::new("/bin/busybox")
            .args(["sh", "-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let rules = [
        rule(false, None, None, None, "rwm"),
        rule(true, Some("c"), Some(1), Some(3), "rwm"),
        rule(true, Some("c"), Some(1), Some(5), "r"),
    ];
    berth_shim::runtime::cgroups::apply_device_program(&dir, &rules).unwrap();
    let out = probe(&dir);
    assert_eq!(
        out, "null:ok\nzero-read:1\nzero-write:denied\nfull:denied\n",
        "{out}"
    );
    // An update replaces the program: now /dev/full for reading too, /dev/zero fully.
    let rules = [
        rule(false, None, None, None, "rwm"),
        rule(true, Some("c"), Some(1), None, "rw"),
        rule(false, Some("c"), Some(1), Some(7), "w"),
    ];
    berth_shim::runtime::cgroups::apply_device_program(&dir, &rules).unwrap();
    let out = probe(&dir);
    assert_eq!(
        out, "null:ok\nzero-read:1\nzero-write:ok\nfull:ok\n",
        "{out}"
    );
}
