//! `exec`: one more process in a running container. Its OCI process is the container's
//! (capabilities, seccomp, rlimits, no_new_privileges, env, user, cwd) with the
//! request's command, env, user, working directory and terminal; the shim clamps it to
//! the container. The output subscription is made before the process starts; the
//! session ends with its exit code (and the process is deleted), or at once with
//! `detach` (then berthd deletes it when it exits).

use std::sync::Arc;

use oci_spec::runtime::{Process, Spec};
use tokio::sync::mpsc;

use super::attach::{AttachInput, DetachScanner, parse_detach_keys};
use super::image::merge_env;
use super::model::Status;
use super::{start_failure_code, user};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::tasks::Stdio;

/// What `exec` runs.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub stdin: bool,
    pub privileged: bool,
    pub detach: bool,
    pub detach_keys: String,
    pub size: Option<(u32, u32)>,
}

/// What the session sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Frame {
        stderr: bool,
        data: Vec<u8>,
    },
    Exit {
        code: i32,
        error: String,
    },
    /// The detach keys ended the session; the process runs on.
    Detached,
}

/// A started (or failed) exec.
pub struct ExecSession {
    pub exec_id: String,
    /// 0 when the process could not be started (the events then hold its exit).
    pub pid: u32,
    pub events: mpsc::Receiver<ExecEvent>,
    pub input: mpsc::Sender<AttachInput>,
}

fn process_of(spec: &[u8], id: &str) -> Result<Process> {
    let spec: Spec = serde_json::from_slice(spec)
        .map_err(|e| Error::Internal(format!("container {id}: read its spec: {e}")))?;
    spec.process()
        .clone()
        .ok_or_else(|| Error::Internal(format!("container {id}: its spec has no process")))
}

/// The process of the exec, from the container's.
fn build_process(core: &Core, ns: &str, rec: &super::Record, req: &ExecRequest) -> Result<Vec<u8>> {
    let c = core.containers.get(ns, &rec.id)?;
    let spec = c
        .spec
        .ok_or_else(|| Error::Internal(format!("container {}: no spec", rec.id)))?;
    let mut p = process_of(&spec.value, &rec.id)?;
    p.set_args(Some(req.cmd.clone()));
    p.set_terminal(Some(req.tty));
    let mut env = p.env().clone().unwrap_or_default();
    if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p.set_env(Some(merge_env(&env, &req.env)));
    if !req.working_dir.is_empty() {
        p.set_cwd(super::mounts::clean_path(&req.working_dir).into());
    }
    if !req.user.is_empty() {
        let root = std::path::PathBuf::from(format!("/proc/{}/root", rec.state.pid));
        let u = user::resolve_in_root(&root, &req.user, &rec.host_config.group_add)?;
        let mut pu = p.user().clone();
        pu.set_uid(u.uid);
        pu.set_gid(u.gid);
        pu.set_additional_gids(Some(u.additional_gids.clone()));
        p.set_user(pu);
    }
    if req.privileged {
        // Every capability; the shim clamps the set to the container's bounding set.
        let mut spec = Spec::default();
        let opts = berth_shim::spec_defaults::SecurityOptions {
            privileged: true,
            ..Default::default()
        };
        berth_shim::spec_defaults::apply(&mut spec, &opts)
            .map_err(|e| Error::Internal(format!("privileged exec: {e}")))?;
        if let Some(caps) = spec
            .process()
            .as_ref()
            .and_then(|sp| sp.capabilities().clone())
        {
            p.set_capabilities(Some(caps));
        }
    }
    serde_json::to_vec(&p).map_err(Error::from)
}

/// Starts `req` in the container `input` names.
pub async fn exec(
    core: &Arc<Core>,
    ns: &str,
    input: &str,
    req: ExecRequest,
) -> Result<ExecSession> {
    if req.cmd.is_empty() {
        return Err(Error::InvalidArgument("exec: a command is required".into()));
    }
    let rec = core.berth.store.resolve(ns, input)?;
    match rec.state.status {
        Status::Running => {}
        Status::Paused => {
            return Err(Error::FailedPrecondition(format!(
                "container {} is paused, unpause the container before exec",
                rec.name
            )));
        }
        _ => {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                rec.name
            )));
        }
    }
    let keys = parse_detach_keys(&req.detach_keys)?;
    let process = build_process(core, ns, &rec, &req)?;
    let exec_id = hex::encode(rand::random::<[u8; 16]>());
    let id = rec.id.clone();
    let (events_tx, events) = mpsc::channel(64);
    let (input_tx, mut input_rx) = mpsc::channel::<AttachInput>(64);
    // A command that cannot be run is the session's end (docker's 126 or 127), not an
    // error of the call.
    let failed = |e: Error| async {
        let message = e.to_string();
        match start_failure_code(&message) {
            125 => Err(e),
            code => {
                let _ = events_tx
                    .send(ExecEvent::Exit {
                        code,
                        error: message,
                    })
                    .await;
                Ok(())
            }
        }
    };
    let created = core
        .tasks
        .exec(
            ns,
            &id,
            &exec_id,
            process,
            Stdio {
                terminal: req.tty,
                stdin_stream: req.stdin,
                output_stream: true,
                ..Default::default()
            },
        )
        .await;
    if let Err(e) = created {
        failed(e).await?;
        return Ok(ExecSession {
            exec_id,
            pid: 0,
            events,
            input: input_tx,
        });
    }
    let mut output = match core.tasks.attach(ns, &id, &exec_id, true, true).await {
        Ok(o) => o,
        Err(e) => {
            let _ = core.tasks.delete_process(ns, &id, &exec_id).await;
            return Err(e);
        }
    };
    let pid = match core.tasks.start(ns, &id, &exec_id).await {
        Ok(pid) => pid,
        Err(e) => {
            let _ = core.tasks.delete_process(ns, &id, &exec_id).await;
            failed(e).await?;
            return Ok(ExecSession {
                exec_id,
                pid: 0,
                events,
                input: input_tx,
            });
        }
    };
    if let Some((w, h)) = req.size {
        let _ = core.tasks.resize_pty(ns, &id, &exec_id, w, h).await;
    }
    let (core2, ns2, eid) = (core.clone(), ns.to_string(), exec_id.clone());
    let detach = req.detach;
    let (stdin, tty) = (req.stdin, req.tty);
    tokio::spawn(async move {
        let mut scanner = DetachScanner::new(keys);
        let mut input_open = !detach;
        let mut attached = !detach;
        while attached {
            tokio::select! {
                ev = output.recv() => match ev {
                    Some(berth_api::shim::OutputEvent::Data { stream, data }) => {
                        let stderr = stream == berth_api::berth::shim::v1::Stream::Stderr;
                        if events_tx.send(ExecEvent::Frame { stderr, data }).await.is_err() {
                            attached = false;
                        }
                    }
                    Some(berth_api::shim::OutputEvent::Eof) | None => break,
                    Some(_) => {}
                },
                i = input_rx.recv(), if input_open => match i {
                    Some(AttachInput::Stdin(data)) if stdin => {
                        let (pass, d) = scanner.feed(&data);
                        if !pass.is_empty() {
                            let _ = core2.tasks.write_stdin(&ns2, &id, &eid, pass).await;
                        }
                        if d {
                            let _ = events_tx.send(ExecEvent::Detached).await;
                            attached = false;
                        }
                    }
                    Some(AttachInput::Resize(w, h)) => {
                        let _ = core2.tasks.resize_pty(&ns2, &id, &eid, w, h).await;
                    }
                    Some(AttachInput::CloseStdin) if stdin && !tty => {
                        let _ = core2.tasks.close_io(&ns2, &id, &eid).await;
                    }
                    Some(AttachInput::Detach) => {
                        let _ = events_tx.send(ExecEvent::Detached).await;
                        attached = false;
                    }
                    Some(_) => {}
                    None => input_open = false,
                },
            }
        }
        // Detached (or never attached): the output subscription goes; the process runs on.
        drop(output);
        let exit = core2.tasks.wait(&ns2, &id, &eid).await;
        let _ = core2.tasks.delete_process(&ns2, &id, &eid).await;
        if attached {
            let (code, error) = match exit {
                Ok(e) => (e.status as i32, String::new()),
                Err(e) => (125, e.to_string()),
            };
            let _ = events_tx.send(ExecEvent::Exit { code, error }).await;
        }
    });
    Ok(ExecSession {
        exec_id,
        pid,
        events,
        input: input_tx,
    })
}
