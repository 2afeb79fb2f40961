//! `berthctl run` and `create`: a container from an image (pulled when missing, as
//! docker does), then for `run` attached (or `-d`: its ID printed) with docker's exit
//! codes: the container's own, 125 when berth fails, 126/127 when the command cannot be
//! run.

use berth_api::berth::v1::pull_image_progress::Event as PullEvent;
use berth_api::berth::v1::{
    AttachOptions, CreateContainerRequest, PullImageRequest, StartContainerRequest, WaitCondition,
    WaitContainerRequest,
};

use super::flags::CreateFlags;
use super::{Client, attach, client, start_failure_code};
use crate::commands::image::{self, auth_for, registry_of};
use crate::global::GlobalOptions;
use crate::output::daemon_error;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Proxy received signals to the process.
    #[arg(long = "sig-proxy", default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    sig_proxy: bool,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short = 'a', long = "attach")]
    attach: Vec<String>,
    #[command(flatten)]
    flags: CreateFlags,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE"
    )]
    argv: Vec<String>,
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    flags: CreateFlags,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE"
    )]
    argv: Vec<String>,
}

/// Pulls `reference`, status lines on stderr (run's output stays the container's).
async fn pull(g: &GlobalOptions, reference: &str) -> anyhow::Result<()> {
    let auth = auth_for(&registry_of(reference))?;
    let mut stream = image::client(g)
        .await?
        .pull(PullImageRequest {
            reference: reference.to_string(),
            auth,
            ..Default::default()
        })
        .await?
        .into_inner();
    while let Some(msg) = stream.message().await? {
        if let Some(PullEvent::Status(s)) = msg.event {
            eprintln!("{s}");
        }
    }
    Ok(())
}

/// Creates the container, pulling its image first when it is missing (`--pull`).
async fn create_pulling(
    g: &GlobalOptions,
    c: &mut Client,
    req: CreateContainerRequest,
    policy: &str,
) -> anyhow::Result<String> {
    let image = req
        .config
        .as_ref()
        .map(|c| c.image.clone())
        .unwrap_or_default();
    if policy == "always" {
        pull(g, &image).await?;
    }
    let created = match c.create(req.clone()).await {
        Err(s)
            if s.code() == tonic::Code::NotFound
                && s.message().contains("No such image")
                && policy == "missing" =>
        {
            eprintln!("Unable to find image '{image}' locally");
            pull(g, &image).await?;
            c.create(req).await?
        }
        other => other?,
    }
    .into_inner();
    for w in created.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(created.id)
}

fn split(argv: &[String]) -> (&str, &[String]) {
    (argv[0].as_str(), &argv[1..])
}

fn check_pull(p: &str) -> anyhow::Result<()> {
    if !matches!(p, "always" | "missing" | "never") {
        anyhow::bail!(
            "invalid pull option {p:?}: must be one of \"always\", \"missing\" or \"never\""
        );
    }
    Ok(())
}

/// Prints a daemon error as docker's run does and gives its code (125).
fn failed(e: anyhow::Error) -> i32 {
    match e.downcast_ref::<tonic::Status>() {
        Some(s) => eprintln!("berthctl: {}", daemon_error(s)),
        None => eprintln!("berthctl: {}", crate::output::describe(&e)),
    }
    125
}

pub async fn create(g: &GlobalOptions, a: CreateArgs) -> anyhow::Result<i32> {
    check_pull(&a.flags.pull)?;
    let (image, cmd) = split(&a.argv);
    let req = a.flags.request(image, cmd)?;
    let mut c = client(g).await?;
    match create_pulling(g, &mut c, req, &a.flags.pull).await {
        Ok(id) => {
            println!("{id}");
            Ok(0)
        }
        Err(e) => Ok(failed(e)),
    }
}

/// Starts `id`; a failure is printed and gives docker's code.
pub async fn start_or_code(c: &mut Client, id: &str) -> Option<i32> {
    match c.start(StartContainerRequest { id: id.to_string() }).await {
        Ok(_) => None,
        Err(s) => {
            eprintln!("berthctl: {}", daemon_error(&s));
            Some(start_failure_code(s.message()))
        }
    }
}

pub async fn run(g: &GlobalOptions, a: RunArgs) -> anyhow::Result<i32> {
    check_pull(&a.flags.pull)?;
    if a.detach && a.flags.rm && a.flags.restart.as_deref().is_some_and(|r| r != "no") {
        anyhow::bail!("conflicting options: --restart and --rm");
    }
    let (image, cmd) = split(&a.argv);
    let mut req = a.flags.request(image, cmd)?;
    let wants = |s: &str| a.attach.is_empty() || a.attach.iter().any(|x| x.eq_ignore_ascii_case(s));
    let stdin = a.flags.interactive && wants("stdin");
    if let Some(cfg) = req.config.as_mut() {
        cfg.attach_stdin = stdin && !a.detach;
        cfg.attach_stdout = wants("stdout") && !a.detach;
        cfg.attach_stderr = wants("stderr") && !a.detach;
    }
    let mut c = client(g).await?;
    let id = match create_pulling(g, &mut c, req, &a.flags.pull).await {
        Ok(id) => id,
        Err(e) => return Ok(failed(e)),
    };
    if a.detach {
        if let Some(code) = start_or_code(&mut c, &id).await {
            return Ok(code);
        }
        println!("{id}");
        return Ok(0);
    }
    // With --rm, wait for the removal too, so the container is gone when run returns.
    let removed = if a.flags.rm {
        let mut w = c
            .wait(WaitContainerRequest {
                id: id.clone(),
                condition: WaitCondition::Removed as i32,
            })
            .await?
            .into_inner();
        w.message().await?;
        Some(w)
    } else {
        None
    };
    let opened = attach::open(
        &mut c,
        AttachOptions {
            id: id.clone(),
            stdin,
            stdout: wants("stdout"),
            stderr: wants("stderr"),
            detach_keys: a.detach_keys.clone().unwrap_or_default(),
            logs: false,
            size: None,
        },
    )
    .await?;
    if let Some(code) = start_or_code(&mut c, &id).await {
        return Ok(code);
    }
    let end = attach::pump(opened, stdin, a.sig_proxy.then(|| c.clone())).await?;
    let code = attach::exit_code(&end);
    if let (Some(mut w), super::session::End::Exited(_)) = (removed, &end) {
        // The daemon removes the container right after the exit.
        let _ = w.message().await;
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    #[command(disable_help_flag = true)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn flags_stop_at_the_image() {
        let c = Cli::try_parse_from([
            "run",
            "-d",
            "--rm",
            "-h",
            "box",
            "-e",
            "A=1",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo -n hi",
            "--rm",
        ])
        .unwrap()
        .run;
        assert!(c.detach && c.flags.rm);
        assert_eq!(c.flags.hostname.as_deref(), Some("box"));
        assert_eq!(c.flags.name.as_deref(), Some("web"));
        assert_eq!(c.argv, ["busybox", "sh", "-c", "echo -n hi", "--rm"]);
        let c = Cli::try_parse_from(["run", "-it", "--sig-proxy=false", "img"])
            .unwrap()
            .run;
        assert!(c.flags.interactive && c.flags.tty && !c.sig_proxy);
        assert_eq!(c.argv, ["img"]);
        assert!(Cli::try_parse_from(["run", "-d"]).is_err());
    }
}
