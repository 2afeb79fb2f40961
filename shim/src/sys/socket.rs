//! The channel between the shim and a container child: a SOCK_SEQPACKET socketpair
//! (one message per send), able to carry one descriptor (a pty master) per message.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};

use super::{Errno, SysResult};

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

/// A received message and the descriptor it carried.
pub struct Message {
    /// Payload; empty means the peer closed its end.
    pub data: Vec<u8>,
    /// Descriptor passed along, if any.
    pub fd: Option<OwnedFd>,
}

impl Channel {
    /// A connected pair, both ends close-on-exec: (shim end, child end).
    pub fn pair() -> SysResult<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// The descriptor number (kept open across the child's descriptor clean-up).
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Sends one message, optionally with a descriptor.
    pub fn send(&self, data: &[u8], fd: Option<RawFd>) -> SysResult<()> {
        let iov = [IoSlice::new(data)];
        let fds;
        let cmsgs: &[ControlMessage] = match fd {
            Some(f) => {
                fds = [f];
                &[ControlMessage::ScmRights(&fds)]
            }
            None => &[],
        };
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives one message, waiting at most `timeout` (forever if `None`). A closed
    /// peer yields an empty message.
    pub fn recv(&self, timeout: Option<Duration>) -> SysResult<Message> {
        if let Some(t) = timeout {
            let ms = i32::try_from(t.as_millis()).unwrap_or(i32::MAX);
            let mut pfd = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&self.fd),
                nix::poll::PollFlags::POLLIN,
            )];
            loop {
                match nix::poll::poll(
                    &mut pfd,
                    nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
                ) {
                    Ok(0) => return Err(Errno::ETIMEDOUT),
                    Ok(_) => break,
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        let mut buf = vec![0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            };
            let mut fd = None;
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for f in fds {
                        // SAFETY: SCM_RIGHTS just installed `f` in this process; nothing
                        // else owns it.
                        let owned = unsafe { OwnedFd::from_raw_fd(f) };
                        if fd.is_none() {
                            fd = Some(owned);
                        }
                    }
                }
            }
            let n = msg.bytes;
            buf.truncate(n);
            return Ok(Message { data: buf, fd });
        }
    }
}
