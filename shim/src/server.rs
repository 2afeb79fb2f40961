//! The shim's single-threaded event loop: one epoll set for the listening socket, the
//! client connections, the signalfd (SIGCHLD, SIGTERM), the stdio pumps and the OOM
//! notifier. Requests are decoded here and handed to [`crate::service`]; replies and
//! events are queued per connection and written as the socket allows (the connections
//! are the [`Outbox`] of the stdio code).

use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::SystemTime;

use berth_api::berth::shim::v1 as pb;
use berth_api::shim::frame::{Frame, FrameBody};
use prost::Message;

use crate::error::{Error, Result};
use crate::io::Outbox;
use crate::io::log::LogSet;
use crate::runtime::Container;
use crate::runtime::cgroups::OomWatch;
use crate::sys::linux::Linux;
use crate::sys::poll::{Caught, Interest, Poller, Ready, Signals};
use crate::task::{Exit, Proc};

const TOKEN_LISTENER: u64 = 0;
const TOKEN_SIGNALS: u64 = 1;
const TOKEN_OOM: u64 = 2;
const KIND_SHIFT: u64 = 48;
const KIND_CONN: u64 = 1;
const KIND_PUMP: u64 = 2;
/// Read buffer shared by all descriptors.
const BUF_SIZE: usize = 32 * 1024;

/// Base token of the pumps of process `slot` (pump i, side s: `base | i << 1 | s`).
fn pump_base(slot: u32) -> u64 {
    (KIND_PUMP << KIND_SHIFT) | (u64::from(slot) << 8)
}

/// Identity of the shim, from the command line.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Container id.
    pub id: String,
    /// containerd namespace.
    pub namespace: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Socket path.
    pub socket: PathBuf,
}

struct Conn {
    stream: UnixStream,
    rbuf: Vec<u8>,
    /// Frames to send; `wbuf[wpos..]` is not written yet.
    wbuf: Vec<u8>,
    wpos: usize,
    writing: bool,
}

impl Conn {
    fn unsent(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Writes what the socket takes and watches for writability while something is
    /// left; false when the peer is gone.
    fn flush(&mut self, poller: &Poller, id: u32) -> bool {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
            if self.wbuf.capacity() > 64 * 1024 {
                self.wbuf = Vec::new();
            }
        } else if self.wpos > 64 * 1024 && self.wpos > self.wbuf.len() / 2 {
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
        let want = self.unsent() > 0;
        if want != self.writing {
            let token = (KIND_CONN << KIND_SHIFT) | u64::from(id);
            let interest = if want {
                Interest::ReadWrite
            } else {
                Interest::Read
            };
            let _ = poller.modify(self.stream.as_fd(), token, interest);
            self.writing = want;
        }
        true
    }
}

/// The connections as the stdio code's outbox: frames are queued and written at once
/// when the socket takes them; connections found dead are closed afterwards.
pub(crate) struct Conns<'a> {
    conns: &'a mut HashMap<u32, Conn>,
    poller: &'a Poller,
    dead: Vec<u32>,
}

impl Conns<'_> {
    fn queued(&mut self, conn: u32, encode: impl FnOnce(&mut Vec<u8>)) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        encode(&mut c.wbuf);
        if !c.writing && !c.flush(self.poller, conn) {
            self.dead.push(conn);
        }
    }
}

impl Outbox for Conns<'_> {
    fn send(&mut self, conn: u32, frame: &Frame) {
        self.queued(conn, |w| frame.encode(w));
    }

    fn alive(&self, conn: u32) -> bool {
        self.conns.contains_key(&conn) && !self.dead.contains(&conn)
    }

    fn event(&mut self, conn: u32, id: u32, payload: &[u8], limit: Option<usize>) -> bool {
        if !self.alive(conn) {
            return false;
        }
        if let Some(limit) = limit
            && self.conns[&conn].unsent() + Frame::event_len(payload.len()) > limit
        {
            return false;
        }
        self.queued(conn, |w| Frame::encode_event(id, payload, w));
        true
    }
}

/// The whole shim state.
pub struct Shim {
    pub(crate) ident: Identity,
    pub(crate) sys: Linux,
    pub(crate) poller: Poller,
    signals: Signals,
    listener: UnixListener,
    conns: HashMap<u32, Conn>,
    next_conn: u32,
    pub(crate) container: Option<Container>,
    /// Processes by slot; slot 0 is init.
    pub(crate) procs: BTreeMap<u32, Proc>,
    pub(crate) next_slot: u32,
    pub(crate) oom: Option<OomWatch>,
    pub(crate) paused: bool,
    subscribers: Vec<(u32, u32)>,
    /// Open json-lines logs, shared by the processes that name the same file.
    pub(crate) logs: LogSet,
    /// Set when the shim should exit once replies are flushed.
    pub(crate) exiting: bool,
    pub(crate) buf: Vec<u8>,
}

impl Shim {
    /// Sets up the loop around an already bound listener.
    pub fn new(ident: Identity, listener: UnixListener) -> Result<Shim> {
        let poller = Poller::new().map_err(|e| Error::sys("epoll_create", "-", e))?;
        let signals = Signals::new().map_err(|e| Error::sys("signalfd", "-", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("configure", &ident.socket, e))?;
        poller
            .add(listener.as_fd(), TOKEN_LISTENER, Interest::Read)
            .map_err(|e| Error::sys("epoll_ctl", &ident.socket, e))?;
        poller
            .add(signals.fd(), TOKEN_SIGNALS, Interest::Read)
            .map_err(|e| Error::sys("epoll_ctl", "signalfd", e))?;
        Ok(Shim {
            ident,
            sys: Linux,
            poller,
            signals,
            listener,
            conns: HashMap::new(),
            next_conn: 1,
            container: None,
            procs: BTreeMap::new(),
            next_slot: 1,
            oom: None,
            paused: false,
            subscribers: Vec::new(),
            logs: LogSet::default(),
            exiting: false,
            buf: vec![0; BUF_SIZE],
        })
    }

    /// Runs until the task is deleted or the shim is told to stop.
    pub fn run(&mut self) -> Result<()> {
        let mut ready: Vec<Ready> = Vec::with_capacity(32);
        while !self.exiting {
            ready.clear();
            self.poller
                .wait(&mut ready, None)
                .map_err(|e| Error::sys("epoll_wait", "-", e))?;
            for r in &ready {
                self.dispatch(*r);
            }
        }
        self.flush_all();
        Ok(())
    }

    fn dispatch(&mut self, r: Ready) {
        match r.token {
            TOKEN_LISTENER => self.accept(),
            TOKEN_SIGNALS => {
                for caught in self.signals.drain() {
                    match caught {
                        Caught::Child => self.reap(),
                        Caught::Terminate => {
                            tracing::info!("terminating on signal");
                            self.exiting = true;
                        }
                    }
                }
            }
            TOKEN_OOM if self.oom.as_mut().is_some_and(OomWatch::fired) => {
                tracing::info!("oom kill in the container's cgroup");
                self.emit(pb::event::Kind::Oom(pb::Oom {}));
            }
            t if t >> KIND_SHIFT == KIND_CONN => {
                let id = (t & 0xffff_ffff) as u32;
                if r.writable {
                    self.flush(id);
                }
                if r.readable {
                    self.read_conn(id);
                }
            }
            t if t >> KIND_SHIFT == KIND_PUMP => {
                let slot = ((t >> 8) & 0xffff_ffff) as u32;
                let index = ((t >> 1) & 0x7f) as usize;
                let side = t & 1;
                self.with_io(slot, |io, poller, buf, out| {
                    io.on_ready(poller, index, side, buf, out);
                });
                self.maybe_report(slot);
            }
            _ => {}
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let id = self.next_conn;
                    self.next_conn = self.next_conn.wrapping_add(1).max(1);
                    let token = (KIND_CONN << KIND_SHIFT) | u64::from(id);
                    if self
                        .poller
                        .add(stream.as_fd(), token, Interest::Read)
                        .is_ok()
                    {
                        self.conns.insert(
                            id,
                            Conn {
                                stream,
                                rbuf: Vec::new(),
                                wbuf: Vec::new(),
                                wpos: 0,
                                writing: false,
                            },
                        );
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    fn close_conn(&mut self, id: u32) {
        if let Some(c) = self.conns.remove(&id) {
            self.poller.remove(c.stream.as_fd());
        }
        self.subscribers.retain(|(c, _)| *c != id);
        for p in self.procs.values_mut() {
            p.waiters.retain(|(c, _)| *c != id);
            p.io.forget_conn(id);
        }
    }

    /// Runs `f` on the stdio of process `slot` with the connections as its outbox,
    /// then closes the connections found dead.
    pub(crate) fn with_io<R>(
        &mut self,
        slot: u32,
        f: impl FnOnce(&mut crate::io::ProcessIo, &Poller, &mut [u8], &mut dyn Outbox) -> R,
    ) -> Option<R> {
        let p = self.procs.get_mut(&slot)?;
        let mut out = Conns {
            conns: &mut self.conns,
            poller: &self.poller,
            dead: Vec::new(),
        };
        let r = f(&mut p.io, &self.poller, &mut self.buf, &mut out);
        let dead = std::mem::take(&mut out.dead);
        for id in dead {
            self.close_conn(id);
        }
        Some(r)
    }

    fn read_conn(&mut self, id: u32) {
        let mut frames = Vec::new();
        let mut closed = false;
        {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            loop {
                match c.stream.read(&mut self.buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => c.rbuf.extend_from_slice(&self.buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            loop {
                match Frame::decode(&c.rbuf) {
                    Ok(Some((f, used))) => {
                        c.rbuf.drain(..used);
                        frames.push(f);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "bad frame; closing connection");
                        closed = true;
                        break;
                    }
                }
            }
            if c.rbuf.capacity() > 64 * 1024 && c.rbuf.is_empty() {
                c.rbuf = Vec::new();
            }
        }
        for f in frames {
            if let FrameBody::Request { method, payload } = f.body
                && let Some(reply) = crate::service::handle(self, id, f.id, &method, &payload)
            {
                self.send(id, &reply);
            }
        }
        if closed {
            self.close_conn(id);
        }
    }

    /// Queues a frame on a connection and writes what the socket takes.
    pub(crate) fn send(&mut self, conn: u32, frame: &Frame) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        frame.encode(&mut c.wbuf);
        self.flush(conn);
    }

    fn flush(&mut self, id: u32) {
        let alive = match self.conns.get_mut(&id) {
            Some(c) => c.flush(&self.poller, id),
            None => return,
        };
        if !alive {
            self.close_conn(id);
        }
    }

    /// Before exiting: give every queued reply a last chance to go out.
    fn flush_all(&mut self) {
        let ids: Vec<u32> = self.conns.keys().copied().collect();
        for id in ids {
            if let Some(c) = self.conns.get_mut(&id) {
                // A peer that does not read (an attacher) must not hold the exit up.
                let _ = c.stream.set_nonblocking(false);
                let _ = c
                    .stream
                    .set_write_timeout(Some(std::time::Duration::from_millis(500)));
                let _ = c.stream.write_all(&c.wbuf[c.wpos..]);
                c.wbuf.clear();
                c.wpos = 0;
            }
        }
    }

    /// Sends an event to every subscriber.
    pub(crate) fn emit(&mut self, kind: pb::event::Kind) {
        if self.subscribers.is_empty() {
            return;
        }
        let ev = pb::Event {
            timestamp: Some(berth_api::time::from_system(SystemTime::now())),
            kind: Some(kind),
        };
        let payload = ev.encode_to_vec();
        for (conn, req) in self.subscribers.clone() {
            self.send(conn, &Frame::event(req, payload.clone()));
        }
    }

    /// Registers a Subscribe call.
    pub(crate) fn subscribe(&mut self, conn: u32, req: u32) {
        self.subscribers.push((conn, req));
    }

    /// Reaps exited children and records the exits of tracked processes.
    fn reap(&mut self) {
        while let Some(r) = crate::sys::process::reap_any() {
            let at = SystemTime::now();
            let slot = self
                .procs
                .iter()
                .find(|(_, p)| p.pid == r.pid && p.exit.is_none())
                .map(|(s, _)| *s);
            let Some(slot) = slot else {
                continue;
            };
            tracing::debug!(pid = r.pid, status = r.status, "process exited");
            if let Some(p) = self.procs.get_mut(&slot) {
                p.exit = Some(Exit {
                    status: r.status,
                    at,
                });
                p.created = None;
            }
            if slot == 0 {
                self.on_init_exit();
            }
            self.maybe_report(slot);
        }
    }

    /// The init process is gone: without a pid namespace its other processes are not
    /// killed by the kernel, so kill them.
    fn on_init_exit(&mut self) {
        if let Some(c) = &self.container
            && !c.ns.pid
        {
            c.cgroup.signal_all(libc::SIGKILL);
        }
    }

    /// Reports an exit once the process is reaped and its output is copied: answers
    /// the parked Waits and emits the exit event.
    pub(crate) fn maybe_report(&mut self, slot: u32) {
        let Some(p) = self.procs.get_mut(&slot) else {
            return;
        };
        let Some(exit) = p.exit else { return };
        if p.reported || !p.io.output_done() {
            return;
        }
        p.reported = true;
        let waiters = std::mem::take(&mut p.waiters);
        let exec_id = p.exec_id.clone();
        let pid = p.pid;
        let reply = pb::WaitResponse {
            exit_status: exit.status,
            exited_at: Some(berth_api::time::from_system(exit.at)),
        }
        .encode_to_vec();
        for (conn, req) in waiters {
            self.send(conn, &Frame::reply(req, reply.clone()));
        }
        self.emit(pb::event::Kind::Exited(pb::ProcessExited {
            exec_id,
            pid: u32::try_from(pid).unwrap_or(0),
            exit_status: exit.status,
            exited_at: Some(berth_api::time::from_system(exit.at)),
        }));
    }

    /// Starts watching the OOM notifier.
    pub(crate) fn watch_oom(&mut self, watch: OomWatch) {
        if self
            .poller
            .add(watch.fd(), TOKEN_OOM, Interest::Read)
            .is_ok()
        {
            self.oom = Some(watch);
        }
    }

    /// Stops watching the OOM notifier.
    pub(crate) fn unwatch_oom(&mut self) {
        if let Some(w) = self.oom.take() {
            self.poller.remove(w.fd());
        }
    }

    /// A fresh process slot and its pumps' base token.
    pub(crate) fn alloc_slot(&mut self, init: bool) -> (u32, u64) {
        let slot = if init {
            0
        } else {
            let s = self.next_slot;
            self.next_slot += 1;
            s
        };
        (slot, pump_base(slot))
    }
}
