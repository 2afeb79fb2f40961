//! `stop`, `restart`, `kill`, `pause`, `unpause`, `wait` and `rename`: one call per
//! container named, the name echoed on success, docker's messages on failure.

use berth_api::berth::v1::{
    KillContainerRequest, PauseContainerRequest, RenameContainerRequest, RestartContainerRequest,
    StopContainerRequest, UnpauseContainerRequest, WaitCondition, WaitContainerRequest,
};

use super::client;
use crate::global::GlobalOptions;
use crate::output::daemon_error;

#[derive(clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_hyphen_values = true
    )]
    time: Option<i32>,
    /// Signal to send to the container.
    #[arg(short = 's', long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(clap::Args)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

/// Runs `f` for every container, printing its name on success and the error otherwise;
/// 1 when any failed.
async fn each<F, Fut>(names: Vec<String>, mut f: F) -> anyhow::Result<i32>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let mut code = 0;
    for n in names {
        match f(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(s) => {
                eprintln!("{}", daemon_error(&s));
                code = 1;
            }
        }
    }
    Ok(code)
}

pub async fn stop(g: &GlobalOptions, a: StopArgs, restart: bool) -> anyhow::Result<i32> {
    let c = client(g).await?;
    let (time, signal) = (a.time, a.signal.unwrap_or_default());
    each(a.containers, |id| {
        let mut c = c.clone();
        let signal = signal.clone();
        async move {
            if restart {
                c.restart(RestartContainerRequest { id, timeout: time })
                    .await
                    .map(drop)
            } else {
                c.stop(StopContainerRequest {
                    id,
                    timeout: time,
                    signal,
                })
                .await
                .map(drop)
            }
        }
    })
    .await
}

pub async fn kill(g: &GlobalOptions, a: KillArgs) -> anyhow::Result<i32> {
    let c = client(g).await?;
    let signal = a.signal;
    each(a.containers, |id| {
        let mut c = c.clone();
        let signal = signal.clone();
        async move { c.kill(KillContainerRequest { id, signal }).await.map(drop) }
    })
    .await
}

pub async fn pause(g: &GlobalOptions, a: NamesArgs, pause: bool) -> anyhow::Result<i32> {
    let c = client(g).await?;
    each(a.containers, |id| {
        let mut c = c.clone();
        async move {
            if pause {
                c.pause(PauseContainerRequest { id }).await.map(drop)
            } else {
                c.unpause(UnpauseContainerRequest { id }).await.map(drop)
            }
        }
    })
    .await
}

pub async fn wait(g: &GlobalOptions, a: NamesArgs) -> anyhow::Result<i32> {
    let mut c = client(g).await?;
    let mut code = 0;
    for id in a.containers {
        let result = async {
            let mut s = c
                .wait(WaitContainerRequest {
                    id,
                    condition: WaitCondition::NotRunning as i32,
                })
                .await?
                .into_inner();
            let mut last = None;
            while let Some(m) = s.message().await? {
                if !m.waiting {
                    last = Some(m.status_code);
                }
            }
            Ok::<_, tonic::Status>(last)
        }
        .await;
        match result {
            Ok(Some(status)) => println!("{status}"),
            Ok(None) => {
                eprintln!("berthctl: the wait ended without a status");
                code = 1;
            }
            Err(s) => {
                eprintln!("{}", daemon_error(&s));
                code = 1;
            }
        }
    }
    Ok(code)
}

pub async fn rename(g: &GlobalOptions, a: RenameArgs) -> anyhow::Result<i32> {
    client(g)
        .await?
        .rename(RenameContainerRequest {
            id: a.container,
            new_name: a.new_name,
        })
        .await?;
    Ok(0)
}
