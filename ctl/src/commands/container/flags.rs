//! The flags `run` and `create` share, turned into a berth.v1 create request: sizes
//! (`64m`), env files, `--entrypoint`, `--restart`, `--expose` ranges, and seccomp
//! profile files read here (as docker's client does) so the daemon gets the JSON.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use berth_api::berth::v1::{ContainerConfig, CreateContainerRequest, HostConfig, RestartPolicy};

#[derive(clap::Args, Clone, Debug, Default)]
pub struct CreateFlags {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to pass the local value).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file of KEY=VALUE lines.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name.
    #[arg(long)]
    pub domainname: Option<String>,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Bind mount a volume (HOST:CTR[:ro], NAME:CTR, or CTR).
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Mount a tmpfs (PATH[:OPTIONS]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image ("" clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap limit: a size, or -1 for unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 1.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Tune the container pids limit (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Size of /dev/shm (e.g. 64m).
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped.
    #[arg(long)]
    pub restart: Option<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Connect a container to a network (bridge, none, host, container:NAME, or a network).
    #[arg(long = "network", visible_alias = "net")]
    pub network: Option<String>,
    /// Add link to another container (NAME[:ALIAS]).
    #[arg(long)]
    pub link: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options (no-new-privileges, seccomp=unconfined|FILE, apparmor=PROFILE).
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Sysctl options (KEY=VALUE).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Additional groups to join.
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Set meta data on a container (KEY=VALUE).
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i32>,
    /// Run an init inside the container (not supported yet).
    #[arg(long)]
    pub init: bool,
    /// User namespace to use: `host` opts out of berthd's userns_remap.
    #[arg(long = "userns")]
    pub userns: Option<String>,
    /// Log options: max-size (e.g. 10m), max-file.
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Pull image before running: always, missing, never.
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// docker's `RAMInBytes`: a number with an optional unit b, k, m, g, t, p (powers of
/// 1024), case-insensitive, optionally followed by `b`.
pub fn parse_size(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('p') => (&t[..t.len() - 1], 1 << 50),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size: {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size: {s:?}");
    }
    Ok((n * mult as f64) as i64)
}

/// Reads an env file: `KEY=VALUE` lines, `#` comments, bare `KEY` taken from here.
pub fn read_env_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read env file {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.extend(env_entry(line));
    }
    Ok(out)
}

/// `KEY=VALUE` as it is; a bare `KEY` takes the local value, or is dropped when unset.
fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        return Some(e.to_string());
    }
    std::env::var(e).ok().map(|v| format!("{e}={v}"))
}

fn key_values(flag: &str, items: &[String]) -> anyhow::Result<HashMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("invalid {flag} {kv:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// `--expose 80`, `80/udp`, `8000-8002/tcp` as single ports.
fn expand_expose(items: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in items {
        let (ports, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
        let a: u16 = a
            .parse()
            .with_context(|| format!("invalid --expose {e:?}"))?;
        let b: u16 = b
            .parse()
            .with_context(|| format!("invalid --expose {e:?}"))?;
        if a == 0 || a > b {
            bail!("invalid --expose {e:?}");
        }
        out.extend((a..=b).map(|p| format!("{p}/{proto}")));
    }
    Ok(out)
}

/// `seccomp=FILE` becomes `seccomp=<the file's JSON>`; other options pass as they are.
fn security_opts(items: &[String]) -> anyhow::Result<Vec<String>> {
    items
        .iter()
        .map(|o| match o.split_once(['=', ':']) {
            Some(("seccomp", v)) if v != "unconfined" && !v.trim_start().starts_with('{') => {
                let json = std::fs::read_to_string(v)
                    .with_context(|| format!("--security-opt {o}: read the seccomp profile"))?;
                Ok(format!("seccomp={json}"))
            }
            _ => Ok(o.clone()),
        })
        .collect()
}

impl CreateFlags {
    /// The create request for `image` running `command` (empty: the image's).
    pub fn request(
        &self,
        image: &str,
        command: &[String],
    ) -> anyhow::Result<CreateContainerRequest> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(read_env_file(f)?);
        }
        env.extend(self.env.iter().filter_map(|e| env_entry(e)));
        let (entrypoint, entrypoint_set) = match &self.entrypoint {
            Some(e) if e.is_empty() => (Vec::new(), true),
            Some(e) => (vec![e.clone()], true),
            None => (Vec::new(), false),
        };
        let tmpfs = self
            .tmpfs
            .iter()
            .map(|t| match t.split_once(':') {
                Some((p, o)) => (p.to_string(), o.to_string()),
                None => (t.clone(), String::new()),
            })
            .collect();
        let memory_swap = match self.memory_swap.as_deref() {
            None => 0,
            Some("-1") => -1,
            Some(s) => parse_size(s)?,
        };
        let config = ContainerConfig {
            image: image.to_string(),
            cmd: command.to_vec(),
            entrypoint,
            entrypoint_set,
            env,
            working_dir: self.workdir.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            hostname: self.hostname.clone().unwrap_or_default(),
            domainname: self.domainname.clone().unwrap_or_default(),
            tty: self.tty,
            open_stdin: self.interactive,
            stdin_once: self.interactive,
            attach_stdin: self.interactive,
            attach_stdout: true,
            attach_stderr: true,
            labels: key_values("--label", &self.label)?,
            exposed_ports: expand_expose(&self.expose)?,
            volumes: Vec::new(),
            stop_signal: self.stop_signal.clone().unwrap_or_default(),
            stop_timeout: self.stop_timeout,
        };
        let host_config = HostConfig {
            binds: self.volume.clone(),
            publish: self.publish.clone(),
            publish_all: self.publish_all,
            network_mode: self.network.clone().unwrap_or_default(),
            links: self.link.clone(),
            restart_policy: self.restart.as_ref().map(|r| RestartPolicy {
                name: r.clone(),
                max_retry: 0,
            }),
            auto_remove: self.rm,
            memory: self
                .memory
                .as_deref()
                .map(parse_size)
                .transpose()?
                .unwrap_or(0),
            memory_swap,
            nano_cpus: self.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            pids_limit: self.pids_limit.unwrap_or(0),
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            privileged: self.privileged,
            security_opt: security_opts(&self.security_opt)?,
            read_only: self.read_only,
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_option: self.dns_option.clone(),
            extra_hosts: self.add_host.clone(),
            sysctls: key_values("--sysctl", &self.sysctl)?,
            tmpfs,
            shm_size: self
                .shm_size
                .as_deref()
                .map(parse_size)
                .transpose()?
                .unwrap_or(0),
            group_add: self.group_add.clone(),
            log_opts: key_values("--log-opt", &self.log_opt)?,
            init: self.init,
            userns_mode: self.userns.clone().unwrap_or_default(),
        };
        Ok(CreateContainerRequest {
            name: self.name.clone().unwrap_or_default(),
            config: Some(config),
            host_config: Some(host_config),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("512K").unwrap(), 512 << 10);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("10mb").unwrap(), 10 << 20);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn flags_become_a_request() {
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join("env");
        std::fs::write(&env_file, "# comment\nFROM_FILE=1\n\nA=file\n").unwrap();
        let f = CreateFlags {
            env: vec!["A=flag".into()],
            env_file: vec![env_file],
            entrypoint: Some(String::new()),
            cpus: Some(1.5),
            expose: vec!["8000-8001".into()],
            sysctl: vec!["net.ipv4.ip_forward=1".into()],
            tmpfs: vec!["/run:size=1m".into()],
            restart: Some("on-failure:3".into()),
            ..Default::default()
        };
        let r = f.request("busybox", &["sh".into()]).unwrap();
        let c = r.config.unwrap();
        assert_eq!(c.env, ["FROM_FILE=1", "A=file", "A=flag"]);
        assert!(c.entrypoint_set && c.entrypoint.is_empty());
        assert_eq!(c.exposed_ports, ["8000/tcp", "8001/tcp"]);
        let h = r.host_config.unwrap();
        assert_eq!(h.nano_cpus, 1_500_000_000);
        assert_eq!(h.tmpfs["/run"], "size=1m");
        assert_eq!(h.restart_policy.unwrap().name, "on-failure:3");
        assert!(
            CreateFlags {
                label: vec!["novalue".into()],
                ..Default::default()
            }
            .request("x", &[])
            .is_err()
        );
    }
}
