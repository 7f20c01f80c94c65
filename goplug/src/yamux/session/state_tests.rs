//! Table-driven tests of the state machine, without sockets or tasks: each
//! row is a state, a frame, and what must come of it.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::super::frame::{Flags, FrameType, Header, INITIAL_WINDOW};
use super::super::stream::StreamState;
use super::super::{Config, Mode, ProtocolError, YamuxError};
use super::CONTROL_LIMIT;
use super::state::{Inner, Keepalive, Then, Wake};

const KEEPALIVE: Duration = Duration::from_secs(30);
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const OPEN_TIMEOUT: Duration = Duration::from_secs(75);

pub(super) fn config() -> Config {
    Config::default()
        .keepalive_interval(Some(KEEPALIVE))
        .write_timeout(WRITE_TIMEOUT)
        .open_timeout(Some(OPEN_TIMEOUT))
        .accept_backlog(2)
}

/// How a frame ended; `YamuxError` itself has no `PartialEq`.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok(Then),
    Protocol(ProtocolError),
    RemoteGoAway(u32),
}

impl From<Result<Then, YamuxError>> for Outcome {
    fn from(result: Result<Then, YamuxError>) -> Self {
        match result {
            Ok(then) => Outcome::Ok(then),
            Err(YamuxError::Protocol(e)) => Outcome::Protocol(e),
            Err(YamuxError::RemoteGoAway { code }) => Outcome::RemoteGoAway(code),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
}

pub(super) const NO_WAKE: Wake = Wake {
    writer: false,
    timer: false,
};
pub(super) const WAKE_WRITER: Wake = Wake {
    writer: true,
    timer: false,
};
const WAKE_TIMER: Wake = Wake {
    writer: false,
    timer: true,
};

// Setups. The sessions below are clients: we open odd ids, the peer even.

fn fresh(_: &mut Inner) {}

/// We opened stream 1; the peer has not ACKed it.
pub(super) fn opened_1(inner: &mut Inner) {
    inner.streams.insert(1, StreamState::new(true, None));
    inner.next_id = 3;
}

/// The peer opened stream 2 and we accepted it.
pub(super) fn accepted_2(inner: &mut Inner) {
    inner.streams.insert(2, StreamState::new(false, None));
    inner.max_inbound_id = 2;
}

/// The peer opened streams 2 and 4; nobody accepted them yet.
fn backlog_full(inner: &mut Inner) {
    for id in [2, 4] {
        inner.streams.insert(id, StreamState::new(false, None));
        inner.accept_queue.push_back(id);
    }
    inner.max_inbound_id = 4;
}

/// Stream 2 existed and is forgotten.
fn forgotten_2(inner: &mut Inner) {
    inner.max_inbound_id = 2;
}

pub(super) fn st(inner: &Inner, id: u32) -> &StreamState {
    match inner.streams.get(&id) {
        Some(st) => st,
        None => panic!("stream {id} is gone"),
    }
}

pub(super) fn st_mut(inner: &mut Inner, id: u32) -> &mut StreamState {
    match inner.streams.get_mut(&id) {
        Some(st) => st,
        None => panic!("stream {id} is gone"),
    }
}

struct Row {
    name: &'static str,
    before: fn(&mut Inner),
    frame: Header,
    /// Handed to `on_payload` when the frame is delivered.
    payload: &'static [u8],
    outcome: Outcome,
    wake: Wake,
    /// Control frames queued by this frame.
    control: Vec<Header>,
    after: fn(&Inner),
}

fn rows() -> Vec<Row> {
    use Outcome::{Ok, Protocol};
    use ProtocolError as P;
    vec![
        Row {
            name: "SYN opens a stream and queues it for accept",
            before: fresh,
            frame: Header::window_update(2, Flags::SYN, 0),
            payload: b"",
            outcome: Ok(Then::Deliver(0)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| {
                assert!(!st(i, 2).outbound);
                assert_eq!(i.accept_queue, [2]);
                assert_eq!(i.max_inbound_id, 2);
                assert!(i.ready.is_empty(), "the ACK waits for accept");
            },
        },
        Row {
            name: "SYN with data buffers the data",
            before: fresh,
            frame: Header::data(2, Flags::SYN, 5),
            payload: b"hello",
            outcome: Ok(Then::Deliver(5)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| {
                let st = st(i, 2);
                assert_eq!(st.recv_len, 5);
                assert_eq!(st.recv_buf, [Bytes::from_static(b"hello")]);
                assert_eq!(st.recv_window, INITIAL_WINDOW - 5);
            },
        },
        Row {
            name: "SYN with our parity",
            before: fresh,
            frame: Header::window_update(1, Flags::SYN, 0),
            payload: b"",
            outcome: Protocol(P::WrongParity { id: 1 }),
            wake: NO_WAKE,
            control: vec![],
            after: |i| assert!(i.streams.is_empty()),
        },
        Row {
            name: "SYN for an open stream",
            before: accepted_2,
            frame: Header::window_update(2, Flags::SYN, 0),
            payload: b"",
            outcome: Protocol(P::DuplicateStream { id: 2 }),
            wake: NO_WAKE,
            control: vec![],
            after: |_| {},
        },
        Row {
            name: "SYN beyond the accept backlog is refused with RST",
            before: backlog_full,
            frame: Header::data(6, Flags::SYN, 3),
            payload: b"",
            outcome: Ok(Then::Discard(3)),
            wake: WAKE_WRITER,
            control: vec![Header::window_update(6, Flags::RST, 0)],
            after: |i| {
                assert!(!i.streams.contains_key(&6));
                assert_eq!(i.accept_queue, [2, 4]);
                assert_eq!(i.max_inbound_id, 6);
            },
        },
        Row {
            name: "SYN after our GoAway is refused with RST",
            before: |i| i.local_go_away = true,
            frame: Header::window_update(2, Flags::SYN, 0),
            payload: b"",
            outcome: Ok(Then::Done),
            wake: WAKE_WRITER,
            control: vec![Header::window_update(2, Flags::RST, 0)],
            after: |i| assert!(i.streams.is_empty()),
        },
        Row {
            name: "SYN once Incoming is dropped is refused with RST",
            before: |i| i.incoming_alive = false,
            frame: Header::window_update(2, Flags::SYN, 0),
            payload: b"",
            outcome: Ok(Then::Done),
            wake: WAKE_WRITER,
            control: vec![Header::window_update(2, Flags::RST, 0)],
            after: |i| assert!(i.streams.is_empty()),
        },
        Row {
            name: "ACK marks our stream acknowledged",
            before: opened_1,
            frame: Header::window_update(1, Flags::ACK, 0),
            payload: b"",
            outcome: Ok(Then::Deliver(0)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| {
                assert!(st(i, 1).acked);
                assert_eq!(st(i, 1).send_window, INITIAL_WINDOW);
            },
        },
        Row {
            name: "ACK with a larger window",
            before: opened_1,
            frame: Header::window_update(1, Flags::ACK, 1000),
            payload: b"",
            outcome: Ok(Then::Deliver(0)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| {
                assert!(st(i, 1).acked);
                assert_eq!(st(i, 1).send_window, INITIAL_WINDOW + 1000);
            },
        },
        Row {
            name: "window update adds to the send window",
            before: |i| {
                accepted_2(i);
                st_mut(i, 2).send_window = 7;
            },
            frame: Header::window_update(2, Flags::NONE, 93),
            payload: b"",
            outcome: Ok(Then::Deliver(0)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| assert_eq!(st(i, 2).send_window, 100),
        },
        Row {
            name: "window update overflowing the send window",
            before: |i| {
                accepted_2(i);
                st_mut(i, 2).send_window = u32::MAX - 10;
            },
            frame: Header::window_update(2, Flags::NONE, 11),
            payload: b"",
            outcome: Protocol(P::WindowOverflow {
                id: 2,
                window: u32::MAX - 10,
                delta: 11,
            }),
            wake: NO_WAKE,
            control: vec![],
            after: |_| {},
        },
        Row {
            name: "data filling the window exactly",
            before: |i| {
                accepted_2(i);
                st_mut(i, 2).recv_window = 3;
            },
            frame: Header::data(2, Flags::NONE, 3),
            payload: b"abc",
            outcome: Ok(Then::Deliver(3)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| {
                assert_eq!(st(i, 2).recv_window, 0);
                assert_eq!(st(i, 2).recv_len, 3);
            },
        },
        Row {
            name: "data over the window",
            before: |i| {
                accepted_2(i);
                st_mut(i, 2).recv_window = 2;
            },
            frame: Header::data(2, Flags::NONE, 3),
            payload: b"",
            outcome: Protocol(P::WindowExceeded {
                id: 2,
                len: 3,
                window: 2,
            }),
            wake: NO_WAKE,
            control: vec![],
            after: |i| assert_eq!(st(i, 2).recv_window, 2),
        },
        Row {
            name: "data for a peer stream never opened",
            before: fresh,
            frame: Header::data(4, Flags::NONE, 1),
            payload: b"",
            outcome: Protocol(P::UnknownStream { id: 4 }),
            wake: NO_WAKE,
            control: vec![],
            after: |_| {},
        },
        Row {
            name: "window update for our stream never opened",
            before: opened_1,
            frame: Header::window_update(3, Flags::ACK, 0),
            payload: b"",
            outcome: Protocol(P::UnknownStream { id: 3 }),
            wake: NO_WAKE,
            control: vec![],
            after: |_| {},
        },
        Row {
            name: "data for a forgotten stream is discarded",
            before: forgotten_2,
            frame: Header::data(2, Flags::NONE, 10),
            payload: b"",
            outcome: Ok(Then::Discard(10)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| assert!(i.streams.is_empty()),
        },
        Row {
            name: "data for a forgotten stream beyond a whole window",
            before: forgotten_2,
            frame: Header::data(2, Flags::NONE, INITIAL_WINDOW + 1),
            payload: b"",
            outcome: Protocol(P::WindowExceeded {
                id: 2,
                len: INITIAL_WINDOW + 1,
                window: INITIAL_WINDOW,
            }),
            wake: NO_WAKE,
            control: vec![],
            after: |_| {},
        },
        Row {
            name: "FIN for a forgotten stream is ignored",
            before: forgotten_2,
            frame: Header::window_update(2, Flags::FIN, 0),
            payload: b"",
            outcome: Ok(Then::Done),
            wake: NO_WAKE,
            control: vec![],
            after: |i| assert!(i.streams.is_empty()),
        },
        Row {
            name: "stream id 0 in a data frame",
            before: fresh,
            frame: Header::data(0, Flags::NONE, 0),
            payload: b"",
            outcome: Protocol(P::StreamIdZero {
                kind: FrameType::Data,
            }),
            wake: NO_WAKE,
            control: vec![],
            after: |_| {},
        },
        Row {
            name: "stream id 0 in a window update",
            before: fresh,
            frame: Header::window_update(0, Flags::SYN, 0),
            payload: b"",
            outcome: Protocol(P::StreamIdZero {
                kind: FrameType::WindowUpdate,
            }),
            wake: NO_WAKE,
            control: vec![],
            after: |i| assert!(i.streams.is_empty()),
        },
        Row {
            name: "data with FIN is buffered before EOF",
            before: accepted_2,
            frame: Header::data(2, Flags::FIN, 2),
            payload: b"ok",
            outcome: Ok(Then::Deliver(2)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| {
                assert!(st(i, 2).remote_fin);
                assert_eq!(st(i, 2).recv_len, 2);
            },
        },
        Row {
            name: "RST resets without an RST back",
            before: accepted_2,
            frame: Header::window_update(2, Flags::RST, 0),
            payload: b"",
            outcome: Ok(Then::Deliver(0)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| {
                let st = st(i, 2);
                assert!(matches!(st.reset, Some(YamuxError::StreamReset { id: 2 })));
                assert!(!st.rst_pending);
                assert!(i.ready.is_empty());
            },
        },
        Row {
            name: "data for a dropped stream is credited back",
            before: |i| {
                accepted_2(i);
                let st = st_mut(i, 2);
                st.dropped = true;
                st.recv_window = INITIAL_WINDOW / 2 + 10;
            },
            frame: Header::data(2, Flags::NONE, 10),
            payload: b"0123456789",
            outcome: Ok(Then::Deliver(10)),
            wake: WAKE_WRITER,
            control: vec![],
            after: |i| {
                assert_eq!(st(i, 2).recv_len, 0);
                assert_eq!(i.ready, [2]);
            },
        },
        Row {
            name: "small data for a dropped stream is not credited yet",
            before: |i| {
                accepted_2(i);
                st_mut(i, 2).dropped = true;
            },
            frame: Header::data(2, Flags::NONE, 10),
            payload: b"0123456789",
            outcome: Ok(Then::Deliver(10)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| {
                assert_eq!(st(i, 2).recv_len, 0);
                assert!(i.ready.is_empty());
            },
        },
        Row {
            name: "FIN on a dropped stream that sent FIN forgets it",
            before: |i| {
                accepted_2(i);
                let st = st_mut(i, 2);
                st.dropped = true;
                st.fin_sent = true;
            },
            frame: Header::window_update(2, Flags::FIN, 0),
            payload: b"",
            outcome: Ok(Then::Deliver(0)),
            wake: NO_WAKE,
            control: vec![],
            after: |i| assert!(i.streams.is_empty()),
        },
        Row {
            name: "ping is answered with the same value",
            before: fresh,
            frame: Header::ping(Flags::SYN, 0xdead_beef),
            payload: b"",
            outcome: Ok(Then::Done),
            wake: WAKE_WRITER,
            control: vec![Header::ping(Flags::ACK, 0xdead_beef)],
            after: |i| assert!(!i.control_full()),
        },
        Row {
            name: "the ping that fills the control queue stops the reader",
            before: |i| {
                for n in 0..CONTROL_LIMIT - 1 {
                    i.control.push_back(Header::ping(Flags::ACK, n as u32));
                }
            },
            frame: Header::ping(Flags::SYN, 7),
            payload: b"",
            outcome: Ok(Then::Done),
            wake: WAKE_WRITER,
            control: vec![Header::ping(Flags::ACK, 7)],
            after: |i| assert!(i.control_full()),
        },
        Row {
            name: "a closed session never stops the reader",
            before: |i| {
                for n in 0..CONTROL_LIMIT {
                    i.control.push_back(Header::ping(Flags::ACK, n as u32));
                }
                i.closed = Some(YamuxError::SessionClosed);
            },
            frame: Header::ping(Flags::SYN, 7),
            payload: b"",
            outcome: Ok(Then::Done),
            wake: WAKE_WRITER,
            control: vec![Header::ping(Flags::ACK, 7)],
            after: |i| assert!(!i.control_full()),
        },
        Row {
            name: "keepalive reply rearms the keepalive",
            before: |i| i.keepalive = Keepalive::Waiting(7, Instant::now()),
            frame: Header::ping(Flags::ACK, 7),
            payload: b"",
            outcome: Ok(Then::Done),
            wake: WAKE_TIMER,
            control: vec![],
            after: |i| assert!(matches!(i.keepalive, Keepalive::Idle(_))),
        },
        Row {
            name: "reply to Session::ping completes it",
            before: |i| {
                let (tx, _rx) = oneshot::channel();
                i.pings.insert(5, tx);
            },
            frame: Header::ping(Flags::ACK, 5),
            payload: b"",
            outcome: Ok(Then::Done),
            wake: NO_WAKE,
            control: vec![],
            after: |i| assert!(i.pings.is_empty()),
        },
        Row {
            name: "unsolicited ping reply is ignored",
            before: |i| i.keepalive = Keepalive::Waiting(7, Instant::now()),
            frame: Header::ping(Flags::ACK, 8),
            payload: b"",
            outcome: Ok(Then::Done),
            wake: NO_WAKE,
            control: vec![],
            after: |i| assert!(matches!(i.keepalive, Keepalive::Waiting(7, _))),
        },
        Row {
            name: "GoAway(normal) stops new streams only",
            before: accepted_2,
            frame: Header::go_away(0),
            payload: b"",
            outcome: Ok(Then::Done),
            wake: NO_WAKE,
            control: vec![],
            after: |i| {
                assert!(i.remote_go_away);
                assert!(i.streams.contains_key(&2));
            },
        },
        Row {
            name: "GoAway(protocol error) ends the session",
            before: fresh,
            frame: Header::go_away(1),
            payload: b"",
            outcome: Outcome::RemoteGoAway(1),
            wake: NO_WAKE,
            control: vec![],
            after: |i| assert!(!i.remote_go_away),
        },
    ]
}

#[test]
fn frames_change_the_state_as_the_table_says() {
    let config = config();
    for row in rows() {
        let name = row.name;
        // Names the row when `after` fails.
        eprintln!("row: {name}");
        let mut inner = Inner::new(Mode::Client, &config, Instant::now());
        (row.before)(&mut inner);
        let queued = inner.control.len();
        inner.wake = Wake::default();
        let result = inner.on_header(&config, row.frame);
        if let Ok(Then::Deliver(len)) = result {
            assert_eq!(row.payload.len(), len as usize, "{name}: payload length");
            let payload = (len > 0).then(|| Bytes::from_static(row.payload));
            inner.on_payload(&config, row.frame, payload);
        }
        assert_eq!(Outcome::from(result), row.outcome, "{name}");
        assert_eq!(inner.wake, row.wake, "{name}: tasks to wake");
        let control: Vec<Header> = inner.control.iter().skip(queued).copied().collect();
        assert_eq!(control, row.control, "{name}: control frames");
        (row.after)(&inner);
    }
}
