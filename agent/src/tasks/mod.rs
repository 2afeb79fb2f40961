//! Tasks: running containers through one `berth-shim` per task.
//!
//! berthd starts the shim (`berth-shim start`, which detaches so the container outlives
//! berthd), talks to it over its unix socket (`berth_api::shim`), turns its events into
//! `/tasks/*` events, and at start reconnects to every shim whose bundle is left under
//! `<state>/tasks/`. A shim that dies is noticed (its event stream ends and its socket
//! no longer answers): the task is reported stopped with status 255, what it left is
//! cleaned up, and Tasks.Delete removes the record.

mod bundle;
mod monitor;
mod shim;
mod types;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use berth_api::berth::shim::v1 as pb;
use berth_api::containerd::events as ce;
use berth_api::shim::{ClientError, OutputStream, ShimClient};

pub use shim::{ShimCommand, locate as locate_shim};
pub use types::{CreateTask, Exit, ProcessState, SHIM_DIED_STATUS, Status, Stdio};

use crate::containers::Containers;
use crate::error::{Error, Result};
use crate::events::Exchange;
use crate::snapshots::Snapshots;

fn now_nanos() -> i64 {
    berth_api::time::to_unix_nanos(std::time::SystemTime::now())
}

/// One task: its shim and what berthd knows of it.
pub struct Task {
    pub ns: String,
    pub id: String,
    bundle: PathBuf,
    socket: PathBuf,
    client: tokio::sync::Mutex<Option<ShimClient>>,
    init_pid: AtomicU32,
    /// Set once the init process is deleted (the shim exits).
    deleted: AtomicBool,
    /// Set when the shim died without the task being deleted.
    dead: Mutex<Option<Exit>>,
    /// Held while what a dead shim left is cleaned up (taken before `dead` is set), so
    /// a Delete that sees the task dead waits for the cleanup before the bundle goes.
    cleanup: tokio::sync::Mutex<()>,
}

impl Task {
    fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::SeqCst);
    }

    fn dead(&self) -> Option<Exit> {
        *self.dead.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn set_client(&self, c: ShimClient) {
        *self.client.lock().await = Some(c);
    }

    /// A live connection to the shim, reconnecting when the last one ended.
    async fn client(&self) -> Result<ShimClient> {
        let mut guard = self.client.lock().await;
        if let Some(c) = guard.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        let c = shim::connect(&self.socket).await.map_err(|e| {
            Error::Unavailable(format!("task {}: shim not reachable: {e}", self.id))
        })?;
        *guard = Some(c.clone());
        Ok(c)
    }

    fn dead_state(&self, exec_id: &str, exit: Exit) -> Result<ProcessState> {
        if !exec_id.is_empty() {
            return Err(Error::NotFound(format!(
                "process {exec_id} of task {}",
                self.id
            )));
        }
        Ok(ProcessState {
            container_id: self.id.clone(),
            exec_id: String::new(),
            pid: exit.pid,
            status: Status::Stopped,
            stdio: Stdio::default(),
            exit_status: exit.status,
            exited_at: Some(exit.at),
        })
    }
}

/// Tasks by (namespace, container id).
type TaskMap = HashMap<(String, String), Arc<Task>>;

/// Every task of this berthd.
#[derive(Clone)]
pub struct Tasks {
    state: PathBuf,
    shim: ShimCommand,
    events: Exchange,
    containers: Containers,
    snapshots: Snapshots,
    tasks: Arc<Mutex<TaskMap>>,
}

fn state_from_wire(container_id: &str, s: pb::StateResponse) -> ProcessState {
    ProcessState {
        container_id: container_id.to_string(),
        exec_id: s.exec_id,
        pid: s.pid,
        status: Status::from_wire(s.status),
        stdio: Stdio {
            stdin: s.stdin,
            stdout: s.stdout,
            stderr: s.stderr,
            terminal: s.terminal,
            ..Default::default()
        },
        exit_status: s.exit_status,
        exited_at: berth_api::time::wire_to_unix_nanos(s.exited_at.as_ref()),
    }
}

fn exit_from_wire(pid: u32, status: u32, at: Option<prost_types::Timestamp>) -> Exit {
    Exit {
        pid,
        status,
        at: berth_api::time::wire_to_unix_nanos(at.as_ref()).unwrap_or_else(now_nanos),
    }
}

impl Tasks {
    pub fn new(
        state: PathBuf,
        shim: ShimCommand,
        events: Exchange,
        containers: Containers,
        snapshots: Snapshots,
    ) -> Tasks {
        Tasks {
            state,
            shim,
            events,
            containers,
            snapshots,
            tasks: Default::default(),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, TaskMap> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The task of container `id` in `ns`.
    pub fn get(&self, ns: &str, id: &str) -> Result<Arc<Task>> {
        self.map()
            .get(&(ns.to_string(), id.to_string()))
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("task {id}")))
    }

    fn register(&self, task: Arc<Task>) -> Result<()> {
        let mut map = self.map();
        let key = (task.ns.clone(), task.id.clone());
        if map.contains_key(&key) {
            return Err(Error::AlreadyExists(format!("task {}", task.id)));
        }
        map.insert(key, task);
        Ok(())
    }

    fn unregister(&self, task: &Task) {
        self.map().remove(&(task.ns.clone(), task.id.clone()));
    }

    /// Creates the task of a container: bundle, shim, container process (not started).
    pub async fn create(&self, ns: &str, req: CreateTask) -> Result<ProcessState> {
        let id = req.container_id.clone();
        let container = self.containers.get(ns, &id)?;
        let spec = container
            .spec
            .as_ref()
            .ok_or_else(|| Error::FailedPrecondition(format!("container {id} has no spec")))?;
        if spec.type_url != berth_api::any::SPEC {
            return Err(Error::InvalidArgument(format!(
                "container {id}: spec type {:?} is not an OCI runtime spec",
                spec.type_url
            )));
        }
        let rootfs = if req.rootfs.is_empty() && !container.snapshot_key.is_empty() {
            self.snapshots
                .get(ns, &container.snapshotter)?
                .mounts(&container.snapshot_key)
                .await?
        } else {
            req.rootfs.clone()
        };
        let dir = bundle::dir(&self.state, ns, &id);
        let socket = bundle::socket(&self.state, ns, &id);
        let task = Arc::new(Task {
            ns: ns.to_string(),
            id: id.clone(),
            bundle: dir.clone(),
            socket: socket.clone(),
            client: tokio::sync::Mutex::new(None),
            init_pid: AtomicU32::new(0),
            deleted: AtomicBool::new(false),
            dead: Mutex::new(None),
            cleanup: tokio::sync::Mutex::new(()),
        });
        self.register(task.clone())?;
        match self
            .start_shim(&task, &req, spec.value.as_slice(), rootfs.clone())
            .await
        {
            Ok(pid) => {
                task.init_pid.store(pid, Ordering::SeqCst);
                self.events.publish(
                    ns,
                    "/tasks/create",
                    &ce::TaskCreate {
                        container_id: id.clone(),
                        bundle: dir.display().to_string(),
                        rootfs: rootfs
                            .into_iter()
                            .map(|m| berth_api::containerd::types::Mount {
                                r#type: m.kind,
                                source: m.source,
                                target: String::new(),
                                options: m.options,
                            })
                            .collect(),
                        io: Some(ce::TaskIo {
                            stdin: req.stdio.stdin.clone(),
                            stdout: req.stdio.stdout.clone(),
                            stderr: req.stdio.stderr.clone(),
                            terminal: req.stdio.terminal,
                        }),
                        checkpoint: String::new(),
                        pid,
                    },
                );
                Ok(ProcessState {
                    container_id: id,
                    exec_id: String::new(),
                    pid,
                    status: Status::Created,
                    stdio: req.stdio,
                    exit_status: 0,
                    exited_at: None,
                })
            }
            Err(e) => {
                self.unregister(&task);
                if let Err(rm) = bundle::remove(&dir) {
                    tracing::warn!(task = %id, error = %rm, "remove bundle after a failed create");
                }
                Err(e)
            }
        }
    }

    async fn start_shim(
        &self,
        task: &Arc<Task>,
        req: &CreateTask,
        spec: &[u8],
        rootfs: Vec<berth_snapshotter::Mount>,
    ) -> Result<u32> {
        let began = std::time::Instant::now();
        bundle::create(&task.bundle, spec)?;
        let bundled = began.elapsed();
        self.shim
            .start(&task.ns, &task.id, &task.bundle, &task.socket)
            .await?;
        let started = began.elapsed();
        let fail = async |e: Error| {
            if let Ok(c) = ShimClient::connect(&task.socket).await {
                let _ = c.shutdown(true).await;
            }
            e
        };
        // `start` returned once the shim listens: no Connect round trip is needed.
        let client = match ShimClient::connect(&task.socket).await {
            Ok(c) => c,
            Err(e) => return Err(fail(shim::error(&task.id, e)).await),
        };
        // Subscribe before anything can happen, so no event is missed.
        let events = match client.subscribe().await {
            Ok(ev) => ev,
            Err(e) => return Err(fail(shim::error(&task.id, e)).await),
        };
        let created = client
            .create(pb::CreateRequest {
                id: task.id.clone(),
                bundle: task.bundle.display().to_string(),
                rootfs: rootfs
                    .into_iter()
                    .map(|m| pb::Mount {
                        r#type: m.kind,
                        source: m.source,
                        options: m.options,
                    })
                    .collect(),
                stdin: req.stdio.stdin.clone(),
                stdout: req.stdio.stdout.clone(),
                stderr: req.stdio.stderr.clone(),
                terminal: req.stdio.terminal,
                no_pivot: req.no_pivot,
                log_path: req
                    .log_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                stdin_stream: req.stdio.stdin_stream,
                output_stream: req.stdio.output_stream,
                log_max_size: req.log_max_size,
                log_max_files: req.log_max_files,
            })
            .await;
        let created = match created {
            Ok(c) => c,
            Err(e) => return Err(fail(shim::error(&task.id, e)).await),
        };
        tracing::debug!(
            task = %task.id,
            bundle_us = bundled.as_micros() as u64,
            shim_start_us = (started - bundled).as_micros() as u64,
            connect_create_us = (began.elapsed() - started).as_micros() as u64,
            "task created"
        );
        task.set_client(client).await;
        self.monitor(task.clone(), events);
        Ok(created.pid)
    }

    /// Starts the init process (`exec_id` empty) or an exec'd one.
    pub async fn start(&self, ns: &str, id: &str, exec_id: &str) -> Result<u32> {
        let task = self.get(ns, id)?;
        if task.dead().is_some() {
            return Err(Error::FailedPrecondition(format!(
                "task {id}: its shim died"
            )));
        }
        let c = task.client().await?;
        Ok(c.start(exec_id).await.map_err(|e| shim::error(id, e))?.pid)
    }

    /// The state of a process.
    pub async fn state(&self, ns: &str, id: &str, exec_id: &str) -> Result<ProcessState> {
        let task = self.get(ns, id)?;
        if let Some(exit) = task.dead() {
            return task.dead_state(exec_id, exit);
        }
        match task.client().await {
            Ok(c) => match c.state(exec_id).await {
                Ok(s) => Ok(state_from_wire(id, s)),
                Err(ClientError::Closed) => self.after_loss(&task, exec_id).await,
                Err(e) => Err(shim::error(id, e)),
            },
            Err(_) => self.after_loss(&task, exec_id).await,
        }
    }

    /// When a shim stops answering: it was deleted meanwhile (NotFound) or it died.
    async fn after_loss(&self, task: &Arc<Task>, exec_id: &str) -> Result<ProcessState> {
        if task.is_deleted() {
            return Err(Error::NotFound(format!("task {}", task.id)));
        }
        let exit = self.shim_died(task).await;
        task.dead_state(exec_id, exit)
    }

    /// Every task of a namespace, as its init process's state.
    pub async fn list(&self, ns: &str) -> Result<Vec<ProcessState>> {
        let ids: Vec<String> = self
            .map()
            .keys()
            .filter(|(n, _)| n == ns)
            .map(|(_, id)| id.clone())
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.state(ns, &id, "").await {
                Ok(s) => out.push(s),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(out)
    }

    /// Waits for a process to exit; answers at once for one that has.
    pub async fn wait(&self, ns: &str, id: &str, exec_id: &str) -> Result<Exit> {
        let task = self.get(ns, id)?;
        loop {
            if let Some(exit) = task.dead() {
                task.dead_state(exec_id, exit)?;
                return Ok(exit);
            }
            let c = match task.client().await {
                Ok(c) => c,
                Err(_) => {
                    if task.is_deleted() {
                        return Err(Error::NotFound(format!("task {id}")));
                    }
                    self.shim_died(&task).await;
                    continue;
                }
            };
            match c.wait(exec_id).await {
                Ok(w) => {
                    let pid = if exec_id.is_empty() {
                        task.init_pid.load(Ordering::SeqCst)
                    } else {
                        0
                    };
                    return Ok(exit_from_wire(pid, w.exit_status, w.exited_at));
                }
                // The connection dropped: loop to reconnect, or find the shim dead.
                Err(ClientError::Closed) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                Err(e) => return Err(shim::error(id, e)),
            }
        }
    }

    /// Sends a signal to a process, or to every process of the task with `all`.
    pub async fn kill(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
        signal: u32,
        all: bool,
    ) -> Result<()> {
        let task = self.get(ns, id)?;
        if task.dead().is_some() {
            return Err(Error::NotFound(format!(
                "task {id}: process already finished"
            )));
        }
        let c = task.client().await?;
        c.kill(exec_id, signal, all)
            .await
            .map_err(|e| shim::error(id, e))
    }

    /// Adds a process to a running task (started with [`Tasks::start`]).
    pub async fn exec(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
        process_json: Vec<u8>,
        stdio: Stdio,
    ) -> Result<()> {
        crate::identifiers::validate("exec", exec_id)?;
        let task = self.get(ns, id)?;
        let c = task.client().await?;
        c.exec(pb::ExecRequest {
            exec_id: exec_id.into(),
            process: process_json,
            stdin: stdio.stdin,
            stdout: stdio.stdout,
            stderr: stdio.stderr,
            terminal: stdio.terminal,
            log_path: String::new(),
            stdin_stream: stdio.stdin_stream,
            output_stream: stdio.output_stream,
            ..Default::default()
        })
        .await
        .map_err(|e| shim::error(id, e))
    }

    /// Subscribes to a process's output from now on (before Start: all of it).
    pub async fn attach(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
        stdout: bool,
        stderr: bool,
    ) -> Result<OutputStream> {
        let c = self.get(ns, id)?.client().await?;
        c.attach(pb::AttachRequest {
            exec_id: exec_id.into(),
            stdout,
            stderr,
            logs: false,
        })
        .await
        .map_err(|e| shim::error(id, e))
    }

    /// Appends to the stdin of a process created with a stdin stream; returns once the
    /// data is in its pipe (or terminal).
    pub async fn write_stdin(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
        data: Vec<u8>,
    ) -> Result<()> {
        let c = self.get(ns, id)?.client().await?;
        c.write_stdin(exec_id, data)
            .await
            .map_err(|e| shim::error(id, e))
    }

    pub async fn resize_pty(
        &self,
        ns: &str,
        id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<()> {
        let c = self.get(ns, id)?.client().await?;
        c.resize_pty(exec_id, width, height)
            .await
            .map_err(|e| shim::error(id, e))
    }

    pub async fn close_io(&self, ns: &str, id: &str, exec_id: &str) -> Result<()> {
        let c = self.get(ns, id)?.client().await?;
        c.close_io(exec_id).await.map_err(|e| shim::error(id, e))
    }

    pub async fn pause(&self, ns: &str, id: &str) -> Result<()> {
        let c = self.get(ns, id)?.client().await?;
        c.pause().await.map_err(|e| shim::error(id, e))
    }

    pub async fn resume(&self, ns: &str, id: &str) -> Result<()> {
        let c = self.get(ns, id)?.client().await?;
        c.resume().await.map_err(|e| shim::error(id, e))
    }

    /// The processes of a task: (pid, exec id or empty).
    pub async fn pids(&self, ns: &str, id: &str) -> Result<Vec<(u32, String)>> {
        let c = self.get(ns, id)?.client().await?;
        let procs = c.pids().await.map_err(|e| shim::error(id, e))?;
        Ok(procs.into_iter().map(|p| (p.pid, p.exec_id)).collect())
    }

    /// Changes the task's resources (OCI `LinuxResources` JSON).
    pub async fn update(&self, ns: &str, id: &str, resources_json: Vec<u8>) -> Result<()> {
        let c = self.get(ns, id)?.client().await?;
        c.update(resources_json)
            .await
            .map_err(|e| shim::error(id, e))
    }

    /// Cgroup metrics of a task, packed as containerd's v1 or v2 metrics `Any`.
    pub async fn metrics(&self, ns: &str, id: &str) -> Result<prost_types::Any> {
        use berth_api::berth::shim::v1::stats_response::Metrics;
        let c = self.get(ns, id)?.client().await?;
        match c.stats().await.map_err(|e| shim::error(id, e))?.metrics {
            Some(Metrics::V1(m)) => Ok(berth_api::any::pack(&m)),
            Some(Metrics::V2(m)) => Ok(berth_api::any::pack(&m)),
            None => Err(Error::Unavailable(format!("task {id}: no metrics"))),
        }
    }

    /// Deletes an exec'd process (exited, or created and never started).
    pub async fn delete_process(&self, ns: &str, id: &str, exec_id: &str) -> Result<Exit> {
        if exec_id.is_empty() {
            return Err(Error::InvalidArgument("exec id is required".into()));
        }
        let c = self.get(ns, id)?.client().await?;
        let d = c.delete(exec_id).await.map_err(|e| shim::error(id, e))?;
        Ok(exit_from_wire(d.pid, d.exit_status, d.exited_at))
    }

    /// Deletes a stopped (or created) task: the shim unmounts the rootfs, removes the
    /// cgroup and exits; the bundle goes.
    pub async fn delete(&self, ns: &str, id: &str) -> Result<Exit> {
        let task = self.get(ns, id)?;
        let exit = match task.dead() {
            Some(exit) => {
                // The shim's leftovers were cleaned when it was found dead; wait for
                // that cleanup to end, as it reads the bundle.
                drop(task.cleanup.lock().await);
                self.events.publish(
                    ns,
                    "/tasks/delete",
                    &ce::TaskDelete {
                        container_id: id.into(),
                        pid: exit.pid,
                        exit_status: exit.status,
                        exited_at: Some(berth_api::time::from_unix_nanos(exit.at)),
                        id: id.into(),
                    },
                );
                exit
            }
            None => {
                let began = std::time::Instant::now();
                let c = task.client().await?;
                let d = c.delete("").await.map_err(|e| shim::error(id, e))?;
                tracing::debug!(task = %id, shim_delete_us = began.elapsed().as_micros() as u64, "shim deleted the task");
                task.mark_deleted();
                exit_from_wire(d.pid, d.exit_status, d.exited_at)
            }
        };
        self.unregister(&task);
        bundle::discard(&self.state, &task.bundle)?;
        Ok(exit)
    }

    /// Records that a task's shim is gone: status 255, an exit event, cleanup of what
    /// the shim left (processes, rootfs mount, cgroup). Returns the recorded exit.
    async fn shim_died(&self, task: &Arc<Task>) -> Exit {
        let _cleaning = task.cleanup.lock().await;
        let exit = {
            let mut dead = task.dead.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(exit) = *dead {
                return exit;
            }
            let exit = Exit {
                pid: task.init_pid.load(Ordering::SeqCst),
                status: SHIM_DIED_STATUS,
                at: now_nanos(),
            };
            *dead = Some(exit);
            exit
        };
        tracing::warn!(namespace = %task.ns, task = %task.id, "shim died; task marked stopped");
        self.events.publish(
            &task.ns,
            "/tasks/exit",
            &ce::TaskExit {
                container_id: task.id.clone(),
                id: task.id.clone(),
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: Some(berth_api::time::from_unix_nanos(exit.at)),
            },
        );
        if let Err(e) = self.shim.cleanup(&task.ns, &task.id, &task.bundle).await {
            tracing::warn!(task = %task.id, error = %e, "clean up after a dead shim");
        }
        exit
    }

    /// Reconnects to the shims of a previous run of berthd; tasks whose shim is gone
    /// are cleaned up and reported stopped.
    pub async fn recover(&self) {
        bundle::empty_trash(&self.state);
        for (ns, id, dir) in bundle::list(&self.state) {
            let socket = bundle::socket(&self.state, &ns, &id);
            let task = Arc::new(Task {
                ns: ns.clone(),
                id: id.clone(),
                bundle: dir,
                socket: socket.clone(),
                client: tokio::sync::Mutex::new(None),
                init_pid: AtomicU32::new(0),
                deleted: AtomicBool::new(false),
                dead: Mutex::new(None),
                cleanup: tokio::sync::Mutex::new(()),
            });
            if self.register(task.clone()).is_err() {
                continue;
            }
            let live = async {
                let c = ShimClient::connect(&socket).await.ok()?;
                let info = c.connect_info().await.ok()?;
                let events = c.subscribe().await.ok()?;
                Some((c, info, events))
            }
            .await;
            match live {
                Some((c, info, events)) => {
                    task.init_pid.store(info.task_pid, Ordering::SeqCst);
                    task.set_client(c).await;
                    self.monitor(task, events);
                    tracing::info!(namespace = %ns, task = %id, shim = info.shim_pid, "reconnected to shim");
                }
                None => {
                    if let Ok(pid) = std::fs::read_to_string(task.bundle.join("init.pid")) {
                        task.init_pid
                            .store(pid.trim().parse().unwrap_or(0), Ordering::SeqCst);
                    }
                    self.shim_died(&task).await;
                }
            }
        }
    }
}
