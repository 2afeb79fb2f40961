use super::*;
use crate::runtime::seccomp::{self, bpf};

fn spec_with_namespaces() -> Spec {
    serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["sh"]},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                                 {"type": "uts"}, {"type": "mount"}]}
    }))
    .unwrap()
}

fn caps_of(spec: &Spec) -> HashSet<Capability> {
    spec.process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .clone()
        .unwrap()
}

#[test]
fn defaults_are_dockers() {
    let mut spec = spec_with_namespaces();
    apply(&mut spec, &SecurityOptions::default()).unwrap();
    let caps = caps_of(&spec);
    assert_eq!(caps.len(), 14);
    assert!(caps.contains(&Capability::NetBindService));
    assert!(!caps.contains(&Capability::SysAdmin));
    let p = spec.process().as_ref().unwrap();
    assert!(p.capabilities().as_ref().unwrap().inheritable().is_none());
    assert_eq!(p.no_new_privileges(), None);
    let linux = spec.linux().as_ref().unwrap();
    assert!(
        linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string())
    );
    assert!(
        linux
            .readonly_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/sys".to_string())
    );
    let devices = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(!devices[0].allow());
    assert_eq!(devices.len(), 13);
    let sec = linux.seccomp().as_ref().unwrap();
    assert_eq!(sec.default_action(), LinuxSeccompAction::ScmpActErrno);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn default_profile_in_effect() {
    let x = seccomp::AUDIT_ARCH_X86_64;
    let nr = |n: &str| seccomp::native_number(n).unwrap();
    let allow = 0x7fff_0000;
    let eperm = 0x0005_0001;
    let f = seccomp::compile(&default_seccomp(
        &DEFAULT_CAPABILITIES.into_iter().collect(),
    ))
    .unwrap();
    let run = |name: &str, a0: u64| bpf::run(&f.program, x, nr(name), [a0, 0, 0, 0, 0, 0]);
    for ok in [
        "read",
        "openat",
        "execve",
        "clone3",
        "socket",
        "arch_prctl",
        "ptrace",
        "chroot",
    ] {
        if ok == "clone3" {
            assert_eq!(run(ok, 0), 0x0005_0000 | libc::ENOSYS as u32);
        } else {
            assert_eq!(run(ok, 0), allow, "{ok}");
        }
    }
    for denied in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "init_module",
        "finit_module",
        "delete_module",
        "sethostname",
        "settimeofday",
        "clock_settime",
        "reboot",
        "kexec_load",
        "bpf",
        "perf_event_open",
        "open_by_handle_at",
        "keyctl",
        "add_key",
        "swapon",
        "pivot_root",
    ] {
        assert_eq!(run(denied, 0), eperm, "{denied}");
    }
    assert_eq!(run("clone", 0x11), allow);
    assert_eq!(run("clone", 0x2000_0000), eperm);
    assert_eq!(run("personality", 8), allow);
    assert_eq!(run("personality", 0x400000), eperm);
    // With CAP_SYS_ADMIN: mount and namespaces are the kernel's to check.
    let mut with_admin: HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
    with_admin.insert(Capability::SysAdmin);
    let f = seccomp::compile(&default_seccomp(&with_admin)).unwrap();
    assert_eq!(bpf::run(&f.program, x, nr("mount"), [0; 6]), allow);
    assert_eq!(
        bpf::run(&f.program, x, nr("clone"), [0x2000_0000, 0, 0, 0, 0, 0]),
        allow
    );
}

#[test]
fn cap_add_drop_privileged() {
    let caps = |add: &[&str], drop: &[&str], privileged: bool| {
        let o = SecurityOptions {
            cap_add: add.iter().map(|s| s.to_string()).collect(),
            cap_drop: drop.iter().map(|s| s.to_string()).collect(),
            privileged,
            ..SecurityOptions::default()
        };
        capabilities(&o).unwrap()
    };
    let c = caps(&["NET_ADMIN"], &["chown", "CAP_KILL"], false);
    assert!(c.contains(&Capability::NetAdmin));
    assert!(!c.contains(&Capability::Chown) && !c.contains(&Capability::Kill));
    assert_eq!(c.len(), 13);
    assert_eq!(caps(&[], &["ALL"], false).len(), 0);
    assert_eq!(caps(&["SYS_TIME"], &["all"], false).len(), 1);
    assert_eq!(caps(&["ALL"], &["SYS_ADMIN"], false).len(), 40);
    assert_eq!(caps(&[], &[], true).len(), 41);
    let bad = SecurityOptions {
        cap_add: vec!["NOPE".into()],
        ..SecurityOptions::default()
    };
    assert!(matches!(
        capabilities(&bad),
        Err(Error::UnknownCapability(_))
    ));
}

#[test]
fn privileged_and_unconfined() {
    let mut spec = spec_with_namespaces();
    let o = SecurityOptions {
        privileged: true,
        ..SecurityOptions::default()
    };
    apply(&mut spec, &o).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none());
    let devices = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(devices[0].allow() && devices.len() == 1);
    assert_eq!(caps_of(&spec).len(), 41);
    let mut spec = spec_with_namespaces();
    let mut o = SecurityOptions::default();
    o.parse_security_opt("seccomp=unconfined").unwrap();
    o.parse_security_opt("no-new-privileges:true").unwrap();
    o.read_only = true;
    apply(&mut spec, &o).unwrap();
    assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
    assert_eq!(
        spec.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    assert!(o.clone().parse_security_opt("label=type:x").is_err());
    assert!(
        o.clone()
            .parse_security_opt("seccomp=/no/such/file.json")
            .is_err()
    );
    assert!(o.parse_security_opt("bogus").is_err());
}

#[test]
fn docker_format_profile_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    std::fs::write(
        &file,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
            "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},
                       {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
            "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW","args":[]},
                        {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
                        {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}},
                        {"names":["reboot"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"99.0"}},
                        {"names":["arch_prctl"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64"]}},
                        {"names":["clone"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]},
                         "args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
    )
    .unwrap();
    let mut o = SecurityOptions::default();
    o.parse_security_opt(&format!("seccomp={}", file.display()))
        .unwrap();
    let mut spec = spec_with_namespaces();
    apply(&mut spec, &o).unwrap();
    let sec = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    let names: Vec<String> = sec
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .flat_map(|s| s.names().clone())
        .collect();
    assert!(names.contains(&"read".to_string()) && names.contains(&"ptrace".to_string()));
    assert!(!names.contains(&"mount".to_string()) && !names.contains(&"reboot".to_string()));
    assert!(names.contains(&"clone".to_string()));
    assert_eq!(
        names.contains(&"arch_prctl".to_string()),
        go_arch() == "amd64"
    );
    assert_eq!(
        sec.architectures().as_ref().unwrap().len(),
        if go_arch() == "amd64" { 3 } else { 2 }
    );
    seccomp::compile(&sec).unwrap();
    let mut o = SecurityOptions::default();
    o.cap_add.push("SYS_ADMIN".into());
    o.parse_security_opt(&format!("seccomp={}", file.display()))
        .unwrap();
    let mut spec = spec_with_namespaces();
    apply(&mut spec, &o).unwrap();
    let sec = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
    let names: Vec<String> = sec
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .flat_map(|s| s.names().clone())
        .collect();
    assert!(names.contains(&"mount".to_string()) && !names.contains(&"clone".to_string()));
}

#[test]
fn sysctls_checked_against_namespaces() {
    let mut spec = spec_with_namespaces();
    let mut o = SecurityOptions::default();
    o.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
    o.sysctls.insert("kernel/shmmax".into(), "1000".into());
    apply(&mut spec, &o).unwrap();
    let s = spec.linux().as_ref().unwrap().sysctl().clone().unwrap();
    assert_eq!(s["kernel.shmmax"], "1000");
    o.sysctls.insert("kernel.panic".into(), "1".into());
    let err = apply(&mut spec, &o).unwrap_err().to_string();
    assert!(err.contains("kernel.panic"), "{err}");
    // Host network: net.* refused.
    let mut host_net: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2", "linux": {"namespaces": [{"type": "pid"}]}
    }))
    .unwrap();
    let mut o = SecurityOptions::default();
    o.sysctls.insert("net.core.somaxconn".into(), "1".into());
    let err = apply(&mut host_net, &o).unwrap_err().to_string();
    assert!(err.contains("network namespace"), "{err}");
}

#[test]
fn user_namespace_mapping() {
    let mut spec = spec_with_namespaces();
    let r = IdRange {
        container: 0,
        host: 100_000,
        size: 65_536,
    };
    with_user_namespace(&mut spec, &[r], &[r]);
    let linux = spec.linux().as_ref().unwrap();
    assert!(
        linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User)
    );
    assert_eq!(linux.uid_mappings().as_ref().unwrap()[0].host_id(), 100_000);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("subuid");
    std::fs::write(&f, "other:1:2\nberth:231072:65536\n").unwrap();
    assert_eq!(
        subordinate_range(&f, "berth"),
        Some(IdRange {
            container: 0,
            host: 231_072,
            size: 65_536
        })
    );
    assert_eq!(subordinate_range(&f, "nobody"), None);
}
