//! `attach`: a client joined to a container's streams. Its output comes from the
//! container's [`Hub`](super::hub::Hub) (so several clients see the same bytes and none
//! can slow the container), its stdin goes to the task's stdin stream (with `-i`), with
//! docker's detach keys (default ctrl-p ctrl-q) recognised in it. The session ends with
//! the container's exit (after its last output) or a detach. A client may attach to a
//! container that is not running yet: it then sees the next run from its first byte.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::hub::Chunk;
use super::model::Record;
use crate::core::Core;
use crate::error::{Error, Result};

/// docker's default detach keys: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// How long after the exit the last output may still arrive.
const DRAIN: Duration = Duration::from_millis(500);

/// What the client asks for.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// docker's syntax (`ctrl-p,ctrl-q`); empty: the default.
    pub detach_keys: String,
    /// Terminal size to set once attached.
    pub size: Option<(u32, u32)>,
}

/// What the client sends during the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachInput {
    Stdin(Vec<u8>),
    Resize(u32, u32),
    /// The client's stdin ended.
    CloseStdin,
    Detach,
}

/// How a session ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachEnd {
    pub detached: bool,
    pub exited: bool,
    pub exit_code: i32,
    pub error: String,
}

/// What the session sends to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachEvent {
    Frame { stderr: bool, data: Vec<u8> },
    End(AttachEnd),
}

/// A registered session.
pub struct Attached {
    pub id: String,
    pub tty: bool,
    pub events: mpsc::Receiver<AttachEvent>,
    pub input: mpsc::Sender<AttachInput>,
}

/// Parses docker's detach keys: comma-separated `ctrl-<c>` (a-z, @, [, \, ], ^, _) or
/// single characters.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    if s.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let bad = || {
        Error::InvalidArgument(format!(
            "invalid detach keys {s:?}: expected e.g. ctrl-p,ctrl-q"
        ))
    };
    s.split(',')
        .map(|k| {
            let k = k.trim();
            if let Some(c) = k.strip_prefix("ctrl-") {
                let mut chars = c.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii_alphabetic() => {
                        Ok(c.to_ascii_lowercase() as u8 - b'a' + 1)
                    }
                    (Some(c @ ('@' | '[' | '\\' | ']' | '^' | '_')), None) => Ok(c as u8 & 0x1f),
                    _ => Err(bad()),
                }
            } else if k.len() == 1 && k.is_ascii() {
                Ok(k.as_bytes()[0])
            } else {
                Err(bad())
            }
        })
        .collect()
}

/// Finds the detach sequence in a stdin stream that arrives in chunks.
#[derive(Debug)]
pub struct DetachScanner {
    keys: Vec<u8>,
    /// How much of the sequence the held-back bytes match.
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        DetachScanner { keys, matched: 0 }
    }

    /// The bytes to pass on, and whether the sequence completed (then what followed it
    /// is dropped, as docker does).
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // Not the sequence after all: the held bytes go through.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Registers a session on the container `input` names. Output sent from now on reaches
/// it; the caller may then start the container.
pub fn attach(core: &Arc<Core>, ns: &str, input: &str, req: AttachRequest) -> Result<Attached> {
    let rec = core.berth.store.resolve(ns, input)?;
    let keys = parse_detach_keys(&req.detach_keys)?;
    let slot = core.berth.slot(ns, &rec);
    let output = slot.hub.subscribe();
    let watch = slot.watch.subscribe();
    let (events_tx, events) = mpsc::channel(64);
    let (input_tx, input_rx) = mpsc::channel(64);
    let session = Session {
        core: core.clone(),
        ns: ns.to_string(),
        stdin: req.stdin && rec.config.open_stdin,
        rec: rec.clone(),
        req,
        scanner: DetachScanner::new(keys),
        events: events_tx,
    };
    tokio::spawn(session.run(output, watch, input_rx));
    Ok(Attached {
        id: rec.id,
        tty: rec.config.tty,
        events,
        input: input_tx,
    })
}

struct Session {
    core: Arc<Core>,
    ns: String,
    rec: Record,
    req: AttachRequest,
    stdin: bool,
    scanner: DetachScanner,
    events: mpsc::Sender<AttachEvent>,
}

impl Session {
    fn end_of(w: &super::Watched) -> AttachEnd {
        AttachEnd {
            detached: false,
            exited: true,
            exit_code: w.exit_code,
            error: w.error.clone(),
        }
    }

    /// Handles one input; Some(end) when it ends the session.
    async fn input(&mut self, i: AttachInput) -> Option<AttachEnd> {
        let (ns, id) = (self.ns.as_str(), self.rec.id.as_str());
        match i {
            AttachInput::Stdin(data) if self.stdin => {
                let (pass, detach) = self.scanner.feed(&data);
                if !pass.is_empty()
                    && let Err(e) = self.core.tasks.write_stdin(ns, id, "", pass).await
                {
                    tracing::debug!(container = %id, error = %e, "write to stdin");
                }
                if detach {
                    return Some(AttachEnd {
                        detached: true,
                        ..Default::default()
                    });
                }
            }
            AttachInput::Stdin(_) => {}
            AttachInput::Resize(w, h) => {
                let _ = self.core.tasks.resize_pty(ns, id, "", w, h).await;
            }
            AttachInput::CloseStdin => {
                if self.stdin && self.rec.config.stdin_once && !self.rec.config.tty {
                    let _ = self.core.tasks.close_io(ns, id, "").await;
                }
            }
            AttachInput::Detach => {
                return Some(AttachEnd {
                    detached: true,
                    ..Default::default()
                });
            }
        }
        None
    }

    fn wanted(&self, stderr: bool) -> bool {
        if stderr {
            self.req.stderr
        } else {
            self.req.stdout
        }
    }

    async fn run(
        mut self,
        mut output: broadcast::Receiver<Arc<Chunk>>,
        mut watch: tokio::sync::watch::Receiver<super::Watched>,
        mut input: mpsc::Receiver<AttachInput>,
    ) {
        let first_exits = watch.borrow_and_update().exits;
        if let Some((w, h)) = self.req.size {
            let _ = self
                .core
                .tasks
                .resize_pty(&self.ns, &self.rec.id, "", w, h)
                .await;
        }
        let mut input_open = true;
        // The output of this run ended (or the exit came long enough ago).
        let mut output_done = false;
        let mut exited: Option<AttachEnd> = None;
        let end = loop {
            if let Some(e) = &exited
                && output_done
            {
                break e.clone();
            }
            let drain = async {
                match (&exited, output_done) {
                    (Some(_), false) => tokio::time::sleep(DRAIN).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                i = input.recv(), if input_open => match i {
                    Some(i) => {
                        if let Some(end) = self.input(i).await {
                            break end;
                        }
                    }
                    None => input_open = false,
                },
                chunk = output.recv(), if !output_done => match chunk {
                    Ok(c) => match &*c {
                        Chunk::Data { stderr, data } if self.wanted(*stderr) => {
                            let frame = AttachEvent::Frame { stderr: *stderr, data: data.clone() };
                            if self.events.send(frame).await.is_err() {
                                return;
                            }
                        }
                        Chunk::Data { .. } => {}
                        Chunk::Eof => output_done = true,
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(container = %self.rec.id, chunks = n, "attached client fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => output_done = true,
                },
                changed = watch.changed(), if exited.is_none() => {
                    let w = watch.borrow_and_update().clone();
                    if changed.is_err() || w.removed || w.exits > first_exits {
                        exited = Some(Self::end_of(&w));
                    }
                }
                _ = drain => output_done = true,
            }
        };
        let _ = self.events.send(AttachEvent::End(end)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("").unwrap(), [0x10, 0x11]);
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [0x10, 0x11]);
        assert_eq!(parse_detach_keys("ctrl-x").unwrap(), [0x18]);
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-_").unwrap(),
            [b'a', 0, 0x1f]
        );
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(parse_detach_keys("meta-x").is_err());
    }

    #[test]
    fn the_sequence_is_found_across_chunks() {
        let mut s = DetachScanner::new(vec![0x10, 0x11]);
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
        let mut s = DetachScanner::new(vec![0x10, 0x11]);
        assert_eq!(s.feed(b"x\x10\x11"), (b"x".to_vec(), true));
    }
}
