//! A process's stdio: the client FIFOs (ctr's model), berth's streams (stdin fed by
//! WriteStdin, output to Attach subscribers), pipes or a pty to the process, the
//! json-lines log, and the [`pump::Pump`]s that copy between them.
//!
//! Output of a process goes, chunk by chunk as read, to its FIFO (if any; a full FIFO
//! holds the pump back), its log (always written) and its Attach subscribers (never
//! waited for). A stream is captured (piped) when it has a FIFO, a log or
//! `output_stream`; a terminal's output always is. Otherwise it is /dev/null.

pub mod attach;
pub mod log;
pub mod pump;
pub mod stdin;

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::rc::Rc;

use berth_api::shim::frame::Frame;

use crate::error::{Error, Result};
use crate::sys::fd;
use crate::sys::poll::Poller;
use attach::Attachers;
use log::{LogSet, LogWriter, Rotation, Stream};
use pump::{Pump, Role};
use stdin::StdinStream;

/// Pump index (in the token) of the WriteStdin stream.
pub const STDIN_STREAM_INDEX: usize = 0x7f;

/// Where frames for clients go: the shim's connections.
pub trait Outbox {
    /// Queues a reply or error frame on `conn` (dropped when it is gone).
    fn send(&mut self, conn: u32, frame: &Frame);
    /// True while `conn` is open.
    fn alive(&self, conn: u32) -> bool;
    /// Queues an event frame for request `id` on `conn`. With `limit`, only when the
    /// connection's unsent bytes stay within it. False when not queued.
    fn event(&mut self, conn: u32, id: u32, payload: &[u8], limit: Option<usize>) -> bool;
}

/// The stdio a client asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StdioConfig {
    /// stdin FIFO; empty: /dev/null (or the WriteStdin stream).
    pub stdin: String,
    /// stdout FIFO; empty: /dev/null (or the log, or Attach only).
    pub stdout: String,
    /// stderr FIFO; empty: /dev/null (or the log, or Attach only).
    pub stderr: String,
    /// Use a pty.
    pub terminal: bool,
    /// json-lines log file; empty: none.
    pub log_path: String,
    /// Log rotation.
    pub rotation: Rotation,
    /// stdin is fed by WriteStdin.
    pub stdin_stream: bool,
    /// Capture output for Attach even without FIFO or log.
    pub output_stream: bool,
}

impl StdioConfig {
    /// Refuses contradictory settings.
    pub fn validate(&self) -> Result<()> {
        if self.stdin_stream && !self.stdin.is_empty() {
            return Err(Error::InvalidArgument(
                "stdin_stream and a stdin FIFO exclude each other".into(),
            ));
        }
        Ok(())
    }
}

/// The descriptors the child gets (dropped by the shim once the child is cloned).
pub struct ChildSide {
    fds: Option<[OwnedFd; 3]>,
}

impl ChildSide {
    /// Raw descriptors for 0, 1, 2; `None` for a terminal.
    pub fn raw(&self) -> Option<[RawFd; 3]> {
        self.fds
            .as_ref()
            .map(|f| [f[0].as_raw_fd(), f[1].as_raw_fd(), f[2].as_raw_fd()])
    }
}

/// A process's stdio on the shim's side.
pub struct ProcessIo {
    /// The exec id (empty: init), named in Output frames.
    exec_id: String,
    pumps: Vec<Pump>,
    /// The pty master (for window sizes), for a terminal.
    pty: Option<OwnedFd>,
    log: Option<Rc<RefCell<LogWriter>>>,
    /// Partial lines held back from the log, by stream.
    partial: [Vec<u8>; 2],
    stdin_fifo: Option<OwnedFd>,
    stdout_fifo: Option<(OwnedFd, OwnedFd)>,
    /// Terminal and `stdin_stream`: the stdin stream is set up with the pty master.
    want_stdin_stream: bool,
    stdin_stream: Option<StdinStream>,
    attachers: Attachers,
    /// Set once the end of output was announced to subscribers.
    finished: bool,
    token: u64,
}

fn open_err(path: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io("open fifo", path, e)
}

/// Rejects a pump index that does not fit the token's 7 bits.
fn check_index(n: usize) -> Result<()> {
    if n >= STDIN_STREAM_INDEX {
        return Err(Error::InvalidArgument("too many stdio streams".into()));
    }
    Ok(())
}

impl ProcessIo {
    /// Opens the client FIFOs, the log and, without a terminal, the pipes to the
    /// process. `token` is the base token of this process's pumps (pump i uses
    /// `token | i << 1`, the WriteStdin stream `token | STDIN_STREAM_INDEX << 1`).
    pub fn open(
        exec_id: &str,
        cfg: &StdioConfig,
        token: u64,
        logs: &mut LogSet,
    ) -> Result<(ProcessIo, ChildSide)> {
        cfg.validate()?;
        let log = if cfg.log_path.is_empty() {
            None
        } else {
            Some(logs.get(Path::new(&cfg.log_path), cfg.rotation)?)
        };
        let mut io = ProcessIo {
            exec_id: exec_id.to_string(),
            pumps: Vec::new(),
            pty: None,
            log,
            partial: [Vec::new(), Vec::new()],
            stdin_fifo: None,
            stdout_fifo: None,
            want_stdin_stream: false,
            stdin_stream: None,
            attachers: Attachers::default(),
            finished: false,
            token,
        };
        if cfg.terminal {
            if !cfg.stdin.is_empty() {
                io.stdin_fifo = Some(
                    fd::open_fifo_reader(Path::new(&cfg.stdin)).map_err(open_err(&cfg.stdin))?,
                );
            }
            io.want_stdin_stream = cfg.stdin_stream;
            if !cfg.stdout.is_empty() {
                io.stdout_fifo = Some(
                    fd::open_fifo_writer(Path::new(&cfg.stdout)).map_err(open_err(&cfg.stdout))?,
                );
            }
            return Ok((io, ChildSide { fds: None }));
        }
        let null = || fd::dev_null().map_err(|e| Error::io("open", "/dev/null", e));
        let pipe = || fd::pipe().map_err(|e| Error::sys("pipe", "-", e));
        let stdin_child = if cfg.stdin_stream {
            let (r, w) = pipe()?;
            io.stdin_stream = Some(StdinStream::new(w, false, io.stdin_token()));
            r
        } else if cfg.stdin.is_empty() {
            null()?
        } else {
            let fifo = fd::open_fifo_reader(Path::new(&cfg.stdin)).map_err(open_err(&cfg.stdin))?;
            let (r, w) = pipe()?;
            let t = io.next_token()?;
            io.pumps
                .push(Pump::new(Role::Stdin, fifo, Some(w), None, t));
            r
        };
        let out = |path: &str, role: Role, io: &mut ProcessIo| -> Result<OwnedFd> {
            if path.is_empty() && io.log.is_none() && !cfg.output_stream {
                return null();
            }
            let (dst, keep) = if path.is_empty() {
                (None, None)
            } else {
                let (w, k) = fd::open_fifo_writer(Path::new(path)).map_err(open_err(path))?;
                (Some(w), Some(k))
            };
            let (r, w) = pipe()?;
            let t = io.next_token()?;
            io.pumps.push(Pump::new(role, r, dst, keep, t));
            Ok(w)
        };
        let stdout_child = out(&cfg.stdout, Role::Stdout, &mut io)?;
        let stderr_child = out(&cfg.stderr, Role::Stderr, &mut io)?;
        Ok((
            io,
            ChildSide {
                fds: Some([stdin_child, stdout_child, stderr_child]),
            },
        ))
    }

    fn next_token(&self) -> Result<u64> {
        check_index(self.pumps.len())?;
        Ok(self.token | ((self.pumps.len() as u64) << 1))
    }

    fn stdin_token(&self) -> u64 {
        self.token | ((STDIN_STREAM_INDEX as u64) << 1) | pump::DST
    }

    /// Terminal: connects the pty master to the FIFOs and streams once the child sent
    /// it. Its output is always read (so a terminal nobody reads never blocks).
    pub fn attach_pty(&mut self, master: OwnedFd) -> Result<()> {
        let dup = |m: &OwnedFd| m.try_clone().map_err(|e| Error::io("dup", "pty master", e));
        if let Some(fifo) = self.stdin_fifo.take() {
            let t = self.next_token()?;
            self.pumps
                .push(Pump::new(Role::Stdin, fifo, Some(dup(&master)?), None, t));
        }
        if self.want_stdin_stream {
            self.stdin_stream = Some(StdinStream::new(dup(&master)?, true, self.stdin_token()));
        }
        let (dst, keep) = match self.stdout_fifo.take() {
            Some((w, k)) => (Some(w), Some(k)),
            None => (None, None),
        };
        let t = self.next_token()?;
        self.pumps
            .push(Pump::new(Role::Stdout, dup(&master)?, dst, keep, t));
        self.pty = Some(master);
        Ok(())
    }

    /// Starts watching the pumps' descriptors.
    pub fn watch(&mut self, poller: &Poller) {
        for p in &mut self.pumps {
            p.sync(poller);
        }
    }

    /// Dispatches a ready descriptor (`index` and `side` from the token).
    pub fn on_ready(
        &mut self,
        poller: &Poller,
        index: usize,
        side: u64,
        buf: &mut [u8],
        out: &mut dyn Outbox,
    ) {
        if index == STDIN_STREAM_INDEX {
            if let Some(s) = &mut self.stdin_stream {
                s.on_writable(poller, &self.exec_id, out);
            }
            return;
        }
        let ProcessIo {
            exec_id,
            pumps,
            log,
            partial,
            attachers,
            ..
        } = self;
        let Some(p) = pumps.get_mut(index) else {
            return;
        };
        if side == pump::DST {
            p.on_writable(poller);
            return;
        }
        let Some(stream) = p.role().stream() else {
            p.on_readable(poller, buf, &mut |_| {});
            return;
        };
        let mut log = log.as_ref().map(|l| l.borrow_mut());
        let partial = &mut partial[stream as usize];
        p.on_readable(poller, buf, &mut |chunk| match chunk {
            Some(data) => {
                if let Some(l) = log.as_deref_mut() {
                    l.write(stream, partial, data);
                }
                attachers.deliver(exec_id, stream, data, out);
            }
            None => {
                if let Some(l) = log.as_deref_mut() {
                    l.flush_partial(stream, partial);
                }
            }
        });
        drop(log);
        self.finish_if_done(out);
    }

    /// Announces the end of output to the subscribers once it came.
    fn finish_if_done(&mut self, out: &mut dyn Outbox) {
        if !self.finished && self.output_done() {
            self.finished = true;
            self.attachers.finish(&self.exec_id, out);
        }
    }

    /// True once all output was read to its end and delivered.
    pub fn output_done(&self) -> bool {
        self.pumps
            .iter()
            .filter(|p| p.role() != Role::Stdin)
            .all(Pump::is_done)
    }

    /// Whether `stream` is captured (Attach can see it).
    fn captured(&self, stream: Stream) -> bool {
        self.pumps.iter().any(|p| p.role().stream() == Some(stream))
    }

    /// True with a terminal (one output stream).
    pub fn terminal(&self) -> bool {
        self.pty.is_some()
    }

    /// Attach: subscribes `req` on `conn`. Returns the streams that will deliver
    /// (a terminal's are folded into stdout); fails when a stream asked for is not
    /// captured.
    pub fn check_attach(&self, stdout: bool, stderr: bool) -> Result<(bool, bool)> {
        let name = display_name(&self.exec_id);
        if self.terminal() {
            return Ok((stdout || stderr, false));
        }
        for (want, stream, label) in [
            (stdout, Stream::Stdout, "stdout"),
            (stderr, Stream::Stderr, "stderr"),
        ] {
            if want && !self.captured(stream) {
                return Err(Error::FailedPrecondition(format!(
                    "{label} of process {name} is not captured: create it with a log, a FIFO or output_stream"
                )));
            }
        }
        Ok((stdout, stderr))
    }

    /// The log's path and position (inode, size), when there is a log.
    pub fn log_position(&self) -> Option<(String, u64, u64)> {
        let l = self.log.as_ref()?.borrow();
        let (inode, size) = l.position();
        Some((l.path().display().to_string(), inode, size))
    }

    /// Registers an Attach whose reply was sent: with `logs`, first the partial lines
    /// held back from the log; if the output already ended, `eof` at once.
    pub fn add_attacher(
        &mut self,
        conn: u32,
        req: u32,
        streams: (bool, bool),
        logs: bool,
        out: &mut dyn Outbox,
    ) {
        if logs && self.log.is_some() {
            for (on, stream) in [(streams.0, Stream::Stdout), (streams.1, Stream::Stderr)] {
                if on {
                    Attachers::send_one(
                        &self.exec_id,
                        stream,
                        &self.partial[stream as usize],
                        conn,
                        req,
                        out,
                    );
                }
            }
        }
        self.attachers.add(conn, req, streams.0, streams.1);
        if self.finished {
            self.attachers.finish(&self.exec_id, out);
        }
    }

    /// Detach: ends subscription `req` of `conn`; true when it was one of this process.
    pub fn remove_attacher(&mut self, conn: u32, req: u32) -> bool {
        self.attachers.remove(conn, req)
    }

    /// A connection closed: forgets its subscriptions.
    pub fn forget_conn(&mut self, conn: u32) {
        self.attachers.remove_conn(conn);
    }

    /// WriteStdin: `Ok(true)` when written, `Ok(false)` when the reply comes later.
    pub fn write_stdin(
        &mut self,
        poller: &Poller,
        data: &[u8],
        conn: u32,
        req: u32,
        out: &mut dyn Outbox,
    ) -> Result<bool> {
        let name = display_name(&self.exec_id).to_string();
        match &mut self.stdin_stream {
            Some(s) => s.write(poller, &name, data, conn, req, out),
            None => Err(Error::FailedPrecondition(format!(
                "process {name} was not created with stdin_stream"
            ))),
        }
    }

    /// CloseIO: ends the process's stdin after what the client wrote.
    pub fn close_stdin(&mut self, poller: &Poller, buf: &mut [u8], out: &mut dyn Outbox) {
        for p in self.pumps.iter_mut().filter(|p| p.role() == Role::Stdin) {
            p.close_input(poller, buf);
        }
        self.stdin_fifo = None;
        if let Some(s) = &mut self.stdin_stream {
            s.close(poller, display_name(&self.exec_id), out);
        }
    }

    /// Sets the terminal's window size.
    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(pty) = &self.pty else {
            return Err(Error::FailedPrecondition(
                "the process has no terminal".into(),
            ));
        };
        let w = u16::try_from(width).unwrap_or(u16::MAX);
        let h = u16::try_from(height).unwrap_or(u16::MAX);
        crate::sys::pty::set_window_size(std::os::fd::AsFd::as_fd(pty), w, h)
            .map_err(|e| Error::sys("resize", "pty", e))
    }

    /// Closes everything (the process is deleted): partial lines go to the log,
    /// waiting WriteStdin calls fail, subscriptions end without `eof`.
    pub fn shutdown(&mut self, poller: &Poller, out: &mut dyn Outbox) {
        for p in &mut self.pumps {
            p.shutdown(poller);
        }
        self.pumps.clear();
        if let Some(l) = &self.log {
            let mut l = l.borrow_mut();
            for (stream, partial) in [Stream::Stdout, Stream::Stderr]
                .into_iter()
                .zip(self.partial.iter_mut())
            {
                l.flush_partial(stream, partial);
            }
        }
        if let Some(s) = &mut self.stdin_stream {
            s.shutdown(poller, display_name(&self.exec_id), out);
        }
        self.stdin_stream = None;
        self.attachers = Attachers::default();
        self.pty = None;
    }
}

/// How a process is named in messages: its exec id, or "init".
pub fn display_name(exec_id: &str) -> &str {
    if exec_id.is_empty() { "init" } else { exec_id }
}
