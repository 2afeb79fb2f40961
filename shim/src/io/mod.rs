//! A process's stdio: the client FIFOs (ctr's model), pipes or a pty to the process,
//! the json-lines log, and the [`pump::Pump`]s that copy between them.

pub mod log;
pub mod pump;

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::sys::fd;
use crate::sys::poll::Poller;
use log::{LogWriter, Rotation};
use pump::{Pump, Role};

/// The stdio a client asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StdioConfig {
    /// stdin FIFO; empty: /dev/null.
    pub stdin: String,
    /// stdout FIFO; empty: /dev/null (or the log only).
    pub stdout: String,
    /// stderr FIFO; empty: /dev/null (or the log only).
    pub stderr: String,
    /// Use a pty.
    pub terminal: bool,
    /// json-lines log file; empty: none.
    pub log_path: String,
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
    pumps: Vec<Pump>,
    /// The pty master (for window sizes), for a terminal.
    pty: Option<OwnedFd>,
    log: Option<Rc<RefCell<LogWriter>>>,
    stdin_fifo: Option<OwnedFd>,
    stdout_fifo: Option<(OwnedFd, OwnedFd)>,
    token: u64,
}

fn open_err(path: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io("open fifo", path, e)
}

impl ProcessIo {
    /// Opens the client FIFOs and, without a terminal, the pipes to the process.
    /// `token` is the base token of this process's pumps (pump i uses `token | i << 1`).
    pub fn open(cfg: &StdioConfig, token: u64) -> Result<(ProcessIo, ChildSide)> {
        let log = if cfg.log_path.is_empty() {
            None
        } else {
            Some(Rc::new(RefCell::new(LogWriter::open(
                Path::new(&cfg.log_path),
                Rotation::default(),
            )?)))
        };
        let mut io = ProcessIo {
            pumps: Vec::new(),
            pty: None,
            log,
            stdin_fifo: None,
            stdout_fifo: None,
            token,
        };
        if cfg.terminal {
            if !cfg.stdin.is_empty() {
                io.stdin_fifo = Some(
                    fd::open_fifo_reader(Path::new(&cfg.stdin)).map_err(open_err(&cfg.stdin))?,
                );
            }
            if !cfg.stdout.is_empty() {
                io.stdout_fifo = Some(
                    fd::open_fifo_writer(Path::new(&cfg.stdout)).map_err(open_err(&cfg.stdout))?,
                );
            }
            return Ok((io, ChildSide { fds: None }));
        }
        let null = || fd::dev_null().map_err(|e| Error::io("open", "/dev/null", e));
        let pipe = || fd::pipe().map_err(|e| Error::sys("pipe", "-", e));
        let stdin_child = if cfg.stdin.is_empty() {
            null()?
        } else {
            let fifo = fd::open_fifo_reader(Path::new(&cfg.stdin)).map_err(open_err(&cfg.stdin))?;
            let (r, w) = pipe()?;
            let t = io.next_token();
            io.pumps
                .push(Pump::new(Role::Stdin, fifo, Some(w), None, t));
            r
        };
        let out = |path: &str, role: Role, io: &mut ProcessIo| -> Result<OwnedFd> {
            if path.is_empty() && io.log.is_none() {
                return null();
            }
            let (dst, keep) = if path.is_empty() {
                (None, None)
            } else {
                let (w, k) = fd::open_fifo_writer(Path::new(path)).map_err(open_err(path))?;
                (Some(w), Some(k))
            };
            let (r, w) = pipe()?;
            let t = io.next_token();
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

    fn next_token(&self) -> u64 {
        self.token | ((self.pumps.len() as u64) << 1)
    }

    /// Terminal: connects the pty master to the FIFOs once the child sent it.
    pub fn attach_pty(&mut self, master: OwnedFd) -> Result<()> {
        let dup = |m: &OwnedFd| m.try_clone().map_err(|e| Error::io("dup", "pty master", e));
        if let Some(fifo) = self.stdin_fifo.take() {
            let t = self.next_token();
            self.pumps
                .push(Pump::new(Role::Stdin, fifo, Some(dup(&master)?), None, t));
        }
        let (dst, keep) = match self.stdout_fifo.take() {
            Some((w, k)) => (Some(w), Some(k)),
            None => (None, None),
        };
        if dst.is_some() || self.log.is_some() {
            let t = self.next_token();
            self.pumps
                .push(Pump::new(Role::Stdout, dup(&master)?, dst, keep, t));
        }
        self.pty = Some(master);
        Ok(())
    }

    /// Starts watching the pumps' descriptors.
    pub fn watch(&mut self, poller: &Poller) {
        for p in &mut self.pumps {
            p.sync(poller);
        }
    }

    /// Dispatches a ready pump descriptor (`index` and `side` from the token).
    pub fn on_ready(&mut self, poller: &Poller, index: usize, side: u64, buf: &mut [u8]) {
        let log = self.log.clone();
        let Some(p) = self.pumps.get_mut(index) else {
            return;
        };
        if side == pump::DST {
            p.on_writable(poller);
        } else {
            let mut guard = log.as_ref().map(|l| l.borrow_mut());
            p.on_readable(poller, buf, guard.as_deref_mut());
        }
    }

    /// True once all output was read to its end and delivered.
    pub fn output_done(&self) -> bool {
        self.pumps
            .iter()
            .filter(|p| p.role() != Role::Stdin)
            .all(Pump::is_done)
    }

    /// CloseIO: ends the process's stdin after what the client wrote.
    pub fn close_stdin(&mut self, poller: &Poller, buf: &mut [u8]) {
        for p in self.pumps.iter_mut().filter(|p| p.role() == Role::Stdin) {
            p.close_input(poller, buf);
        }
        self.stdin_fifo = None;
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

    /// Closes everything.
    pub fn shutdown(&mut self, poller: &Poller) {
        for p in &mut self.pumps {
            p.shutdown(poller);
        }
        self.pumps.clear();
        self.pty = None;
    }
}
