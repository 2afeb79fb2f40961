//! `berthctl exec`: a new process in a running container, attached (or `-d`).

use berth_api::berth::v1::exec_input::Input;
use berth_api::berth::v1::exec_output::Output;
use berth_api::berth::v1::{ExecConfig, ExecInput, ExecOutput, OutputStream, TerminalSize};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::session::{self, End, Event, Inputs, Io};
use super::{client, start_failure_code};
use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    privileged: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER")]
    argv: Vec<String>,
}

fn inputs() -> Inputs<ExecInput> {
    Inputs {
        stdin: |data| ExecInput {
            input: Some(Input::Stdin(data)),
        },
        close_stdin: || ExecInput {
            input: Some(Input::CloseStdin(true)),
        },
        resize: |width, height| ExecInput {
            input: Some(Input::Resize(TerminalSize {
                width: width.into(),
                height: height.into(),
            })),
        },
    }
}

fn decode(o: ExecOutput) -> Event {
    match o.output {
        Some(Output::Frame(f)) => Event::Frame {
            stderr: f.stream == OutputStream::Stderr as i32,
            data: f.data,
        },
        Some(Output::Exit(e)) if e.detached => Event::End(End::Detached),
        Some(Output::Exit(e)) if !e.error.is_empty() => Event::End(End::Failed {
            code: if e.exit_code != 0 {
                e.exit_code
            } else {
                start_failure_code(&e.error)
            },
            message: e.error,
        }),
        Some(Output::Exit(e)) => Event::End(End::Exited(e.exit_code)),
        _ => Event::Other,
    }
}

pub async fn run(g: &GlobalOptions, a: ExecArgs) -> anyhow::Result<i32> {
    let env = a
        .env
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect();
    let stdin = a.interactive && !a.detach;
    let config = ExecConfig {
        id: a.argv[0].clone(),
        cmd: a.argv[1..].to_vec(),
        env,
        user: a.user.unwrap_or_default(),
        working_dir: a.workdir.unwrap_or_default(),
        tty: a.tty,
        stdin,
        privileged: a.privileged,
        detach: a.detach,
        detach_keys: a.detach_keys.unwrap_or_default(),
        size: None,
    };
    let (tx, rx) = mpsc::channel(16);
    tx.send(ExecInput {
        input: Some(Input::Config(config)),
    })
    .await?;
    let mut output = client(g)
        .await?
        .exec(ReceiverStream::new(rx))
        .await?
        .into_inner();
    match output.message().await? {
        Some(ExecOutput {
            output: Some(Output::Started(_)),
        }) => {}
        Some(other) => {
            if let Event::End(end) = decode(other) {
                return Ok(super::attach::exit_code(&end));
            }
            anyhow::bail!("the daemon did not start the process");
        }
        None => anyhow::bail!("the daemon ended the exec without starting it"),
    }
    if a.detach {
        return Ok(0);
    }
    let io = Io {
        stdin,
        tty: a.tty,
        sig_proxy: None,
    };
    let end = session::pump(io, tx, inputs(), output, decode).await?;
    Ok(super::attach::exit_code(&end))
}
