//! Table-driven tests of [`Inner::expire`]: each row is a state at a
//! moment, and what the timer must make of it.

use std::time::Duration;

use tokio::time::Instant;

use super::super::Mode;
use super::super::YamuxError;
use super::super::frame::{Flags, Header};
use super::state::{Inner, Keepalive, Wake};
use super::state_tests::{
    NO_WAKE, OPEN_TIMEOUT, WAKE_WRITER, WRITE_TIMEOUT, accepted_2, config, opened_1, st, st_mut,
};

/// What `expire` returns: the next deadline as an offset from now.
#[derive(Debug, PartialEq, Eq)]
enum Expiry {
    Next(Option<Duration>),
    KeepaliveTimeout,
}

struct TimerRow {
    name: &'static str,
    before: fn(&mut Inner, Instant),
    expiry: Expiry,
    wake: Wake,
    control: Vec<Header>,
    after: fn(&Inner, Instant),
}

fn no_keepalive(inner: &mut Inner, _: Instant) {
    inner.keepalive = Keepalive::Off;
}

/// Stream 1 opened with its SYN sent, ACK due at `now + offset`.
fn syn_sent(inner: &mut Inner, now: Instant, offset: Duration) {
    no_keepalive(inner, now);
    opened_1(inner);
    st_mut(inner, 1).pending_flags = Flags::NONE;
    inner.open_deadlines.push_back((now + offset, 1));
}

/// Stream 2 dropped and FIN sent, the peer's FIN due at `now + offset`.
fn lingering_2(inner: &mut Inner, now: Instant, offset: Duration) {
    no_keepalive(inner, now);
    accepted_2(inner);
    let st = st_mut(inner, 2);
    st.dropped = true;
    st.fin_requested = true;
    st.fin_sent = true;
    inner.close_deadlines.push_back((now + offset, 2));
}

fn timer_rows() -> Vec<TimerRow> {
    const SECOND: Duration = Duration::from_secs(1);
    vec![
        TimerRow {
            name: "nothing to wait for",
            before: no_keepalive,
            expiry: Expiry::Next(None),
            wake: NO_WAKE,
            control: vec![],
            after: |_, _| {},
        },
        TimerRow {
            name: "keepalive not due yet",
            before: |i, now| i.keepalive = Keepalive::Idle(now + SECOND),
            expiry: Expiry::Next(Some(SECOND)),
            wake: NO_WAKE,
            control: vec![],
            after: |i, _| assert!(i.control.is_empty()),
        },
        TimerRow {
            name: "keepalive due sends a ping and waits for the reply",
            before: |i, now| {
                i.keepalive = Keepalive::Idle(now);
                i.next_ping_id = 4;
            },
            expiry: Expiry::Next(Some(WRITE_TIMEOUT)),
            wake: WAKE_WRITER,
            control: vec![Header::ping(Flags::SYN, 4)],
            after: |i, now| {
                assert_eq!(i.keepalive, Keepalive::Waiting(4, now + WRITE_TIMEOUT));
                assert_eq!(i.next_ping_id, 5);
            },
        },
        TimerRow {
            name: "keepalive reply overdue ends the session",
            before: |i, now| i.keepalive = Keepalive::Waiting(4, now),
            expiry: Expiry::KeepaliveTimeout,
            wake: NO_WAKE,
            control: vec![],
            after: |_, _| {},
        },
        TimerRow {
            name: "unacknowledged stream before its deadline",
            before: |i, now| syn_sent(i, now, SECOND),
            expiry: Expiry::Next(Some(SECOND)),
            wake: NO_WAKE,
            control: vec![],
            after: |i, _| assert!(st(i, 1).reset.is_none()),
        },
        TimerRow {
            name: "unacknowledged stream at its deadline is reset with RST",
            before: |i, now| syn_sent(i, now, Duration::ZERO),
            expiry: Expiry::Next(None),
            wake: WAKE_WRITER,
            control: vec![],
            after: |i, _| {
                let st = st(i, 1);
                assert!(
                    matches!(st.reset, Some(YamuxError::OpenTimeout { id: 1, timeout }) if timeout == OPEN_TIMEOUT)
                );
                assert!(st.rst_pending);
                assert_eq!(i.ready, [1]);
                assert!(i.open_deadlines.is_empty());
            },
        },
        TimerRow {
            name: "a stream whose SYN never went out is reset without RST",
            before: |i, now| {
                syn_sent(i, now, Duration::ZERO);
                st_mut(i, 1).pending_flags = Flags::SYN;
            },
            expiry: Expiry::Next(None),
            wake: WAKE_WRITER,
            control: vec![],
            after: |i, _| {
                assert!(st(i, 1).reset.is_some());
                assert!(!st(i, 1).rst_pending);
            },
        },
        TimerRow {
            name: "an acknowledged stream's deadline is dropped early",
            before: |i, now| {
                syn_sent(i, now, SECOND);
                st_mut(i, 1).acked = true;
            },
            expiry: Expiry::Next(None),
            wake: NO_WAKE,
            control: vec![],
            after: |i, _| {
                assert!(st(i, 1).reset.is_none());
                assert!(i.open_deadlines.is_empty());
            },
        },
        TimerRow {
            name: "a dropped stream the peer never closes is reset",
            before: |i, now| lingering_2(i, now, Duration::ZERO),
            expiry: Expiry::Next(None),
            wake: WAKE_WRITER,
            control: vec![],
            after: |i, _| {
                let st = st(i, 2);
                assert!(matches!(st.reset, Some(YamuxError::StreamClosed { id: 2 })));
                assert!(st.rst_pending);
                assert_eq!(i.ready, [2]);
            },
        },
        TimerRow {
            name: "the earliest deadline is next",
            before: |i, now| {
                syn_sent(i, now, 3 * SECOND);
                lingering_2(i, now, 2 * SECOND);
                i.keepalive = Keepalive::Idle(now + 4 * SECOND);
            },
            expiry: Expiry::Next(Some(2 * SECOND)),
            wake: NO_WAKE,
            control: vec![],
            after: |_, _| {},
        },
    ]
}

#[test]
fn deadlines_expire_as_the_table_says() {
    let config = config();
    for row in timer_rows() {
        let name = row.name;
        eprintln!("row: {name}");
        let now = Instant::now();
        let mut inner = Inner::new(Mode::Client, &config, now);
        (row.before)(&mut inner, now);
        inner.wake = Wake::default();
        let expiry = match inner.expire(&config, now) {
            Ok(next) => Expiry::Next(next.map(|at| at - now)),
            Err(YamuxError::KeepaliveTimeout { timeout }) => {
                assert_eq!(timeout, WRITE_TIMEOUT, "{name}");
                Expiry::KeepaliveTimeout
            }
            Err(other) => panic!("{name}: unexpected error {other:?}"),
        };
        assert_eq!(expiry, row.expiry, "{name}");
        assert_eq!(inner.wake, row.wake, "{name}: tasks to wake");
        assert_eq!(
            Vec::from(inner.control.clone()),
            row.control,
            "{name}: control frames"
        );
        (row.after)(&inner, now);
    }
}
