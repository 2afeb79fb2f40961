//! The frame codec of the berthd <-> berth-shim protocol: pure encode/decode, no I/O.
//!
//! Every frame is
//!
//! ```text
//! length: u32 BE   number of bytes that follow (kind + id + body), at most MAX_FRAME_LEN
//! kind:   u8       1 request, 2 reply, 3 error, 4 event
//! id:     u32 BE   chosen by the client per request; replies, errors and events echo it
//! body:
//!   request  method-name length: u8, method name (ASCII), prost message
//!   reply    prost message (the method's Response)
//!   error    gRPC code: u32 BE, message (UTF-8)
//!   event    prost `berth.shim.v1.Event` (id = the Subscribe request's id), or
//!            prost `berth.shim.v1.Output` (id = an Attach request's id)
//! ```
//!
//! Both sides use [`Frame::encode`] and [`Frame::decode`]; the shim with blocking
//! sockets in its event loop, berthd through [`super::client`].

use std::fmt;

/// Largest accepted value of the length prefix (16 MiB, as berth's gRPC limit).
pub const MAX_FRAME_LEN: usize = 16 << 20;
/// Version of the framing and method set; `Connect` reports it. 2 added WriteStdin,
/// Attach, Detach and the stream and rotation fields of Create and Exec.
pub const PROTOCOL_VERSION: u32 = 2;
/// Bytes of the length prefix.
pub const LEN_BYTES: usize = 4;
/// Bytes of kind + id after the length prefix.
const HEADER_BYTES: usize = 1 + 4;

const KIND_REQUEST: u8 = 1;
const KIND_REPLY: u8 = 2;
const KIND_ERROR: u8 = 3;
const KIND_EVENT: u8 = 4;

/// gRPC status codes the shim answers with (the numbers of `google.rpc.Code`).
pub mod code {
    /// The request was cancelled (the shim is shutting down).
    pub const CANCELLED: u32 = 1;
    /// An error without a better code.
    pub const UNKNOWN: u32 = 2;
    /// Malformed request: bad message, bad spec, bad argument.
    pub const INVALID_ARGUMENT: u32 = 3;
    /// No such process (exec id) or no task yet.
    pub const NOT_FOUND: u32 = 5;
    /// The exec id or the task exists already.
    pub const ALREADY_EXISTS: u32 = 6;
    /// A bounded buffer is full (stdin data waiting for the process).
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    /// The process is not in a state that allows the call.
    pub const FAILED_PRECONDITION: u32 = 9;
    /// The method is unknown to this shim or not implemented.
    pub const UNIMPLEMENTED: u32 = 12;
    /// The runtime failed (mount, clone, cgroup, exec...).
    pub const INTERNAL: u32 = 13;
    /// The shim is gone or going.
    pub const UNAVAILABLE: u32 = 14;
}

/// The methods of `berth.shim.v1`; the wire carries [`Method::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `ConnectRequest` -> `ConnectResponse`
    Connect,
    /// `CreateRequest` -> `CreateResponse`
    Create,
    /// `StartRequest` -> `StartResponse`
    Start,
    /// `StateRequest` -> `StateResponse`
    State,
    /// `WaitRequest` -> `WaitResponse`
    Wait,
    /// `KillRequest` -> `KillResponse`
    Kill,
    /// `ExecRequest` -> `ExecResponse`
    Exec,
    /// `ResizePtyRequest` -> `ResizePtyResponse`
    ResizePty,
    /// `CloseIORequest` -> `CloseIOResponse`
    CloseIo,
    /// `PauseRequest` -> `PauseResponse`
    Pause,
    /// `ResumeRequest` -> `ResumeResponse`
    Resume,
    /// `PidsRequest` -> `PidsResponse`
    Pids,
    /// `UpdateRequest` -> `UpdateResponse`
    Update,
    /// `StatsRequest` -> `StatsResponse`
    Stats,
    /// `DeleteRequest` -> `DeleteResponse`
    Delete,
    /// `ShutdownRequest` -> `ShutdownResponse`
    Shutdown,
    /// `SubscribeRequest` -> `SubscribeResponse`, then `Event` frames
    Subscribe,
    /// `WriteStdinRequest` -> `WriteStdinResponse`
    WriteStdin,
    /// `AttachRequest` -> `AttachResponse`, then `Output` frames
    Attach,
    /// `DetachRequest` -> `DetachResponse`
    Detach,
}

impl Method {
    /// Every method, in declaration order.
    pub const ALL: [Method; 20] = [
        Method::Connect,
        Method::Create,
        Method::Start,
        Method::State,
        Method::Wait,
        Method::Kill,
        Method::Exec,
        Method::ResizePty,
        Method::CloseIo,
        Method::Pause,
        Method::Resume,
        Method::Pids,
        Method::Update,
        Method::Stats,
        Method::Delete,
        Method::Shutdown,
        Method::Subscribe,
        Method::WriteStdin,
        Method::Attach,
        Method::Detach,
    ];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Method::Connect => "Connect",
            Method::Create => "Create",
            Method::Start => "Start",
            Method::State => "State",
            Method::Wait => "Wait",
            Method::Kill => "Kill",
            Method::Exec => "Exec",
            Method::ResizePty => "ResizePty",
            Method::CloseIo => "CloseIO",
            Method::Pause => "Pause",
            Method::Resume => "Resume",
            Method::Pids => "Pids",
            Method::Update => "Update",
            Method::Stats => "Stats",
            Method::Delete => "Delete",
            Method::Shutdown => "Shutdown",
            Method::Subscribe => "Subscribe",
            Method::WriteStdin => "WriteStdin",
            Method::Attach => "Attach",
            Method::Detach => "Detach",
        }
    }

    /// The method named `name`, if any.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a frame carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameBody {
    /// A call: the method name and the encoded request message.
    Request {
        /// Method name (see [`Method`]); unknown names get `UNIMPLEMENTED`.
        method: String,
        /// Encoded request message.
        payload: Vec<u8>,
    },
    /// A successful answer: the encoded response message.
    Reply(Vec<u8>),
    /// A failed answer.
    Error {
        /// gRPC status code number (see [`code`]).
        code: u32,
        /// What went wrong, for a person.
        message: String,
    },
    /// An event of a subscription: the encoded `Event` message (Subscribe) or `Output`
    /// message (Attach).
    Event(Vec<u8>),
}

/// One frame: the request id and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Request id (events: the Subscribe or Attach request's id).
    pub id: u32,
    /// Contents.
    pub body: FrameBody,
}

/// A byte stream that is not a valid frame sequence.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix exceeds [`MAX_FRAME_LEN`].
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME_LEN} bytes")]
    TooLong {
        /// Announced length.
        len: usize,
    },
    /// The length prefix is smaller than the fixed header.
    #[error("frame of {len} bytes is shorter than its header")]
    TooShort {
        /// Announced length.
        len: usize,
    },
    /// The kind byte is not one of the four kinds.
    #[error("unknown frame kind {kind}")]
    UnknownKind {
        /// The byte seen.
        kind: u8,
    },
    /// A request's method name or an error's message is cut or not UTF-8.
    #[error("malformed {what} in frame {id}")]
    Malformed {
        /// Which part.
        what: &'static str,
        /// Request id of the frame.
        id: u32,
    },
}

impl Frame {
    /// A request frame.
    pub fn request(id: u32, method: Method, payload: Vec<u8>) -> Frame {
        Frame {
            id,
            body: FrameBody::Request {
                method: method.name().to_string(),
                payload,
            },
        }
    }

    /// A reply frame.
    pub fn reply(id: u32, payload: Vec<u8>) -> Frame {
        Frame {
            id,
            body: FrameBody::Reply(payload),
        }
    }

    /// An error frame.
    pub fn error(id: u32, code: u32, message: impl Into<String>) -> Frame {
        Frame {
            id,
            body: FrameBody::Error {
                code,
                message: message.into(),
            },
        }
    }

    /// An event frame.
    pub fn event(id: u32, payload: Vec<u8>) -> Frame {
        Frame {
            id,
            body: FrameBody::Event(payload),
        }
    }

    /// Appends the encoded frame to `out`.
    ///
    /// # Panics
    /// When the frame would exceed [`MAX_FRAME_LEN`] or a method name is longer than
    /// 255 bytes: both are programming errors (messages here are small).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (kind, body_len) = match &self.body {
            FrameBody::Request { method, payload } => {
                assert!(method.len() <= usize::from(u8::MAX), "method name too long");
                (KIND_REQUEST, 1 + method.len() + payload.len())
            }
            FrameBody::Reply(p) => (KIND_REPLY, p.len()),
            FrameBody::Error { message, .. } => (KIND_ERROR, 4 + message.len()),
            FrameBody::Event(p) => (KIND_EVENT, p.len()),
        };
        let len = HEADER_BYTES + body_len;
        assert!(len <= MAX_FRAME_LEN, "frame too long");
        out.reserve(LEN_BYTES + len);
        out.extend_from_slice(&u32::try_from(len).expect("bounded").to_be_bytes());
        out.push(kind);
        out.extend_from_slice(&self.id.to_be_bytes());
        match &self.body {
            FrameBody::Request { method, payload } => {
                out.push(u8::try_from(method.len()).expect("checked above"));
                out.extend_from_slice(method.as_bytes());
                out.extend_from_slice(payload);
            }
            FrameBody::Reply(p) | FrameBody::Event(p) => out.extend_from_slice(p),
            FrameBody::Error { code, message } => {
                out.extend_from_slice(&code.to_be_bytes());
                out.extend_from_slice(message.as_bytes());
            }
        }
    }

    /// Appends an event frame for request `id` carrying `payload` to `out`, without
    /// building a [`Frame`] (one encoded payload sent to many subscribers).
    ///
    /// # Panics
    /// When the frame would exceed [`MAX_FRAME_LEN`].
    pub fn encode_event(id: u32, payload: &[u8], out: &mut Vec<u8>) {
        let len = HEADER_BYTES + payload.len();
        assert!(len <= MAX_FRAME_LEN, "frame too long");
        out.reserve(LEN_BYTES + len);
        out.extend_from_slice(&u32::try_from(len).expect("bounded").to_be_bytes());
        out.push(KIND_EVENT);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(payload);
    }

    /// Bytes [`Frame::encode_event`] appends for a payload of `payload_len` bytes.
    pub fn event_len(payload_len: usize) -> usize {
        LEN_BYTES + HEADER_BYTES + payload_len
    }

    /// The encoded frame as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Length of the next frame in `buf` (prefix included) once its prefix is there:
    /// `Ok(None)` while fewer than 4 bytes are buffered.
    pub fn peek_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.get(..LEN_BYTES) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLong { len });
        }
        if len < HEADER_BYTES {
            return Err(FrameError::TooShort { len });
        }
        Ok(Some(LEN_BYTES + len))
    }

    /// Decodes the first frame of `buf`: `Ok(None)` when `buf` does not hold a whole
    /// frame yet, else the frame and the number of bytes it used.
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        let Some(total) = Frame::peek_len(buf)? else {
            return Ok(None);
        };
        if buf.len() < total {
            return Ok(None);
        }
        let frame = &buf[LEN_BYTES..total];
        let kind = frame[0];
        let id = u32::from_be_bytes(frame[1..5].try_into().expect("4 bytes"));
        let body = &frame[HEADER_BYTES..];
        let body = match kind {
            KIND_REQUEST => {
                let (&n, rest) = body.split_first().ok_or(FrameError::Malformed {
                    what: "method name",
                    id,
                })?;
                let n = usize::from(n);
                if rest.len() < n {
                    return Err(FrameError::Malformed {
                        what: "method name",
                        id,
                    });
                }
                let method = std::str::from_utf8(&rest[..n])
                    .map_err(|_| FrameError::Malformed {
                        what: "method name",
                        id,
                    })?
                    .to_string();
                FrameBody::Request {
                    method,
                    payload: rest[n..].to_vec(),
                }
            }
            KIND_REPLY => FrameBody::Reply(body.to_vec()),
            KIND_ERROR => {
                if body.len() < 4 {
                    return Err(FrameError::Malformed {
                        what: "error code",
                        id,
                    });
                }
                let code = u32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
                let message =
                    String::from_utf8(body[4..].to_vec()).map_err(|_| FrameError::Malformed {
                        what: "error message",
                        id,
                    })?;
                FrameBody::Error { code, message }
            }
            KIND_EVENT => FrameBody::Event(body.to_vec()),
            kind => return Err(FrameError::UnknownKind { kind }),
        };
        Ok(Some((Frame { id, body }, total)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(frame: Frame) {
        let bytes = frame.to_bytes();
        let (back, used) = Frame::decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(back, frame);
    }

    #[test]
    fn every_kind_roundtrips() {
        roundtrip(Frame::request(7, Method::Wait, vec![10, 0]));
        roundtrip(Frame::request(0, Method::Connect, Vec::new()));
        roundtrip(Frame::reply(u32::MAX, vec![1, 2, 3]));
        roundtrip(Frame::reply(3, Vec::new()));
        roundtrip(Frame::error(9, code::NOT_FOUND, "process e1 not found"));
        roundtrip(Frame::event(4, vec![8, 1]));
    }

    #[test]
    fn encode_event_matches_frame_event() {
        let mut out = Vec::new();
        Frame::encode_event(9, &[1, 2, 3], &mut out);
        assert_eq!(out, Frame::event(9, vec![1, 2, 3]).to_bytes());
        assert_eq!(out.len(), Frame::event_len(3));
    }

    #[test]
    fn request_layout_is_stable() {
        let bytes = Frame::request(0x0102_0304, Method::Kill, vec![0xAA]).to_bytes();
        assert_eq!(
            bytes,
            [0, 0, 0, 11, 1, 1, 2, 3, 4, 4, b'K', b'i', b'l', b'l', 0xAA]
        );
        let err = Frame::error(1, 5, "x").to_bytes();
        assert_eq!(err, [0, 0, 0, 10, 3, 0, 0, 0, 1, 0, 0, 0, 5, b'x']);
    }

    #[test]
    fn partial_input_waits_for_more() {
        let bytes = Frame::reply(1, vec![5; 10]).to_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(Frame::decode(&bytes[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn two_frames_in_one_buffer() {
        let mut buf = Frame::reply(1, vec![1]).to_bytes();
        Frame::event(2, vec![2, 2]).encode(&mut buf);
        let (a, n) = Frame::decode(&buf).unwrap().unwrap();
        let (b, m) = Frame::decode(&buf[n..]).unwrap().unwrap();
        assert_eq!(a.id, 1);
        assert_eq!(b.body, FrameBody::Event(vec![2, 2]));
        assert_eq!(n + m, buf.len());
    }

    #[test]
    fn bad_frames_are_rejected() {
        let huge = u32::try_from(MAX_FRAME_LEN + 1).unwrap().to_be_bytes();
        assert!(matches!(
            Frame::decode(&huge),
            Err(FrameError::TooLong { .. })
        ));
        assert!(matches!(
            Frame::decode(&[0, 0, 0, 2, 1, 0]),
            Err(FrameError::TooShort { len: 2 })
        ));
        assert_eq!(
            Frame::decode(&[0, 0, 0, 5, 9, 0, 0, 0, 1]),
            Err(FrameError::UnknownKind { kind: 9 })
        );
        // Method name longer than the body.
        assert!(matches!(
            Frame::decode(&[0, 0, 0, 7, 1, 0, 0, 0, 1, 5, b'a']),
            Err(FrameError::Malformed { .. })
        ));
        // Error without code.
        assert!(matches!(
            Frame::decode(&[0, 0, 0, 6, 3, 0, 0, 0, 1, 0]),
            Err(FrameError::Malformed { .. })
        ));
    }

    #[test]
    fn method_names_roundtrip() {
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name()), Some(m));
        }
        assert_eq!(Method::from_name("Checkpoint"), None);
        assert_eq!(Method::CloseIo.name(), "CloseIO");
    }
}
