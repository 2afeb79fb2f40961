//! The shim's task API: one function per method of `berth.shim.v1`, called by the event
//! loop with the decoded request. Each returns the reply, or nothing when the answer
//! comes later (Wait).

use std::time::{Instant, SystemTime};

use berth_api::berth::shim::v1 as pb;
use berth_api::shim::frame::{Frame, Method, PROTOCOL_VERSION, code};
use prost::Message;

use crate::error::{Error, Result};
use crate::io::log::Rotation;
use crate::io::{ProcessIo, StdioConfig, display_name};
use crate::runtime::Container;
use crate::runtime::rootfs::RootMount;
use crate::server::Shim;
use crate::task::Proc;

/// What a method produced.
enum Answer {
    /// The reply.
    Now(Vec<u8>),
    /// The method sent its reply itself, or it comes later.
    Later,
}

fn now<M: Message>(m: M) -> Result<Answer> {
    Ok(Answer::Now(m.encode_to_vec()))
}

fn decode<M: Message + Default>(payload: &[u8]) -> Result<M> {
    M::decode(payload).map_err(|e| Error::InvalidArgument(format!("decode request: {e}")))
}

/// Handles one request; `None` when the reply is sent later.
pub fn handle(shim: &mut Shim, conn: u32, id: u32, method: &str, payload: &[u8]) -> Option<Frame> {
    let Some(m) = Method::from_name(method) else {
        return Some(Frame::error(
            id,
            code::UNIMPLEMENTED,
            format!("method {method} is not implemented"),
        ));
    };
    let span = tracing::debug_span!("request", method = %m, id);
    let _enter = span.enter();
    let res = match m {
        Method::Connect => connect(shim),
        Method::Create => decode(payload).and_then(|r| create(shim, r)),
        Method::Start => decode(payload).and_then(|r: pb::StartRequest| start(shim, &r.exec_id)),
        Method::State => decode(payload).and_then(|r: pb::StateRequest| state(shim, &r.exec_id)),
        Method::Wait => {
            decode(payload).and_then(|r: pb::WaitRequest| wait(shim, conn, id, &r.exec_id))
        }
        Method::Kill => decode(payload).and_then(|r| kill(shim, r)),
        Method::Exec => decode(payload).and_then(|r| exec(shim, r)),
        Method::ResizePty => decode(payload).and_then(|r| resize(shim, r)),
        Method::CloseIo => decode(payload).and_then(|r: pb::CloseIoRequest| close_io(shim, r)),
        Method::Pause => pause(shim, true),
        Method::Resume => pause(shim, false),
        Method::Pids => pids(shim),
        Method::Update => decode(payload).and_then(|r| update(shim, r)),
        Method::Stats => stats(shim),
        Method::Delete => decode(payload).and_then(|r: pb::DeleteRequest| delete(shim, &r.exec_id)),
        Method::Shutdown => {
            decode(payload).and_then(|r: pb::ShutdownRequest| shutdown(shim, r.now))
        }
        Method::Subscribe => {
            shim.subscribe(conn, id);
            now(pb::SubscribeResponse {})
        }
        Method::WriteStdin => decode(payload).and_then(|r| write_stdin(shim, conn, id, r)),
        Method::Attach => decode(payload).and_then(|r| attach(shim, conn, id, r)),
        Method::Detach => decode(payload).and_then(|r: pb::DetachRequest| {
            detach(shim, conn, r.attach_id);
            now(pb::DetachResponse {})
        }),
    };
    if matches!(m, Method::Create | Method::Exec | Method::Start) {
        crate::sys::mem::trim_heap();
    }
    match res {
        Ok(Answer::Now(bytes)) => Some(Frame::reply(id, bytes)),
        Ok(Answer::Later) => None,
        Err(e) => {
            tracing::debug!(method = %m, error = %e, "request failed");
            Some(Frame::error(id, e.code(), e.to_string()))
        }
    }
}

fn ts(t: SystemTime) -> prost_types::Timestamp {
    berth_api::time::from_system(t)
}

fn pid_u32(pid: i32) -> u32 {
    u32::try_from(pid).unwrap_or(0)
}

fn slot_of(shim: &Shim, exec_id: &str) -> Result<u32> {
    if exec_id.is_empty() {
        return if shim.procs.contains_key(&0) {
            Ok(0)
        } else {
            Err(Error::NotFound(format!("task {}", shim.ident.id)))
        };
    }
    shim.procs
        .iter()
        .find(|(s, p)| **s != 0 && p.exec_id == exec_id)
        .map(|(s, _)| *s)
        .ok_or_else(|| Error::NotFound(format!("process {exec_id}")))
}

fn container(shim: &Shim) -> Result<&Container> {
    shim.container
        .as_ref()
        .ok_or_else(|| Error::NotFound(format!("task {}", shim.ident.id)))
}

fn connect(shim: &Shim) -> Result<Answer> {
    now(pb::ConnectResponse {
        shim_pid: pid_u32(crate::sys::process::getpid()),
        task_pid: shim.procs.get(&0).map_or(0, |p| pid_u32(p.pid)),
        version: env!("CARGO_PKG_VERSION").to_string(),
        protocol: PROTOCOL_VERSION,
    })
}

/// Rotation settings from the request fields.
fn rotation(max_size: u64, max_files: u32) -> Rotation {
    Rotation {
        max_size,
        max_files,
    }
}

fn create(shim: &mut Shim, r: pb::CreateRequest) -> Result<Answer> {
    if shim.container.is_some() {
        return Err(Error::AlreadyExists(format!("task {}", shim.ident.id)));
    }
    if !r.id.is_empty() && r.id != shim.ident.id {
        return Err(Error::InvalidArgument(format!(
            "this shim serves task {}, not {}",
            shim.ident.id, r.id
        )));
    }
    let bundle = if r.bundle.is_empty() {
        shim.ident.bundle.clone()
    } else {
        r.bundle.clone().into()
    };
    let mounts: Vec<RootMount> = r
        .rootfs
        .iter()
        .map(|m| RootMount {
            fstype: m.r#type.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        })
        .collect();
    let stdio = StdioConfig {
        stdin: r.stdin,
        stdout: r.stdout,
        stderr: r.stderr,
        terminal: r.terminal,
        log_path: r.log_path,
        rotation: rotation(r.log_max_size, r.log_max_files),
        stdin_stream: r.stdin_stream,
        output_stream: r.output_stream,
    };
    stdio.validate()?;
    let began = Instant::now();
    let mut c = Container::prepare(
        &shim.sys,
        &shim.ident.id,
        &shim.ident.namespace,
        &bundle,
        &mounts,
        r.no_pivot,
    )?;
    let prepared = began.elapsed();
    let (slot, token) = shim.alloc_slot(true);
    let spawned = ProcessIo::open("", &stdio, token, &mut shim.logs).and_then(|(io, child)| {
        let created = c.spawn_init(&shim.sys, child.raw())?;
        drop(child);
        Ok((io, created))
    });
    let (mut io, mut created) = match spawned {
        Ok(v) => v,
        Err(e) => {
            if let Err(e2) = c.destroy(&shim.sys) {
                tracing::warn!(error = %e2, "cleanup after failed create");
            }
            return Err(e);
        }
    };
    let spawned = began.elapsed() - prepared;
    if let Some(master) = created.pty_master.take()
        && let Err(e) = io.attach_pty(master)
    {
        drop(created);
        if let Err(e2) = c.destroy(&shim.sys) {
            tracing::warn!(error = %e2, "cleanup after failed create");
        }
        return Err(e);
    }
    io.watch(&shim.poller);
    let pid = created.pid;
    match c.cgroup.watch_oom() {
        Ok(w) => shim.watch_oom(w),
        Err(e) => tracing::debug!(error = %e, "no oom notifications"),
    }
    let _ = std::fs::write(bundle.join("init.pid"), pid.to_string());
    tracing::info!(
        pid,
        prepare_us = prepared.as_micros() as u64,
        spawn_us = spawned.as_micros() as u64,
        total_us = began.elapsed().as_micros() as u64,
        "task created"
    );
    shim.procs.insert(slot, Proc::new("", created, io, stdio));
    shim.container = Some(c);
    now(pb::CreateResponse { pid: pid_u32(pid) })
}

fn start(shim: &mut Shim, exec_id: &str) -> Result<Answer> {
    let slot = slot_of(shim, exec_id)?;
    let p = shim.procs.get_mut(&slot).expect("slot exists");
    let Some(created) = p.created.take() else {
        return Err(Error::FailedPrecondition(format!(
            "process {} was already started",
            if exec_id.is_empty() { "init" } else { exec_id }
        )));
    };
    let pid = created.start()?;
    shim.emit(pb::event::Kind::Started(pb::ProcessStarted {
        exec_id: exec_id.to_string(),
        pid: pid_u32(pid),
    }));
    now(pb::StartResponse { pid: pid_u32(pid) })
}

fn state(shim: &Shim, exec_id: &str) -> Result<Answer> {
    let slot = slot_of(shim, exec_id)?;
    let p = &shim.procs[&slot];
    now(pb::StateResponse {
        id: shim.ident.id.clone(),
        exec_id: exec_id.to_string(),
        bundle: shim.ident.bundle.display().to_string(),
        pid: pid_u32(p.pid),
        status: p.status(shim.paused) as i32,
        stdin: p.stdio.stdin.clone(),
        stdout: p.stdio.stdout.clone(),
        stderr: p.stdio.stderr.clone(),
        terminal: p.stdio.terminal,
        exit_status: p.exit.map_or(0, |e| e.status),
        exited_at: p.exit.map(|e| ts(e.at)),
    })
}

fn wait(shim: &mut Shim, conn: u32, id: u32, exec_id: &str) -> Result<Answer> {
    let slot = slot_of(shim, exec_id)?;
    let p = shim.procs.get_mut(&slot).expect("slot exists");
    if p.reported {
        let e = p.exit.expect("reported exits are set");
        return now(pb::WaitResponse {
            exit_status: e.status,
            exited_at: Some(ts(e.at)),
        });
    }
    p.waiters.push((conn, id));
    Ok(Answer::Later)
}

fn kill(shim: &mut Shim, r: pb::KillRequest) -> Result<Answer> {
    let signal =
        i32::try_from(r.signal).map_err(|_| Error::InvalidArgument("bad signal".into()))?;
    if r.all && r.exec_id.is_empty() {
        let c = container(shim)?;
        c.cgroup.signal_all(signal);
        if signal == libc::SIGKILL && shim.paused {
            let _ = c.cgroup.thaw();
        }
        return now(pb::KillResponse {});
    }
    let slot = slot_of(shim, &r.exec_id)?;
    let p = &shim.procs[&slot];
    if p.exit.is_some() {
        return Err(Error::NotFound(format!(
            "process {} already finished",
            if r.exec_id.is_empty() {
                "init"
            } else {
                &r.exec_id
            }
        )));
    }
    crate::sys::process::kill(p.pid, signal)
        .map_err(|e| Error::sys("kill", format!("pid {}", p.pid), e))?;
    now(pb::KillResponse {})
}

fn exec(shim: &mut Shim, r: pb::ExecRequest) -> Result<Answer> {
    if r.exec_id.is_empty() {
        return Err(Error::InvalidArgument("exec id is empty".into()));
    }
    if shim
        .procs
        .iter()
        .any(|(s, p)| *s != 0 && p.exec_id == r.exec_id)
    {
        return Err(Error::AlreadyExists(format!("process {}", r.exec_id)));
    }
    let init_pid = match shim.procs.get(&0) {
        Some(p) if p.running() => p.pid,
        _ => {
            return Err(Error::FailedPrecondition(format!(
                "task {} is not running",
                shim.ident.id
            )));
        }
    };
    let process: oci_spec::runtime::Process = serde_json::from_slice(&r.process)
        .map_err(|e| Error::Spec(format!("exec process: {e}")))?;
    let terminal = r.terminal || process.terminal().unwrap_or(false);
    let stdio = StdioConfig {
        stdin: r.stdin,
        stdout: r.stdout,
        stderr: r.stderr,
        terminal,
        log_path: r.log_path,
        rotation: rotation(r.log_max_size, r.log_max_files),
        stdin_stream: r.stdin_stream,
        output_stream: r.output_stream,
    };
    stdio.validate()?;
    let (slot, token) = shim.alloc_slot(false);
    let (mut io, child) = ProcessIo::open(&r.exec_id, &stdio, token, &mut shim.logs)?;
    let c = container(shim)?;
    let mut created = c.spawn_exec(&shim.sys, init_pid, &process, child.raw())?;
    drop(child);
    if let Some(master) = created.pty_master.take() {
        io.attach_pty(master)?;
    }
    io.watch(&shim.poller);
    shim.procs
        .insert(slot, Proc::new(&r.exec_id, created, io, stdio));
    shim.emit(pb::event::Kind::ExecAdded(pb::ExecAdded {
        exec_id: r.exec_id,
    }));
    now(pb::ExecResponse {})
}

fn resize(shim: &mut Shim, r: pb::ResizePtyRequest) -> Result<Answer> {
    let slot = slot_of(shim, &r.exec_id)?;
    shim.procs[&slot].io.resize(r.width, r.height)?;
    now(pb::ResizePtyResponse {})
}

fn close_io(shim: &mut Shim, r: pb::CloseIoRequest) -> Result<Answer> {
    let slot = slot_of(shim, &r.exec_id)?;
    if r.stdin {
        shim.with_io(slot, |io, poller, buf, out| {
            io.close_stdin(poller, buf, out)
        });
    }
    now(pb::CloseIoResponse {})
}

fn write_stdin(shim: &mut Shim, conn: u32, id: u32, r: pb::WriteStdinRequest) -> Result<Answer> {
    let slot = slot_of(shim, &r.exec_id)?;
    let done = shim
        .with_io(slot, |io, poller, _, out| {
            io.write_stdin(poller, &r.data, conn, id, out)
        })
        .expect("slot exists")?;
    if done {
        now(pb::WriteStdinResponse {})
    } else {
        Ok(Answer::Later)
    }
}

fn attach(shim: &mut Shim, conn: u32, id: u32, r: pb::AttachRequest) -> Result<Answer> {
    let slot = slot_of(shim, &r.exec_id)?;
    let io = &shim.procs[&slot].io;
    let (stdout, stderr) = io.check_attach(r.stdout, r.stderr)?;
    let mut reply = pb::AttachResponse {
        stdout,
        stderr,
        ..Default::default()
    };
    if r.logs
        && let Some((path, inode, size)) = io.log_position()
    {
        reply.log_path = path;
        reply.log_inode = inode;
        reply.log_size = size;
    }
    // The reply goes first: the output frames that follow refer to it.
    shim.send(conn, &Frame::reply(id, reply.encode_to_vec()));
    shim.with_io(slot, |io, _, _, out| {
        io.add_attacher(conn, id, (stdout, stderr), r.logs, out);
    });
    tracing::debug!(exec_id = %display_name(&r.exec_id), stdout, stderr, "attached");
    Ok(Answer::Later)
}

fn detach(shim: &mut Shim, conn: u32, attach_id: u32) {
    for p in shim.procs.values_mut() {
        if p.io.remove_attacher(conn, attach_id) {
            return;
        }
    }
}

fn pause(shim: &mut Shim, freeze: bool) -> Result<Answer> {
    let c = container(shim)?;
    if !shim.procs.get(&0).is_some_and(Proc::running) {
        return Err(Error::FailedPrecondition(format!(
            "task {} is not running",
            shim.ident.id
        )));
    }
    if freeze {
        c.cgroup.freeze()?;
        shim.paused = true;
        shim.emit(pb::event::Kind::Paused(pb::Paused {}));
        now(pb::PauseResponse {})
    } else {
        c.cgroup.thaw()?;
        shim.paused = false;
        shim.emit(pb::event::Kind::Resumed(pb::Resumed {}));
        now(pb::ResumeResponse {})
    }
}

fn pids(shim: &Shim) -> Result<Answer> {
    let c = container(shim)?;
    let processes = c
        .cgroup
        .pids()
        .into_iter()
        .map(|pid| pb::ProcessInfo {
            pid: pid_u32(pid),
            exec_id: shim
                .procs
                .iter()
                .find(|(s, p)| **s != 0 && p.pid == pid && p.exit.is_none())
                .map(|(_, p)| p.exec_id.clone())
                .unwrap_or_default(),
        })
        .collect();
    now(pb::PidsResponse { processes })
}

fn update(shim: &Shim, r: pb::UpdateRequest) -> Result<Answer> {
    let c = container(shim)?;
    let res: oci_spec::runtime::LinuxResources =
        serde_json::from_slice(&r.resources).map_err(|e| Error::Spec(format!("resources: {e}")))?;
    c.cgroup.update(&res)?;
    now(pb::UpdateResponse {})
}

fn stats(shim: &Shim) -> Result<Answer> {
    now(container(shim)?.cgroup.stats())
}

fn delete(shim: &mut Shim, exec_id: &str) -> Result<Answer> {
    let slot = slot_of(shim, exec_id)?;
    let running = shim.procs[&slot].running();
    if running {
        return Err(Error::FailedPrecondition(format!(
            "process {} is running; kill it first",
            if exec_id.is_empty() { "init" } else { exec_id }
        )));
    }
    if slot == 0 {
        // Exec'd processes still around (possible without a pid namespace) go too.
        let others: Vec<u32> = shim.procs.keys().copied().filter(|s| *s != 0).collect();
        for s in others {
            discard(shim, s);
        }
    }
    let p = discard(shim, slot);
    let (status, at) = p
        .exit
        .map_or((137, SystemTime::now()), |e| (e.status, e.at));
    let reply = pb::DeleteResponse {
        pid: pid_u32(p.pid),
        exit_status: status,
        exited_at: Some(ts(at)),
    };
    if slot == 0 {
        shim.unwatch_oom();
        if let Some(mut c) = shim.container.take() {
            c.destroy(&shim.sys)?;
        }
        let _ = std::fs::remove_file(shim.ident.bundle.join("init.pid"));
        tracing::info!("task deleted; exiting");
        shim.exiting = true;
    }
    shim.emit(pb::event::Kind::Deleted(pb::Deleted {
        exec_id: exec_id.to_string(),
        pid: reply.pid,
        exit_status: reply.exit_status,
        exited_at: reply.exited_at,
    }));
    now(reply)
}

/// Removes a process: a created one is killed and reaped; its stdio is closed.
fn discard(shim: &mut Shim, slot: u32) -> Proc {
    let mut p = shim.procs.remove(&slot).expect("slot exists");
    if p.exit.is_none() {
        let _ = crate::sys::process::kill(p.pid, libc::SIGKILL);
        if let Ok(r) = crate::sys::process::reap(p.pid) {
            p.exit = Some(crate::task::Exit {
                status: r.status,
                at: SystemTime::now(),
            });
        }
    }
    p.created = None;
    shim.procs.insert(slot, p);
    shim.with_io(slot, |io, poller, _, out| io.shutdown(poller, out));
    let mut p = shim.procs.remove(&slot).expect("slot exists");
    for (conn, req) in std::mem::take(&mut p.waiters) {
        shim.send(
            conn,
            &Frame::error(
                req,
                code::NOT_FOUND,
                format!("process {} was deleted", p.exec_id),
            ),
        );
    }
    p
}

fn shutdown(shim: &mut Shim, force: bool) -> Result<Answer> {
    let running = shim.procs.get(&0).is_some_and(|p| p.exit.is_none());
    if running && !force {
        return Err(Error::FailedPrecondition(format!(
            "task {} is running; delete it first",
            shim.ident.id
        )));
    }
    let slots: Vec<u32> = shim.procs.keys().copied().collect();
    for s in slots {
        discard(shim, s);
    }
    shim.unwatch_oom();
    if let Some(mut c) = shim.container.take()
        && let Err(e) = c.destroy(&shim.sys)
    {
        tracing::warn!(error = %e, "cleanup at shutdown");
    }
    shim.exiting = true;
    now(pb::ShutdownResponse {})
}
