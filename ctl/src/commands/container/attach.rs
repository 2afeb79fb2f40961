//! `berthctl attach`, and the attach stream `run` and `start -a` use: options first,
//! `ready` back (then the container may be started), output until the end message.

use berth_api::berth::v1::attach_input::Input;
use berth_api::berth::v1::attach_output::Output;
use berth_api::berth::v1::{
    AttachInput, AttachOptions, AttachOutput, InspectContainerRequest, OutputStream, TerminalSize,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::session::{self, End, Event, Inputs, Io};
use super::{Client, client};
use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q).
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long = "sig-proxy", default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    sig_proxy: bool,
    container: String,
}

/// An open attach stream.
pub struct Opened {
    pub tx: mpsc::Sender<AttachInput>,
    pub output: tonic::Streaming<AttachOutput>,
    pub id: String,
    pub tty: bool,
}

/// Opens an attach stream and waits until the daemon registered it.
pub async fn open(c: &mut Client, opts: AttachOptions) -> anyhow::Result<Opened> {
    let (tx, rx) = mpsc::channel(16);
    tx.send(AttachInput {
        input: Some(Input::Options(opts)),
    })
    .await?;
    let mut output = c.attach(ReceiverStream::new(rx)).await?.into_inner();
    match output.message().await? {
        Some(AttachOutput {
            output: Some(Output::Ready(r)),
        }) => Ok(Opened {
            tx,
            output,
            id: r.id,
            tty: r.tty,
        }),
        other => anyhow::bail!("the daemon answered the attach with {other:?}"),
    }
}

pub fn inputs() -> Inputs<AttachInput> {
    Inputs {
        stdin: |data| AttachInput {
            input: Some(Input::Stdin(data)),
        },
        close_stdin: || AttachInput {
            input: Some(Input::CloseStdin(true)),
        },
        resize: |width, height| AttachInput {
            input: Some(Input::Resize(TerminalSize {
                width: width.into(),
                height: height.into(),
            })),
        },
    }
}

pub fn decode(o: AttachOutput) -> Event {
    match o.output {
        Some(Output::Frame(f)) => Event::Frame {
            stderr: f.stream == OutputStream::Stderr as i32,
            data: f.data,
        },
        Some(Output::End(e)) if e.detached => Event::End(End::Detached),
        Some(Output::End(e)) if !e.error.is_empty() => Event::End(End::Failed {
            code: if e.exit_code != 0 { e.exit_code } else { 125 },
            message: e.error,
        }),
        Some(Output::End(e)) => Event::End(End::Exited(e.exit_code)),
        _ => Event::Other,
    }
}

/// Runs an opened session to its end.
pub async fn pump(o: Opened, stdin: bool, sig_proxy: Option<Client>) -> anyhow::Result<End> {
    let io = Io {
        stdin,
        tty: o.tty,
        sig_proxy: sig_proxy.map(|c| (c, o.id.clone())),
    };
    session::pump(io, o.tx, inputs(), o.output, decode).await
}

/// What an end means for the exit code, printing why where docker does.
pub fn exit_code(end: &End) -> i32 {
    match end {
        End::Exited(c) => *c,
        End::Detached => 0,
        End::Failed { message, code } => {
            eprintln!("berthctl: {message}");
            *code
        }
    }
}

pub async fn run(g: &GlobalOptions, a: AttachArgs) -> anyhow::Result<i32> {
    let mut c = client(g).await?;
    let doc = c
        .inspect(InspectContainerRequest {
            id: a.container.clone(),
            size: false,
        })
        .await?
        .into_inner();
    let v: serde_json::Value = serde_json::from_slice(&doc.json)?;
    if v["State"]["Running"] != true {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    let stdin = !a.no_stdin && v["Config"]["OpenStdin"] == true;
    let opened = open(
        &mut c,
        AttachOptions {
            id: a.container,
            stdin,
            stdout: true,
            stderr: true,
            detach_keys: a.detach_keys.unwrap_or_default(),
            logs: false,
            size: None,
        },
    )
    .await?;
    let end = pump(opened, stdin, a.sig_proxy.then_some(c)).await?;
    Ok(exit_code(&end))
}
