//! A [`Pump`] copies one stream in the event loop: a client FIFO into the process's
//! stdin, or the process's output (pipe or pty master) into a client FIFO, handing every
//! chunk it reads to a sink as well (the log and the Attach subscribers). It stops
//! reading while its FIFO is full (ctr's model: a slow FIFO reader slows the process
//! instead of growing the shim); without a FIFO it reads as fast as the process writes.
//! It registers its descriptors with the poller itself.

use std::os::fd::{AsFd, OwnedFd};

use crate::io::log::Stream;
use crate::sys::fd::{self, Io};
use crate::sys::poll::{Interest, Poller};

/// What a pump carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Client FIFO -> process stdin.
    Stdin,
    /// Process stdout (or terminal) -> client FIFO and log.
    Stdout,
    /// Process stderr -> client FIFO and log.
    Stderr,
}

impl Role {
    /// The output stream it carries.
    pub fn stream(self) -> Option<Stream> {
        match self {
            Role::Stdin => None,
            Role::Stdout => Some(Stream::Stdout),
            Role::Stderr => Some(Stream::Stderr),
        }
    }
}

/// Where an output pump hands what it reads: `Some(chunk)`, then `None` at the end.
pub type Sink<'a> = dyn FnMut(Option<&[u8]>) + 'a;

/// Token side of the source descriptor.
pub const SRC: u64 = 0;
/// Token side of the destination descriptor.
pub const DST: u64 = 1;

/// One copying stream.
pub struct Pump {
    role: Role,
    src: Option<OwnedFd>,
    dst: Option<OwnedFd>,
    keep: Option<OwnedFd>,
    pending: Vec<u8>,
    src_watched: bool,
    dst_watched: bool,
    token: u64,
}

impl Pump {
    /// A pump from `src` to `dst` (`None`: output only logged). `keep` is held open
    /// alongside `dst` (the read handle of an output FIFO). `token` is the pump's base
    /// token: the source reports `token | SRC`, the destination `token | DST`.
    pub fn new(
        role: Role,
        src: OwnedFd,
        dst: Option<OwnedFd>,
        keep: Option<OwnedFd>,
        token: u64,
    ) -> Pump {
        if let Some(d) = &dst {
            let _ = fd::set_nonblocking(d.as_fd(), true);
        }
        let _ = fd::set_nonblocking(src.as_fd(), true);
        Pump {
            role,
            src: Some(src),
            dst,
            keep,
            pending: Vec::new(),
            src_watched: false,
            dst_watched: false,
            token,
        }
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True once the source ended and everything read was delivered.
    pub fn is_done(&self) -> bool {
        self.src.is_none() && self.pending.is_empty()
    }

    /// Brings the poller registrations in line with the state: the source is watched
    /// while nothing is pending, the destination while something is.
    pub fn sync(&mut self, poller: &Poller) {
        let want_src = self.src.is_some() && self.pending.is_empty();
        if let Some(src) = &self.src {
            if want_src && !self.src_watched {
                self.src_watched = poller
                    .add(src.as_fd(), self.token | SRC, Interest::Read)
                    .is_ok();
            } else if !want_src && self.src_watched {
                poller.remove(src.as_fd());
                self.src_watched = false;
            }
        }
        let want_dst = self.dst.is_some() && !self.pending.is_empty();
        if let Some(dst) = &self.dst {
            if want_dst && !self.dst_watched {
                self.dst_watched = poller
                    .add(dst.as_fd(), self.token | DST, Interest::Write)
                    .is_ok();
            } else if !want_dst && self.dst_watched {
                poller.remove(dst.as_fd());
                self.dst_watched = false;
            }
        }
    }

    /// Closes the source; `sink` hears of the end once.
    fn close_src(&mut self, poller: &Poller, sink: Option<&mut Sink<'_>>) {
        if let Some(src) = self.src.take() {
            if self.src_watched {
                poller.remove(src.as_fd());
                self.src_watched = false;
            }
            if let Some(sink) = sink {
                sink(None);
            }
        }
    }

    fn close_dst(&mut self, poller: &Poller) {
        if let Some(dst) = self.dst.take()
            && self.dst_watched
        {
            poller.remove(dst.as_fd());
            self.dst_watched = false;
        }
        self.keep = None;
        self.pending = Vec::new();
    }

    /// Closes everything (process deleted).
    pub fn shutdown(&mut self, poller: &Poller) {
        self.close_src(poller, None);
        self.close_dst(poller);
    }

    /// Delivers `data` to the destination; keeps what does not fit.
    fn deliver(&mut self, poller: &Poller, data: &[u8]) {
        let Some(dst) = &self.dst else { return };
        let mut off = 0;
        while off < data.len() {
            match fd::write(dst.as_fd(), &data[off..]) {
                Ok(Io::Done(n)) => off += n,
                Ok(Io::WouldBlock) => {
                    self.pending.extend_from_slice(&data[off..]);
                    return;
                }
                Ok(Io::Closed) | Err(_) => {
                    // The reader is gone (a process that closed its stdin).
                    self.close_dst(poller);
                    if self.role == Role::Stdin {
                        self.close_src(poller, None);
                    }
                    return;
                }
            }
        }
    }

    /// Source readable: copies what is there (a bounded amount per call). `sink` gets
    /// each chunk read, then `None` at the end of the stream.
    pub fn on_readable(&mut self, poller: &Poller, buf: &mut [u8], sink: &mut Sink<'_>) {
        for _ in 0..16 {
            let Some(src) = &self.src else { break };
            if !self.pending.is_empty() {
                break;
            }
            match fd::read(src.as_fd(), buf) {
                Ok(Io::Done(n)) => {
                    sink(Some(&buf[..n]));
                    if self.dst.is_some() {
                        let data = buf[..n].to_vec();
                        self.deliver(poller, &data);
                    }
                }
                Ok(Io::WouldBlock) => break,
                Ok(Io::Closed) | Err(_) => {
                    self.close_src(poller, Some(sink));
                    break;
                }
            }
        }
        self.after_progress(poller);
    }

    /// Destination writable: flushes what is pending.
    pub fn on_writable(&mut self, poller: &Poller) {
        if let Some(dst) = &self.dst {
            match fd::write(dst.as_fd(), &self.pending) {
                Ok(Io::Done(n)) => {
                    self.pending.drain(..n);
                }
                Ok(Io::WouldBlock) => {}
                Ok(Io::Closed) | Err(_) => self.close_dst(poller),
            }
        }
        self.after_progress(poller);
    }

    /// Stdin only: the client is done writing. Copies what the FIFO still holds, then
    /// ends the stream (the process reads end of file once it has it all).
    pub fn close_input(&mut self, poller: &Poller, buf: &mut [u8]) {
        if let Some(src) = &self.src {
            let mut data = Vec::new();
            while let Ok(Io::Done(n)) = fd::read(src.as_fd(), buf) {
                data.extend_from_slice(&buf[..n]);
            }
            self.pending.extend_from_slice(&data);
        }
        self.close_src(poller, None);
        let pending = std::mem::take(&mut self.pending);
        self.deliver(poller, &pending);
        self.after_progress(poller);
    }

    fn after_progress(&mut self, poller: &Poller) {
        if self.is_done() {
            // The source ended and all is delivered: end the destination too (the
            // process's stdin reads EOF; a FIFO's reader sees EOF).
            self.close_dst(poller);
        } else if self.dst.is_none() && self.src.is_none() {
            self.pending.clear();
        }
        self.sync(poller);
    }
}
