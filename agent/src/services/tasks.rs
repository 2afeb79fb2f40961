//! containerd.services.tasks.v1.Tasks.

use std::sync::Arc;

use berth_api::containerd::runc::v1::{Options as RuncOptions, ProcessDetails};
use berth_api::containerd::services::tasks::v1::{
    CheckpointTaskRequest, CheckpointTaskResponse, CloseIoRequest, CreateTaskRequest,
    CreateTaskResponse, DeleteProcessRequest, DeleteResponse, DeleteTaskRequest,
    ExecProcessRequest, GetRequest, GetResponse, KillRequest, ListPidsRequest, ListPidsResponse,
    ListTasksRequest, ListTasksResponse, MetricsRequest, MetricsResponse, PauseTaskRequest,
    ResizePtyRequest, ResumeTaskRequest, StartRequest, StartResponse, UpdateTaskRequest,
    WaitRequest, WaitResponse, tasks_server,
};
use berth_api::containerd::types::Metric;
use berth_api::containerd::v1::types::{Process, ProcessInfo};
use tonic::{Request, Response, Status};

use super::convert::mounts_in;
use super::namespace;
use crate::core::Core;
use crate::filters::{Adaptor, Filter};
use crate::tasks::{CreateTask, Exit, ProcessState, Stdio};

pub struct Tasks {
    core: Arc<Core>,
}

impl Tasks {
    pub fn new(core: Arc<Core>) -> Self {
        Tasks { core }
    }
}

fn process_out(p: ProcessState) -> Process {
    Process {
        container_id: p.container_id.clone(),
        id: if p.exec_id.is_empty() {
            p.container_id
        } else {
            p.exec_id
        },
        pid: p.pid,
        status: p.status as i32,
        stdin: p.stdio.stdin,
        stdout: p.stdio.stdout,
        stderr: p.stdio.stderr,
        terminal: p.stdio.terminal,
        exit_status: p.exit_status,
        exited_at: p.exited_at.map(berth_api::time::from_unix_nanos),
    }
}

fn exited_at(e: &Exit) -> Option<prost_types::Timestamp> {
    Some(berth_api::time::from_unix_nanos(e.at))
}

/// `no_pivot_root` from the task options, whichever runc options type carries it.
fn no_pivot(options: Option<&prost_types::Any>) -> Result<bool, Status> {
    let Some(any) = options else { return Ok(false) };
    if any.type_url == berth_api::any::RUNC_OPTIONS {
        let o: RuncOptions = berth_api::any::unpack(any)
            .map_err(|e| Status::invalid_argument(format!("task options: {e}")))?;
        return Ok(o.no_pivot_root);
    }
    if let Ok(o) = berth_api::any::unpack::<berth_api::containerd::linux::runc::CreateOptions>(any)
    {
        return Ok(o.no_pivot_root);
    }
    Err(Status::invalid_argument(format!(
        "task options of type {:?} are not supported",
        any.type_url
    )))
}

struct MetricFields<'a>(&'a str, &'a str);

impl Adaptor for MetricFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first()?.as_str() {
            "id" => Some(self.0.to_string()),
            "namespace" => Some(self.1.to_string()),
            _ => None,
        }
    }
}

#[tonic::async_trait]
impl tasks_server::Tasks for Tasks {
    async fn create(
        &self,
        req: Request<CreateTaskRequest>,
    ) -> Result<Response<CreateTaskResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        if r.checkpoint.is_some() {
            return Err(Status::unimplemented(
                "restoring from a checkpoint is not supported",
            ));
        }
        let create = CreateTask {
            container_id: r.container_id.clone(),
            rootfs: mounts_in(r.rootfs),
            stdio: Stdio {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                terminal: r.terminal,
            },
            no_pivot: no_pivot(r.options.as_ref())?,
            log_path: None,
        };
        let p = self.core.tasks.create(&ns, create).await?;
        Ok(Response::new(CreateTaskResponse {
            container_id: r.container_id,
            pid: p.pid,
        }))
    }

    async fn start(&self, req: Request<StartRequest>) -> Result<Response<StartResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let pid = self
            .core
            .tasks
            .start(&ns, &r.container_id, &r.exec_id)
            .await?;
        Ok(Response::new(StartResponse { pid }))
    }

    async fn delete(
        &self,
        req: Request<DeleteTaskRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let e = self.core.tasks.delete(&ns, &r.container_id).await?;
        Ok(Response::new(DeleteResponse {
            id: r.container_id,
            pid: e.pid,
            exit_status: e.status,
            exited_at: exited_at(&e),
        }))
    }

    async fn delete_process(
        &self,
        req: Request<DeleteProcessRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let e = self
            .core
            .tasks
            .delete_process(&ns, &r.container_id, &r.exec_id)
            .await?;
        Ok(Response::new(DeleteResponse {
            id: r.exec_id,
            pid: e.pid,
            exit_status: e.status,
            exited_at: exited_at(&e),
        }))
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let p = self
            .core
            .tasks
            .state(&ns, &r.container_id, &r.exec_id)
            .await?;
        Ok(Response::new(GetResponse {
            process: Some(process_out(p)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let ns = namespace(&req)?;
        let tasks = self
            .core
            .tasks
            .list(&ns)
            .await?
            .into_iter()
            .map(|p| {
                // As containerd: List leaves container_id empty, the id names the task.
                let mut w = process_out(p);
                w.container_id.clear();
                w
            })
            .collect();
        Ok(Response::new(ListTasksResponse { tasks }))
    }

    async fn kill(&self, req: Request<KillRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        self.core
            .tasks
            .kill(&ns, &r.container_id, &r.exec_id, r.signal, r.all)
            .await?;
        Ok(Response::new(()))
    }

    async fn exec(&self, req: Request<ExecProcessRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let spec = r
            .spec
            .ok_or_else(|| Status::invalid_argument("exec: process spec is required"))?;
        let json = berth_api::any::raw(&spec, berth_api::any::PROCESS)
            .map_err(|e| Status::invalid_argument(format!("exec: {e}")))?
            .to_vec();
        let stdio = Stdio {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            terminal: r.terminal,
        };
        self.core
            .tasks
            .exec(&ns, &r.container_id, &r.exec_id, json, stdio)
            .await?;
        Ok(Response::new(()))
    }

    async fn resize_pty(&self, req: Request<ResizePtyRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        self.core
            .tasks
            .resize_pty(&ns, &r.container_id, &r.exec_id, r.width, r.height)
            .await?;
        Ok(Response::new(()))
    }

    async fn close_io(&self, req: Request<CloseIoRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        if r.stdin {
            self.core
                .tasks
                .close_io(&ns, &r.container_id, &r.exec_id)
                .await?;
        }
        Ok(Response::new(()))
    }

    async fn pause(&self, req: Request<PauseTaskRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        self.core
            .tasks
            .pause(&ns, &req.into_inner().container_id)
            .await?;
        Ok(Response::new(()))
    }

    async fn resume(&self, req: Request<ResumeTaskRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        self.core
            .tasks
            .resume(&ns, &req.into_inner().container_id)
            .await?;
        Ok(Response::new(()))
    }

    async fn list_pids(
        &self,
        req: Request<ListPidsRequest>,
    ) -> Result<Response<ListPidsResponse>, Status> {
        let ns = namespace(&req)?;
        let pids = self
            .core
            .tasks
            .pids(&ns, &req.into_inner().container_id)
            .await?;
        let processes = pids
            .into_iter()
            .map(|(pid, exec_id)| ProcessInfo {
                pid,
                info: (!exec_id.is_empty())
                    .then(|| berth_api::any::pack(&ProcessDetails { exec_id })),
            })
            .collect();
        Ok(Response::new(ListPidsResponse { processes }))
    }

    async fn checkpoint(
        &self,
        _: Request<CheckpointTaskRequest>,
    ) -> Result<Response<CheckpointTaskResponse>, Status> {
        Err(Status::unimplemented(
            "checkpointing tasks is not supported by berth",
        ))
    }

    async fn update(&self, req: Request<UpdateTaskRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let res = r
            .resources
            .ok_or_else(|| Status::invalid_argument("update: resources are required"))?;
        let json = berth_api::any::raw(&res, berth_api::any::LINUX_RESOURCES)
            .map_err(|e| Status::invalid_argument(format!("update: {e}")))?
            .to_vec();
        self.core.tasks.update(&ns, &r.container_id, json).await?;
        Ok(Response::new(()))
    }

    async fn metrics(
        &self,
        req: Request<MetricsRequest>,
    ) -> Result<Response<MetricsResponse>, Status> {
        let ns = namespace(&req)?;
        let filter = Filter::parse_all(&req.into_inner().filters)?;
        let mut metrics = Vec::new();
        for p in self.core.tasks.list(&ns).await? {
            if !filter.matches(&MetricFields(&p.container_id, &ns)) {
                continue;
            }
            let data = self.core.tasks.metrics(&ns, &p.container_id).await?;
            metrics.push(Metric {
                timestamp: Some(berth_api::time::now()),
                id: p.container_id,
                data: Some(data),
            });
        }
        Ok(Response::new(MetricsResponse { metrics }))
    }

    async fn wait(&self, req: Request<WaitRequest>) -> Result<Response<WaitResponse>, Status> {
        let ns = namespace(&req)?;
        let r = req.into_inner();
        let e = self
            .core
            .tasks
            .wait(&ns, &r.container_id, &r.exec_id)
            .await?;
        Ok(Response::new(WaitResponse {
            exit_status: e.status,
            exited_at: exited_at(&e),
        }))
    }
}
