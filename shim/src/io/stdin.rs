//! A process's stdin fed by WriteStdin (Create/Exec with `stdin_stream`): the shim holds
//! the write end of the process's stdin pipe (or the pty master), keeps what the pipe
//! does not take yet (at most [`MAX_PENDING`] bytes), and answers each WriteStdin once
//! its data is in the pipe.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};

use berth_api::shim::frame::{Frame, code};

use super::Outbox;
use crate::error::{Error, Result};
use crate::sys::fd::{self, Io};
use crate::sys::poll::{Interest, Poller};

/// Bytes accepted but not yet in the pipe above which WriteStdin is refused.
pub const MAX_PENDING: usize = 1 << 20;

/// Why stdin takes no more data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    /// CloseIO was called.
    ByClient,
    /// The process closed its end (or the process is gone).
    ByProcess,
}

/// A WriteStdin to answer once `upto` bytes in total were written.
#[derive(Debug)]
struct Waiter {
    conn: u32,
    req: u32,
    upto: u64,
}

/// The shim's end of a process's stdin.
pub struct StdinStream {
    fd: Option<OwnedFd>,
    pending: Vec<u8>,
    /// Offset of the first unwritten byte in `pending`.
    pos: usize,
    /// Bytes written to `fd` so far.
    written: u64,
    /// Bytes accepted so far.
    accepted: u64,
    waiters: VecDeque<Waiter>,
    closed: Option<Closed>,
    /// A terminal: CloseIO stops writes but keeps the pty (the process has no pipe to end).
    terminal: bool,
    watched: bool,
    token: u64,
}

impl StdinStream {
    /// Feeds `fd` (made non-blocking); `token` reports its writability.
    pub fn new(fd: OwnedFd, terminal: bool, token: u64) -> StdinStream {
        let _ = fd::set_nonblocking(fd.as_fd(), true);
        StdinStream {
            fd: Some(fd),
            pending: Vec::new(),
            pos: 0,
            written: 0,
            accepted: 0,
            waiters: VecDeque::new(),
            closed: None,
            terminal,
            watched: false,
            token,
        }
    }

    fn backlog(&self) -> usize {
        self.pending.len() - self.pos
    }

    /// WriteStdin: `Ok(true)` when `data` is already in the pipe, `Ok(false)` when the
    /// reply to `req` on `conn` comes later (through the outbox).
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        poller: &Poller,
        name: &str,
        data: &[u8],
        conn: u32,
        req: u32,
        out: &mut dyn Outbox,
    ) -> Result<bool> {
        match self.closed {
            Some(Closed::ByClient) => {
                return Err(Error::FailedPrecondition(format!(
                    "stdin of process {name} is closed"
                )));
            }
            Some(Closed::ByProcess) => {
                return Err(Error::FailedPrecondition(format!(
                    "process {name} closed its stdin"
                )));
            }
            None => {}
        }
        if self.backlog() + data.len() > MAX_PENDING && self.backlog() > 0 {
            return Err(Error::ResourceExhausted(format!(
                "stdin of process {name} holds {} bytes the process has not read; wait for earlier writes",
                self.backlog()
            )));
        }
        self.accepted += data.len() as u64;
        self.pending.extend_from_slice(data);
        self.drain(poller);
        self.answer(name, out);
        if self.closed == Some(Closed::ByProcess) {
            return Err(Error::FailedPrecondition(format!(
                "process {name} closed its stdin"
            )));
        }
        if self.written >= self.accepted {
            return Ok(true);
        }
        self.waiters.push_back(Waiter {
            conn,
            req,
            upto: self.accepted,
        });
        Ok(false)
    }

    /// Writes what the pipe takes; closes on EPIPE or once closing and drained.
    fn drain(&mut self, poller: &Poller) {
        while let Some(f) = &self.fd {
            if self.pos == self.pending.len() {
                break;
            }
            match fd::write(f.as_fd(), &self.pending[self.pos..]) {
                Ok(Io::Done(n)) => {
                    self.pos += n;
                    self.written += n as u64;
                }
                Ok(Io::WouldBlock) => break,
                Ok(Io::Closed) | Err(_) => {
                    self.closed = Some(Closed::ByProcess);
                    self.close_fd(poller);
                }
            }
        }
        if self.pos == self.pending.len() {
            self.pending.clear();
            self.pos = 0;
            if self.pending.capacity() > 64 * 1024 {
                self.pending = Vec::new();
            }
            if self.closed == Some(Closed::ByClient) && !self.terminal {
                self.close_fd(poller);
            }
        } else if self.pos > self.pending.len() / 2 {
            self.pending.drain(..self.pos);
            self.pos = 0;
        }
        self.sync(poller);
    }

    fn sync(&mut self, poller: &Poller) {
        let want = self.fd.is_some() && self.backlog() > 0;
        if let Some(f) = &self.fd {
            if want && !self.watched {
                self.watched = poller.add(f.as_fd(), self.token, Interest::Write).is_ok();
            } else if !want && self.watched {
                poller.remove(f.as_fd());
                self.watched = false;
            }
        }
    }

    fn close_fd(&mut self, poller: &Poller) {
        if let Some(f) = self.fd.take()
            && self.watched
        {
            poller.remove(f.as_fd());
        }
        self.watched = false;
    }

    /// Answers the WriteStdin calls whose data is now written (or can never be).
    fn answer(&mut self, name: &str, out: &mut dyn Outbox) {
        while let Some(w) = self.waiters.front() {
            let frame = if w.upto <= self.written {
                Frame::reply(w.req, Vec::new())
            } else if self.fd.is_none() {
                Frame::error(
                    w.req,
                    code::FAILED_PRECONDITION,
                    format!("process {name} closed its stdin"),
                )
            } else {
                break;
            };
            out.send(w.conn, &frame);
            self.waiters.pop_front();
        }
    }

    /// The pipe is writable again.
    pub fn on_writable(&mut self, poller: &Poller, name: &str, out: &mut dyn Outbox) {
        self.drain(poller);
        self.answer(name, out);
    }

    /// CloseIO: no more writes; the pipe closes once what was accepted is written.
    pub fn close(&mut self, poller: &Poller, name: &str, out: &mut dyn Outbox) {
        if self.closed.is_none() {
            self.closed = Some(Closed::ByClient);
        }
        self.drain(poller);
        self.answer(name, out);
    }

    /// The process is being deleted: everything closes, waiting writes fail.
    pub fn shutdown(&mut self, poller: &Poller, name: &str, out: &mut dyn Outbox) {
        self.closed = Some(Closed::ByProcess);
        self.close_fd(poller);
        self.answer(name, out);
    }
}
