//! One attached session (`run`, `start -a`, `attach`, `exec`): local stdin to the
//! container (with `-i`), its output to stdout and stderr, terminal resizes (with `-t`),
//! signals forwarded as kills (sig-proxy, without `-t`), until the end message.

use std::io::Write;

use berth_api::berth::v1::KillContainerRequest;
use futures::{Stream, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::{Client, tty};

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Exited(i32),
    Detached,
    /// The process could not be run, with docker's exit code.
    Failed {
        message: String,
        code: i32,
    },
}

/// One message of the output stream.
pub enum Event {
    Frame { stderr: bool, data: Vec<u8> },
    End(End),
    Other,
}

/// What to build input messages from.
pub struct Inputs<I> {
    pub stdin: fn(Vec<u8>) -> I,
    pub close_stdin: fn() -> I,
    pub resize: fn(u16, u16) -> I,
}

/// The local side of a session.
pub struct Io {
    /// Forward local stdin.
    pub stdin: bool,
    /// The container has a terminal: raw mode and resizes.
    pub tty: bool,
    /// Forward signals to this container (sig-proxy).
    pub sig_proxy: Option<(Client, String)>,
}

fn write_out(stderr: bool, data: &[u8]) {
    if stderr {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(data);
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(data);
        let _ = o.flush();
    }
}

/// Signals docker's sig-proxy forwards.
const PROXIED: &[(i32, &str)] = &[
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGUSR2, "SIGUSR2"),
];

fn proxy_signals(client: Client, id: String) {
    use tokio::signal::unix::{SignalKind, signal};
    for (num, name) in PROXIED {
        let Ok(mut s) = signal(SignalKind::from_raw(*num)) else {
            continue;
        };
        let (mut c, id, name) = (client.clone(), id.clone(), name.to_string());
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                let _ = c
                    .kill(KillContainerRequest {
                        id: id.clone(),
                        signal: name.clone(),
                    })
                    .await;
            }
        });
    }
}

/// Runs the session until its end message (or the stream ends: an error).
pub async fn pump<I, O, S>(
    io: Io,
    tx: mpsc::Sender<I>,
    inputs: Inputs<I>,
    mut output: S,
    decode: fn(O) -> Event,
) -> anyhow::Result<End>
where
    I: Send + 'static,
    S: Stream<Item = Result<O, tonic::Status>> + Unpin,
{
    let _raw = io.tty.then(tty::RawMode::enter);
    if io.tty {
        if let Some((w, h)) = tty::size() {
            let _ = tx.send((inputs.resize)(w, h)).await;
        }
        let (tx2, resize) = (tx.clone(), inputs.resize);
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut winch) = signal(SignalKind::window_change()) else {
                return;
            };
            while winch.recv().await.is_some() {
                if let Some((w, h)) = tty::size()
                    && tx2.send(resize(w, h)).await.is_err()
                {
                    return;
                }
            }
        });
    }
    if let Some((client, id)) = io.sig_proxy
        && !io.tty
    {
        proxy_signals(client, id);
    }
    if io.stdin {
        let (tx2, data, close) = (tx.clone(), inputs.stdin, inputs.close_stdin);
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = tx2.send(close()).await;
                        return;
                    }
                    Ok(n) => {
                        if tx2.send(data(buf[..n].to_vec())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    while let Some(msg) = output.next().await {
        match decode(msg?) {
            Event::Frame { stderr, data } => write_out(stderr, &data),
            Event::End(end) => return Ok(end),
            Event::Other => {}
        }
    }
    anyhow::bail!("the daemon ended the session without saying how")
}
