//! berth.v1 container messages <-> the domain types of `berth_containers`.

use berth_api::berth::v1 as pb;
use tonic::Status;

use crate::berth_containers::model::{
    ContainerConfig, Empty, HostConfig, LogConfig, RestartPolicy,
};
use crate::berth_containers::{CreateRequest, ListOptions, LogFrame, LogOptions, Summary};

use super::super::convert::{labels_in, labels_out, timestamp};

fn set<I: IntoIterator<Item = String>>(keys: I) -> std::collections::BTreeMap<String, Empty> {
    keys.into_iter().map(|k| (k, Empty {})).collect()
}

/// A normalised exposed port key: `80` -> `80/tcp`.
fn port_key(p: String) -> String {
    if p.contains('/') {
        p
    } else {
        format!("{p}/tcp")
    }
}

pub fn create_in(req: pb::CreateContainerRequest) -> Result<CreateRequest, Status> {
    let c = req
        .config
        .ok_or_else(|| Status::invalid_argument("config is required"))?;
    if c.image.is_empty() {
        return Err(Status::invalid_argument("config.image is required"));
    }
    let h = req.host_config.unwrap_or_default();
    let policy = h.restart_policy.unwrap_or_default();
    let restart_policy =
        RestartPolicy::parse(&policy.name, policy.max_retry).map_err(Status::invalid_argument)?;
    Ok(CreateRequest {
        name: req.name,
        entrypoint_set: c.entrypoint_set || !c.entrypoint.is_empty(),
        config: ContainerConfig {
            hostname: c.hostname,
            domainname: c.domainname,
            user: c.user,
            attach_stdin: c.attach_stdin,
            attach_stdout: c.attach_stdout,
            attach_stderr: c.attach_stderr,
            exposed_ports: set(c.exposed_ports.into_iter().map(port_key)),
            tty: c.tty,
            open_stdin: c.open_stdin,
            stdin_once: c.stdin_once,
            env: c.env,
            cmd: c.cmd,
            image: c.image,
            volumes: set(c.volumes),
            working_dir: c.working_dir,
            entrypoint: c.entrypoint,
            labels: labels_in(c.labels),
            stop_signal: c.stop_signal,
            stop_timeout: c.stop_timeout,
        },
        host_config: HostConfig {
            binds: h.binds,
            network_mode: h.network_mode,
            publish: h.publish,
            restart_policy,
            auto_remove: h.auto_remove,
            cap_add: h.cap_add,
            cap_drop: h.cap_drop,
            dns: h.dns,
            dns_options: h.dns_option,
            dns_search: h.dns_search,
            extra_hosts: h.extra_hosts,
            group_add: h.group_add,
            links: h.links,
            privileged: h.privileged,
            publish_all_ports: h.publish_all,
            readonly_rootfs: h.read_only,
            security_opt: h.security_opt,
            tmpfs: h.tmpfs.into_iter().collect(),
            shm_size: h.shm_size,
            sysctls: h.sysctls.into_iter().collect(),
            memory: h.memory,
            memory_swap: h.memory_swap,
            nano_cpus: h.nano_cpus,
            cpu_shares: h.cpu_shares,
            pids_limit: h.pids_limit,
            log_config: LogConfig {
                kind: String::new(),
                config: h.log_opts.into_iter().collect(),
            },
            init: h.init,
            userns_mode: h.userns_mode,
        },
    })
}

pub fn list_in(r: pb::ListContainersRequest) -> ListOptions {
    ListOptions {
        all: r.all,
        limit: r.limit,
        latest: r.latest,
        size: r.size,
        filters: r.filters,
    }
}

pub fn summary_out(s: Summary) -> pb::ContainerSummary {
    pb::ContainerSummary {
        id: s.id,
        names: vec![format!("/{}", s.name)],
        image: s.image,
        image_id: s.image_id,
        command: s.command,
        created: Some(timestamp(s.created)),
        state: s.state,
        status: s.status,
        ports: s
            .ports
            .into_iter()
            .map(|p| pb::ContainerPort {
                ip: p.ip,
                private_port: p.private_port.into(),
                public_port: p.public_port.into(),
                r#type: p.proto,
            })
            .collect(),
        labels: labels_out(s.labels),
        size_rw: s.size_rw,
        size_root_fs: s.size_root_fs,
        networks: s.networks,
        mounts: s
            .mounts
            .into_iter()
            .map(|m| pb::ContainerMount {
                r#type: m.kind,
                name: m.name,
                source: m.source.display().to_string(),
                destination: m.destination,
                mode: m.mode,
                rw: m.rw,
            })
            .collect(),
    }
}

fn nanos(t: Option<prost_types::Timestamp>) -> Option<i64> {
    berth_api::time::wire_to_unix_nanos(t.as_ref())
}

pub fn logs_in(r: &pb::ContainerLogsRequest) -> LogOptions {
    // Neither stream asked for: both, as docker's CLI does.
    let both = !r.stdout && !r.stderr;
    LogOptions {
        follow: r.follow,
        tail: r.tail,
        since: nanos(r.since),
        until: nanos(r.until),
        timestamps: r.timestamps,
        stdout: r.stdout || both,
        stderr: r.stderr || both,
    }
}

pub fn log_frame_out(f: LogFrame) -> pb::ContainerLogsFrame {
    pb::ContainerLogsFrame {
        stream: if f.stderr {
            pb::OutputStream::Stderr
        } else {
            pb::OutputStream::Stdout
        } as i32,
        data: f.data,
        time: Some(timestamp(f.time)),
    }
}

pub fn attach_in(o: pb::AttachOptions) -> crate::berth_containers::AttachRequest {
    crate::berth_containers::AttachRequest {
        stdin: o.stdin,
        stdout: o.stdout,
        stderr: o.stderr,
        detach_keys: o.detach_keys,
        size: o.size.map(|s| (s.width, s.height)),
    }
}

fn frame(stderr: bool, data: Vec<u8>) -> pb::OutputFrame {
    pb::OutputFrame {
        stream: if stderr {
            pb::OutputStream::Stderr
        } else {
            pb::OutputStream::Stdout
        } as i32,
        data,
    }
}

pub fn attach_event_out(e: crate::berth_containers::AttachEvent) -> pb::AttachOutput {
    use crate::berth_containers::AttachEvent as E;
    use pb::attach_output::Output;
    pb::AttachOutput {
        output: Some(match e {
            E::Frame { stderr, data } => Output::Frame(frame(stderr, data)),
            E::End(end) => Output::End(pb::AttachEnd {
                detached: end.detached,
                exited: end.exited,
                exit_code: end.exit_code,
                error: end.error,
            }),
        }),
    }
}

pub fn exec_in(c: pb::ExecConfig) -> crate::berth_containers::ExecRequest {
    crate::berth_containers::ExecRequest {
        cmd: c.cmd,
        env: c.env,
        user: c.user,
        working_dir: c.working_dir,
        tty: c.tty,
        stdin: c.stdin,
        privileged: c.privileged,
        detach: c.detach,
        detach_keys: c.detach_keys,
        size: c.size.map(|s| (s.width, s.height)),
    }
}

pub fn exec_event_out(e: crate::berth_containers::ExecEvent) -> pb::ExecOutput {
    use crate::berth_containers::ExecEvent as E;
    use pb::exec_output::Output;
    pb::ExecOutput {
        output: Some(match e {
            E::Frame { stderr, data } => Output::Frame(frame(stderr, data)),
            E::Exit { code, error } => Output::Exit(pb::ExecExit {
                exit_code: code,
                error,
                detached: false,
            }),
            E::Detached => Output::Exit(pb::ExecExit {
                detached: true,
                ..Default::default()
            }),
        }),
    }
}

/// A session input from an attach or exec stream message.
pub fn session_input(
    stdin: Option<Vec<u8>>,
    resize: Option<pb::TerminalSize>,
    close_stdin: bool,
    detach: bool,
) -> Option<crate::berth_containers::AttachInput> {
    use crate::berth_containers::AttachInput as I;
    match (stdin, resize) {
        (Some(d), _) => Some(I::Stdin(d)),
        (_, Some(s)) => Some(I::Resize(s.width, s.height)),
        _ if close_stdin => Some(I::CloseStdin),
        _ if detach => Some(I::Detach),
        _ => None,
    }
}
