//! The two bidirectional streams of berth.v1.Containers, Attach and Exec: the first
//! input message configures the session, later ones are forwarded to it, and its
//! events become output messages.

use std::sync::Arc;

use berth_api::berth::v1::{self as pb, attach_input, exec_input};
use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::convert;
use crate::berth_containers as bc;
use crate::core::Core;

type Stream_<T> = tonic::codegen::BoxStream<T>;

/// Forwards the client's later input messages to the session.
fn forward<M: Send + 'static>(
    mut input: Streaming<M>,
    tx: tokio::sync::mpsc::Sender<bc::AttachInput>,
    decode: fn(M) -> Option<bc::AttachInput>,
) {
    tokio::spawn(async move {
        while let Some(Ok(m)) = input.next().await {
            if let Some(i) = decode(m)
                && tx.send(i).await.is_err()
            {
                return;
            }
        }
    });
}

fn attach_input(m: pb::AttachInput) -> Option<bc::AttachInput> {
    use attach_input::Input;
    match m.input? {
        Input::Stdin(d) => convert::session_input(Some(d), None, false, false),
        Input::Resize(s) => convert::session_input(None, Some(s), false, false),
        Input::CloseStdin(c) => convert::session_input(None, None, c, false),
        Input::Detach(d) => convert::session_input(None, None, false, d),
        Input::Options(_) => None,
    }
}

fn exec_input(m: pb::ExecInput) -> Option<bc::AttachInput> {
    use exec_input::Input;
    match m.input? {
        Input::Stdin(d) => convert::session_input(Some(d), None, false, false),
        Input::Resize(s) => convert::session_input(None, Some(s), false, false),
        Input::CloseStdin(c) => convert::session_input(None, None, c, false),
        Input::Config(_) => None,
    }
}

pub async fn attach(
    core: &Arc<Core>,
    ns: &str,
    mut input: Streaming<pb::AttachInput>,
) -> Result<Stream_<pb::AttachOutput>, Status> {
    let first = input.next().await.ok_or_else(|| {
        Status::invalid_argument("attach: the first message must carry the options")
    })??;
    let Some(attach_input::Input::Options(opts)) = first.input else {
        return Err(Status::invalid_argument(
            "attach: the first message must carry the options",
        ));
    };
    if opts.logs {
        return Err(Status::unimplemented(
            "attach with logs: read them with Logs, then attach",
        ));
    }
    let id = opts.id.clone();
    let session = bc::attach(core, ns, &id, convert::attach_in(opts))?;
    forward(input, session.input, attach_input);
    let ready = pb::AttachOutput {
        output: Some(pb::attach_output::Output::Ready(pb::AttachReady {
            id: session.id,
            tty: session.tty,
        })),
    };
    let events = ReceiverStream::new(session.events).map(|e| Ok(convert::attach_event_out(e)));
    Ok(Box::pin(
        futures::stream::once(async { Ok(ready) }).chain(events),
    ))
}

pub async fn exec(
    core: &Arc<Core>,
    ns: &str,
    mut input: Streaming<pb::ExecInput>,
) -> Result<Stream_<pb::ExecOutput>, Status> {
    let first = input.next().await.ok_or_else(|| {
        Status::invalid_argument("exec: the first message must carry the config")
    })??;
    let Some(exec_input::Input::Config(config)) = first.input else {
        return Err(Status::invalid_argument(
            "exec: the first message must carry the config",
        ));
    };
    let id = config.id.clone();
    let session = bc::exec(core, ns, &id, convert::exec_in(config)).await?;
    forward(input, session.input, exec_input);
    let started = (session.pid > 0).then_some(pb::ExecOutput {
        output: Some(pb::exec_output::Output::Started(pb::ExecStarted {
            exec_id: session.exec_id,
            pid: session.pid,
        })),
    });
    let events = ReceiverStream::new(session.events).map(|e| Ok(convert::exec_event_out(e)));
    Ok(Box::pin(
        futures::stream::iter(started.map(Ok)).chain(events),
    ))
}
