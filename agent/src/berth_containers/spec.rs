//! The OCI runtime spec of a container, built from its record (the config merged with
//! the image's, the host config, the resolved mounts) and what start resolved (user,
//! network namespace, name-resolution files): docker's default mounts and namespaces,
//! the cgroup path `/<parent>/<namespace>/<id>`, resources, then berth's default
//! hardening changed by the security flags (`berth_shim::spec_defaults`).

use std::path::PathBuf;

use berth_shim::spec_defaults::{self, IdRange, SeccompOption, SecurityOptions};
use serde_json::{Value, json};

use super::image::merge_env;
use super::model::{HostConfig, Record};
use super::mounts::{self, oci_mount};
use super::user::ExecUser;
use crate::error::{Error, Result};
use crate::network::Files;

/// The PATH a container gets when its image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// /dev/shm's size when `--shm-size` is not given (docker's 64 MiB).
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// The network namespace of the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetNs {
    /// Its own namespace, pinned at this path before the task exists.
    Path(PathBuf),
    /// The host's.
    Host,
}

/// What a spec is built from.
pub struct SpecInput<'a> {
    pub record: &'a Record,
    pub user: &'a ExecUser,
    /// `/<parent>/<namespace>/<id>`.
    pub cgroups_path: String,
    pub netns: NetNs,
    /// The hosts, hostname and resolv.conf files to bind-mount.
    pub files: Option<&'a Files>,
    /// Whether the host accounts swap (cgroup v1 `memory.memsw.*`); without it
    /// `--memory-swap` is dropped.
    pub swap_accounting: bool,
    /// Give the container its own cgroup namespace (unified cgroup hosts).
    pub cgroup_ns: bool,
    /// `userns_remap`: the container's uid and gid ranges in its own user namespace.
    pub userns: Option<(IdRange, IdRange)>,
}

/// docker's security options from a host config. `seccomp=` with JSON text (what the
/// client sends after reading the file) is taken inline; a path is read here.
pub fn security_options(hc: &HostConfig) -> Result<SecurityOptions> {
    let mut opts = SecurityOptions {
        privileged: hc.privileged,
        cap_add: hc.cap_add.clone(),
        cap_drop: hc.cap_drop.clone(),
        read_only: hc.readonly_rootfs,
        sysctls: hc.sysctls.clone(),
        ..Default::default()
    };
    for o in &hc.security_opt {
        let inline = o
            .split_once(['=', ':'])
            .filter(|(k, v)| k.trim() == "seccomp" && v.trim_start().starts_with('{'));
        match inline {
            Some((_, json)) => {
                opts.seccomp = SeccompOption::Profile {
                    origin: "the --security-opt seccomp profile".into(),
                    json: json.to_string(),
                }
            }
            None => opts
                .parse_security_opt(o)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?,
        }
    }
    spec_defaults::capabilities(&opts).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    Ok(opts)
}

/// The environment of the process: PATH, HOSTNAME and TERM (with a tty) as defaults
/// under the container's env, and HOME from the user's passwd entry when unset.
pub fn environment(record: &Record, hostname: &str, home: &str) -> Vec<String> {
    let mut base = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if record.config.tty {
        base.push("TERM=xterm".into());
    }
    let mut env = merge_env(&base, &record.config.env);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

fn default_mounts(hc: &HostConfig) -> Vec<Value> {
    let shm = if hc.shm_size > 0 {
        hc.shm_size
    } else {
        DEFAULT_SHM_SIZE
    };
    let sys_mode = if hc.privileged { "rw" } else { "ro" };
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", sys_mode]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", sys_mode]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ]
}

fn resources(hc: &HostConfig, swap_accounting: bool) -> Value {
    let mut r = serde_json::Map::new();
    let mut memory = serde_json::Map::new();
    if hc.memory > 0 {
        memory.insert("limit".into(), json!(hc.memory));
        if swap_accounting {
            let swap = match hc.memory_swap {
                0 => hc.memory * 2,
                s => s,
            };
            memory.insert("swap".into(), json!(swap));
        }
    }
    if !memory.is_empty() {
        r.insert("memory".into(), Value::Object(memory));
    }
    let mut cpu = serde_json::Map::new();
    if hc.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(hc.cpu_shares));
    }
    if hc.nano_cpus > 0 {
        const PERIOD: i64 = 100_000;
        cpu.insert("period".into(), json!(PERIOD));
        cpu.insert(
            "quota".into(),
            json!((hc.nano_cpus as i128 * PERIOD as i128 / 1_000_000_000) as i64),
        );
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if hc.pids_limit > 0 {
        r.insert("pids".into(), json!({ "limit": hc.pids_limit }));
    }
    Value::Object(r)
}

/// The spec, as the JSON the shim reads.
pub fn build(input: &SpecInput<'_>) -> Result<Vec<u8>> {
    let rec = input.record;
    let c = &rec.config;
    let hc = &rec.host_config;
    let hostname = c.hostname.clone();
    let env = environment(rec, &hostname, &input.user.home);
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let cwd = if c.working_dir.is_empty() {
        "/".to_string()
    } else {
        mounts::clean_path(&c.working_dir)
    };

    let user_mounts = &rec.mounts;
    let mut oci_mounts: Vec<Value> = default_mounts(hc)
        .into_iter()
        .filter(|m| !mounts::covers(user_mounts, m["destination"].as_str().unwrap_or("")))
        .collect();
    if let Some(f) = input.files {
        for (dest, src) in [
            ("/etc/resolv.conf", &f.resolv_conf),
            ("/etc/hostname", &f.hostname),
            ("/etc/hosts", &f.hosts),
        ] {
            if !mounts::covers(user_mounts, dest) {
                oci_mounts.push(json!({"destination": dest, "type": "bind",
                    "source": src.display().to_string(), "options": ["rbind", "rprivate"]}));
            }
        }
    }
    let mut sorted: Vec<_> = user_mounts.iter().collect();
    sorted.sort_by_key(|m| mounts::depth(std::path::Path::new(&m.destination)));
    oci_mounts.extend(sorted.into_iter().map(oci_mount));

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &input.netns {
        NetNs::Path(p) => {
            namespaces.push(json!({"type": "network", "path": p.display().to_string()}))
        }
        NetNs::Host => {}
    }
    if input.cgroup_ns {
        namespaces.push(json!({"type": "cgroup"}));
    }

    let mut process = json!({
        "terminal": c.tty,
        "user": {"uid": input.user.uid, "gid": input.user.gid},
        "args": args,
        "env": env,
        "cwd": cwd,
    });
    if !input.user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(input.user.additional_gids);
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": hc.readonly_rootfs},
        "hostname": hostname,
        "mounts": oci_mounts,
        "linux": {
            "cgroupsPath": input.cgroups_path,
            "namespaces": namespaces,
            "resources": resources(hc, input.swap_accounting),
        },
    });
    if !c.domainname.is_empty() {
        spec["domainname"] = json!(c.domainname);
    }
    let mut spec: oci_spec::runtime::Spec = serde_json::from_value(spec)
        .map_err(|e| Error::Internal(format!("container {}: build the spec: {e}", rec.id)))?;
    let opts = security_options(hc)?;
    spec_defaults::apply(&mut spec, &opts)
        .map_err(|e| Error::InvalidArgument(format!("container {}: {e}", rec.name)))?;
    if let Some((uids, gids)) = &input.userns {
        spec_defaults::with_user_namespace(&mut spec, &[*uids], &[*gids]);
    }
    serde_json::to_vec(&spec).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::berth_containers::model::{ContainerConfig, MountPoint};

    fn record() -> Record {
        Record {
            id: "c0ffee".into(),
            name: "web".into(),
            path: "/bin/sh".into(),
            args: vec!["-c".into(), "true".into()],
            config: ContainerConfig {
                hostname: "c0ffee".into(),
                env: vec!["A=1".into(), "PATH=/bin".into()],
                working_dir: "/srv//app".into(),
                tty: true,
                ..Default::default()
            },
            host_config: HostConfig {
                memory: 64 << 20,
                nano_cpus: 1_500_000_000,
                pids_limit: 20,
                ..Default::default()
            },
            mounts: vec![MountPoint {
                kind: "volume".into(),
                name: "data".into(),
                source: "/v/data/_data".into(),
                destination: "/dev/shm".into(),
                rw: true,
                mode: String::new(),
                options: String::new(),
                anonymous: false,
            }],
            ..Default::default()
        }
    }

    fn spec(rec: &Record, netns: NetNs, files: Option<&Files>) -> Value {
        let user = ExecUser {
            uid: 33,
            gid: 33,
            additional_gids: vec![29],
            home: "/var/www".into(),
        };
        let input = SpecInput {
            record: rec,
            user: &user,
            cgroups_path: "/berth/ns/c0ffee".into(),
            netns,
            files,
            swap_accounting: true,
            cgroup_ns: false,
            userns: None,
        };
        serde_json::from_slice(&build(&input).unwrap()).unwrap()
    }

    #[test]
    fn process_namespaces_and_resources() {
        let files = Files::in_dir(std::path::Path::new("/state/net/c0ffee"));
        let s = spec(&record(), NetNs::Path("/state/netns".into()), Some(&files));
        let p = &s["process"];
        assert_eq!(p["args"], json!(["/bin/sh", "-c", "true"]));
        assert_eq!(
            p["env"],
            json!([
                "PATH=/bin",
                "HOSTNAME=c0ffee",
                "TERM=xterm",
                "A=1",
                "HOME=/var/www"
            ])
        );
        assert_eq!(p["cwd"], "/srv/app");
        assert_eq!(
            p["user"],
            json!({"uid": 33, "gid": 33, "additionalGids": [29]})
        );
        assert_eq!(p["terminal"], true);
        assert_eq!(s["hostname"], "c0ffee");
        let l = &s["linux"];
        assert_eq!(l["cgroupsPath"], "/berth/ns/c0ffee");
        assert!(
            l["namespaces"]
                .as_array()
                .unwrap()
                .contains(&json!({"type": "network", "path": "/state/netns"}))
        );
        assert_eq!(l["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(l["resources"]["memory"]["swap"], 128 << 20);
        assert_eq!(l["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(l["resources"]["cpu"]["period"], 100_000);
        assert_eq!(l["resources"]["pids"]["limit"], 20);
        // Hardening from spec_defaults.
        assert_eq!(p["capabilities"]["bounding"].as_array().unwrap().len(), 14);
        assert!(l["seccomp"].is_object());
        assert!(
            l["maskedPaths"]
                .as_array()
                .unwrap()
                .contains(&json!("/proc/kcore"))
        );
        let dests: Vec<&str> = s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        // The volume replaces the default /dev/shm; the network files come before it.
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/etc/resolv.conf",
                "/etc/hostname",
                "/etc/hosts",
                "/dev/shm"
            ]
        );
    }

    #[test]
    fn host_network_and_security_flags() {
        let mut rec = record();
        rec.host_config.privileged = true;
        rec.host_config.readonly_rootfs = true;
        rec.host_config.security_opt = vec!["no-new-privileges".into()];
        let s = spec(&rec, NetNs::Host, None);
        assert!(
            !s["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "network")
        );
        assert_eq!(s["root"]["readonly"], true);
        assert_eq!(s["process"]["noNewPrivileges"], true);
        assert!(s["linux"]["seccomp"].is_null());
        let mut rec = record();
        rec.host_config.cap_add = vec!["BOGUS".into()];
        assert!(security_options(&rec.host_config).is_err());
        rec.host_config.cap_add.clear();
        rec.host_config.sysctls = [("kernel.hostname".to_string(), "x".to_string())].into();
        rec.host_config.sysctls = [("vm.swappiness".to_string(), "1".to_string())].into();
        let user = ExecUser::default();
        let input = SpecInput {
            record: &rec,
            user: &user,
            cgroups_path: "/b".into(),
            netns: NetNs::Host,
            files: None,
            swap_accounting: false,
            cgroup_ns: false,
            userns: None,
        };
        let err = build(&input).unwrap_err().to_string();
        assert!(err.contains("vm.swappiness"), "{err}");
    }

    #[test]
    fn inline_seccomp_profiles() {
        let hc = HostConfig {
            security_opt: vec![r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#.into()],
            ..Default::default()
        };
        let o = security_options(&hc).unwrap();
        assert!(matches!(o.seccomp, SeccompOption::Profile { .. }));
        let hc = HostConfig {
            security_opt: vec!["seccomp=unconfined".into()],
            ..Default::default()
        };
        assert_eq!(
            security_options(&hc).unwrap().seccomp,
            SeccompOption::Unconfined
        );
    }
}
