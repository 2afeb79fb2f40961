//! The Attach subscribers of one process: each gets the process's output as `Output`
//! event frames on its connection, never slowing the process. A connection that holds
//! more than [`BUDGET`] bytes of unsent frames loses output (counted per stream and
//! reported with a `dropped` frame before the next data it gets); the subscription ends
//! with an `eof` frame.

use berth_api::berth::shim::v1 as pb;
use prost::Message;

use super::Outbox;
use super::log::Stream;

/// Bytes of unsent frames a connection may hold before its subscribers lose output.
pub const BUDGET: usize = 1 << 20;

fn wire(stream: Stream) -> pb::Stream {
    match stream {
        Stream::Stdout => pb::Stream::Stdout,
        Stream::Stderr => pb::Stream::Stderr,
    }
}

/// One Attach call.
#[derive(Debug)]
struct Attacher {
    conn: u32,
    req: u32,
    streams: [bool; 2],
    /// Bytes not delivered and not yet reported, per stream.
    dropped: [u64; 2],
}

impl Attacher {
    /// Sends the pending `dropped` report of `stream`; false when it did not fit.
    fn report_dropped(
        &mut self,
        exec_id: &str,
        stream: Stream,
        out: &mut dyn Outbox,
        limit: Option<usize>,
    ) -> bool {
        let n = self.dropped[stream as usize];
        if n == 0 {
            return true;
        }
        let frame = pb::Output {
            exec_id: exec_id.to_string(),
            stream: wire(stream) as i32,
            dropped: n,
            ..Default::default()
        }
        .encode_to_vec();
        let sent = out.event(self.conn, self.req, &frame, limit);
        if sent {
            self.dropped[stream as usize] = 0;
        }
        sent
    }
}

/// The subscribers of one process.
#[derive(Debug, Default)]
pub struct Attachers {
    list: Vec<Attacher>,
}

impl Attachers {
    /// True without subscribers.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds the subscription of request `req` on `conn` to the given streams.
    pub fn add(&mut self, conn: u32, req: u32, stdout: bool, stderr: bool) {
        self.list.push(Attacher {
            conn,
            req,
            streams: [stdout, stderr],
            dropped: [0, 0],
        });
    }

    /// Removes the subscription `req` of `conn`; true when it was here.
    pub fn remove(&mut self, conn: u32, req: u32) -> bool {
        let before = self.list.len();
        self.list.retain(|a| !(a.conn == conn && a.req == req));
        self.list.len() != before
    }

    /// Removes every subscription of a closed connection.
    pub fn remove_conn(&mut self, conn: u32) {
        self.list.retain(|a| a.conn != conn);
    }

    /// Sends `data` of `stream` to `conn`'s subscription `req` only, ignoring the
    /// budget (the partial lines an Attach with `logs` gets first).
    pub fn send_one(
        exec_id: &str,
        stream: Stream,
        data: &[u8],
        conn: u32,
        req: u32,
        out: &mut dyn Outbox,
    ) {
        if data.is_empty() {
            return;
        }
        let frame = pb::Output {
            exec_id: exec_id.to_string(),
            stream: wire(stream) as i32,
            data: data.to_vec(),
            ..Default::default()
        }
        .encode_to_vec();
        out.event(conn, req, &frame, None);
    }

    /// Sends output to every subscriber of `stream`, within each connection's budget.
    pub fn deliver(&mut self, exec_id: &str, stream: Stream, data: &[u8], out: &mut dyn Outbox) {
        if data.is_empty() || !self.list.iter().any(|a| a.streams[stream as usize]) {
            return;
        }
        let frame = pb::Output {
            exec_id: exec_id.to_string(),
            stream: wire(stream) as i32,
            data: data.to_vec(),
            ..Default::default()
        }
        .encode_to_vec();
        let mut gone = Vec::new();
        for a in self.list.iter_mut().filter(|a| a.streams[stream as usize]) {
            if !out.alive(a.conn) {
                gone.push(a.conn);
                continue;
            }
            let sent = a.report_dropped(exec_id, stream, out, Some(BUDGET))
                && out.event(a.conn, a.req, &frame, Some(BUDGET));
            if !sent {
                a.dropped[stream as usize] += data.len() as u64;
            }
        }
        for c in gone {
            self.remove_conn(c);
        }
    }

    /// The output ended: reports what each subscriber missed, sends `eof` and forgets
    /// them all.
    pub fn finish(&mut self, exec_id: &str, out: &mut dyn Outbox) {
        let eof = pb::Output {
            exec_id: exec_id.to_string(),
            eof: true,
            ..Default::default()
        }
        .encode_to_vec();
        for mut a in std::mem::take(&mut self.list) {
            a.report_dropped(exec_id, Stream::Stdout, out, None);
            a.report_dropped(exec_id, Stream::Stderr, out, None);
            out.event(a.conn, a.req, &eof, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::shim::frame::Frame;
    use std::collections::HashMap;

    /// Connections as byte queues that never drain.
    #[derive(Default)]
    struct Queues {
        q: HashMap<u32, Vec<(u32, pb::Output)>>,
        bytes: HashMap<u32, usize>,
    }

    impl Outbox for Queues {
        fn send(&mut self, _conn: u32, _frame: &Frame) {}
        fn alive(&self, conn: u32) -> bool {
            conn != 99
        }
        fn event(&mut self, conn: u32, id: u32, payload: &[u8], limit: Option<usize>) -> bool {
            let used = self.bytes.entry(conn).or_default();
            let len = Frame::event_len(payload.len());
            if limit.is_some_and(|l| *used + len > l) {
                return false;
            }
            *used += len;
            self.q
                .entry(conn)
                .or_default()
                .push((id, pb::Output::decode(payload).unwrap()));
            true
        }
    }

    #[test]
    fn streams_are_routed_and_a_full_connection_loses_only_its_share() {
        let mut a = Attachers::default();
        let mut q = Queues::default();
        a.add(1, 10, true, true);
        a.add(2, 20, false, true);
        a.add(99, 30, true, true);
        a.deliver("e", Stream::Stdout, b"out", &mut q);
        a.deliver("e", Stream::Stderr, b"err", &mut q);
        assert_eq!(q.q[&1].len(), 2);
        assert_eq!(q.q[&2].len(), 1);
        assert_eq!(q.q[&2][0].1.data, b"err");
        assert_eq!(q.q[&2][0].1.stream, pb::Stream::Stderr as i32);
        assert!(!q.q.contains_key(&99), "closed connection dropped");
        // Fill connection 2 to its budget: its stderr is dropped and counted.
        q.bytes.insert(2, BUDGET);
        a.deliver("e", Stream::Stderr, &[b'x'; 100], &mut q);
        a.deliver("e", Stream::Stderr, &[b'y'; 50], &mut q);
        assert_eq!(q.q[&1].len(), 4);
        assert_eq!(q.q[&2].len(), 1);
        // Room again: the report comes first, then the data.
        q.bytes.insert(2, 0);
        a.deliver("e", Stream::Stderr, b"z", &mut q);
        let c2: Vec<_> = q.q[&2].iter().map(|(_, o)| o.clone()).collect();
        assert_eq!(c2[1].dropped, 150);
        assert_eq!(c2[2].data, b"z");
        a.finish("e", &mut q);
        assert!(q.q[&1].last().unwrap().1.eof);
        assert_eq!(q.q[&1].last().unwrap().0, 10);
        assert!(q.q[&2].last().unwrap().1.eof);
        assert!(a.is_empty());
    }

    #[test]
    fn missed_output_is_reported_before_eof() {
        let mut a = Attachers::default();
        let mut q = Queues::default();
        a.add(1, 10, true, false);
        q.bytes.insert(1, BUDGET);
        a.deliver("", Stream::Stdout, b"lost", &mut q);
        a.finish("", &mut q);
        let c1: Vec<_> = q.q[&1].iter().map(|(_, o)| o.clone()).collect();
        assert_eq!(c1.len(), 2);
        assert_eq!(c1[0].dropped, 4);
        assert!(c1[1].eof);
    }
}
