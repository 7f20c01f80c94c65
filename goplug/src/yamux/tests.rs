//! Session and stream tests over `tokio::io::duplex` pairs: two sessions
//! against each other, or a session against a hand-driven raw peer.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use super::frame::{Flags, FrameType, HEADER_LEN, Header, INITIAL_WINDOW};
use super::session::CONTROL_LIMIT;
use super::*;

const LIMIT: Duration = Duration::from_secs(20);

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("timed out")
}

/// Waits until `check` holds.
async fn eventually(mut check: impl FnMut() -> bool) {
    within(async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

fn quiet() -> Config {
    Config::default().keepalive_interval(None)
}

fn pair(
    client: Config,
    server: Config,
    buffer: usize,
) -> ((Session, Incoming), (Session, Incoming)) {
    let (a, b) = duplex(buffer);
    (
        Session::new(a, Mode::Client, client),
        Session::new(b, Mode::Server, server),
    )
}

/// The YamuxError inside a stream's I/O error.
fn inner(error: &io::Error) -> &YamuxError {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<YamuxError>())
        .unwrap_or_else(|| panic!("no YamuxError in {error:?}"))
}

/// A peer that speaks raw frames.
struct Raw(DuplexStream);

impl Raw {
    fn new(mode: Mode, config: Config) -> (Session, Incoming, Raw) {
        let (a, b) = duplex(64 * 1024);
        let (session, incoming) = Session::new(a, mode, config);
        (session, incoming, Raw(b))
    }

    async fn send(&mut self, header: Header, body: &[u8]) {
        within(async {
            self.0.write_all(&header.encode()).await.unwrap();
            self.0.write_all(body).await.unwrap();
        })
        .await;
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        within(self.0.write_all(bytes)).await.unwrap();
    }

    /// The next frame, or None at EOF.
    async fn recv(&mut self) -> Option<(Header, Vec<u8>)> {
        within(async {
            let mut bytes = [0; HEADER_LEN];
            if self.0.read_exact(&mut bytes).await.is_err() {
                return None;
            }
            let header = Header::decode(&bytes).unwrap();
            let mut body = Vec::new();
            if header.kind == FrameType::Data {
                body.resize(header.length as usize, 0);
                self.0.read_exact(&mut body).await.unwrap();
            }
            Some((header, body))
        })
        .await
    }

    async fn expect(&mut self, expected: Header) {
        let (header, _) = self.recv().await.expect("a frame, got EOF");
        assert_eq!(header, expected);
    }

    async fn expect_eof(&mut self) {
        if let Some(frame) = self.recv().await {
            panic!("expected EOF, got {frame:?}");
        }
    }
}

#[tokio::test]
async fn open_and_accept_both_ways() {
    let ((client, mut client_in), (server, mut server_in)) = pair(quiet(), quiet(), 64 * 1024);
    for (opener, acceptor) in [(&client, &mut server_in), (&server, &mut client_in)] {
        let mut a = within(opener.open()).await.unwrap();
        a.write_all(b"ping").await.unwrap();
        let mut b = within(acceptor.accept()).await.unwrap();
        assert_eq!(a.id(), b.id());
        let mut buf = [0; 4];
        within(b.read_exact(&mut buf)).await.unwrap();
        assert_eq!(&buf, b"ping");
        b.write_all(b"pong").await.unwrap();
        within(a.read_exact(&mut buf)).await.unwrap();
        assert_eq!(&buf, b"pong");
    }
    assert_eq!(within(client.open()).await.unwrap().id(), 3);
    assert_eq!(within(server.open()).await.unwrap().id(), 4);
    assert!(within(client.ping()).await.is_ok());
    assert!(within(server.ping()).await.is_ok());
}

#[tokio::test]
async fn many_concurrent_streams() {
    let ((client, _client_in), (_server, mut server_in)) = pair(quiet(), quiet(), 16 * 1024);
    tokio::spawn(async move {
        while let Some(mut stream) = server_in.accept().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = tokio::io::split(&mut stream);
                tokio::io::copy(&mut rd, &mut wr).await.unwrap();
                wr.shutdown().await.unwrap();
            });
        }
    });
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = client.open().await.unwrap();
            let message = format!("stream {i} ").repeat(1000);
            let (mut rd, mut wr) = tokio::io::split(&mut stream);
            let write = async {
                wr.write_all(message.as_bytes()).await.unwrap();
                wr.shutdown().await.unwrap();
            };
            let mut echoed = String::new();
            let read = rd.read_to_string(&mut echoed);
            let ((), read) = tokio::join!(write, read);
            read.unwrap();
            assert_eq!(echoed, message);
        }));
    }
    for task in tasks {
        within(task).await.unwrap();
    }
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

/// Writes `data` and reads everything the peer sends, at the same time.
async fn exchange(stream: Stream, data: &[u8]) -> Vec<u8> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let write = async {
        wr.write_all(data).await.unwrap();
        wr.shutdown().await.unwrap();
    };
    let mut received = Vec::new();
    let read = rd.read_to_end(&mut received);
    let ((), read) = tokio::join!(write, read);
    read.unwrap();
    received
}

#[tokio::test]
async fn four_mib_each_way_through_a_small_pipe() {
    const SIZE: usize = 4 << 20;
    let ((client, _ci), (_server, mut server_in)) = pair(quiet(), quiet(), 4096);
    let up = pattern(1, SIZE);
    let down = pattern(2, SIZE);
    let a = within(client.open()).await.unwrap();
    let b = within(server_in.accept()).await.unwrap();
    let (at_server, at_client) =
        within(async { tokio::join!(exchange(b, &down), exchange(a, &up)) }).await;
    assert!(at_server == up, "upload corrupted");
    assert!(at_client == down, "download corrupted");
}

#[tokio::test]
async fn a_larger_receive_window_is_announced_and_used() {
    const WINDOW: u32 = 1 << 20;
    let big = quiet().receive_window(WINDOW);
    let ((client, _ci), (_server, mut server_in)) = pair(big.clone(), big, 4096);
    let a = within(client.open()).await.unwrap();
    let b = within(server_in.accept()).await.unwrap();
    let data = pattern(3, 3 << 20);
    let (got, _) = within(async { tokio::join!(exchange(b, b""), exchange(a, &data)) }).await;
    assert!(got == data);

    let (session, _incoming, mut raw) = Raw::new(Mode::Client, quiet().receive_window(WINDOW));
    let _stream = within(session.open()).await.unwrap();
    raw.expect(Header::window_update(
        1,
        Flags::SYN,
        WINDOW - INITIAL_WINDOW,
    ))
    .await;
}

#[tokio::test]
async fn half_close_keeps_the_other_direction_open() {
    let ((client, _ci), (_server, mut server_in)) = pair(quiet(), quiet(), 4096);
    let mut a = within(client.open()).await.unwrap();
    a.write_all(b"request").await.unwrap();
    a.shutdown().await.unwrap();
    let err = a.write_all(b"more").await.unwrap_err();
    assert!(
        matches!(inner(&err), YamuxError::StreamClosed { id: 1 }),
        "{err}"
    );

    let mut b = within(server_in.accept()).await.unwrap();
    let mut request = Vec::new();
    within(b.read_to_end(&mut request)).await.unwrap();
    assert_eq!(request, b"request");
    b.write_all(b"response").await.unwrap();
    b.shutdown().await.unwrap();
    let mut response = Vec::new();
    within(a.read_to_end(&mut response)).await.unwrap();
    assert_eq!(response, b"response");
}

#[tokio::test]
async fn syn_goes_out_on_open_before_any_data() {
    let (session, _incoming, mut raw) = Raw::new(Mode::Client, quiet());
    let _stream = within(session.open()).await.unwrap();
    raw.expect(Header::window_update(1, Flags::SYN, 0)).await;
    let mut stream = within(session.open()).await.unwrap();
    stream.write_all(b"hi").await.unwrap();
    raw.expect(Header::window_update(3, Flags::SYN, 0)).await;
    raw.expect(Header::data(3, Flags::NONE, 2)).await;
}

#[tokio::test]
async fn ack_goes_out_on_accept_before_any_data() {
    let (_session, mut incoming, mut raw) = Raw::new(Mode::Server, quiet());
    raw.send(Header::window_update(1, Flags::SYN, 0), b"").await;
    let _stream = within(incoming.accept()).await.unwrap();
    raw.expect(Header::window_update(1, Flags::ACK, 0)).await;
}

#[tokio::test]
async fn ping_is_answered_with_the_same_value() {
    let (_session, _incoming, mut raw) = Raw::new(Mode::Server, quiet());
    for value in [0, 42, u32::MAX] {
        raw.send(Header::ping(Flags::SYN, value), b"").await;
        raw.expect(Header::ping(Flags::ACK, value)).await;
    }
}

#[tokio::test]
async fn reset_by_the_peer_fails_pending_io() {
    let (session, _incoming, mut raw) = Raw::new(Mode::Client, quiet());
    let stream = within(session.open()).await.unwrap();
    raw.expect(Header::window_update(1, Flags::SYN, 0)).await;
    raw.send(Header::window_update(1, Flags::ACK, 0), b"").await;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let read = tokio::spawn(async move { rd.read(&mut [0; 8]).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    raw.send(Header::window_update(1, Flags::RST, 0), b"").await;
    let err = within(read).await.unwrap().unwrap_err();
    assert!(
        matches!(inner(&err), YamuxError::StreamReset { id: 1 }),
        "{err}"
    );
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    let err = wr.write_all(b"x").await.unwrap_err();
    assert!(
        matches!(inner(&err), YamuxError::StreamReset { id: 1 }),
        "{err}"
    );
    assert!(!session.is_closed());
}

#[tokio::test]
async fn data_sent_with_fin_is_read_before_eof() {
    let (_session, mut incoming, mut raw) = Raw::new(Mode::Server, quiet());
    raw.send(Header::data(1, Flags::SYN | Flags::FIN, 5), b"hello")
        .await;
    let mut stream = within(incoming.accept()).await.unwrap();
    let mut data = Vec::new();
    within(stream.read_to_end(&mut data)).await.unwrap();
    assert_eq!(data, b"hello");
    // The ACK (it may carry the credit for the 5 bytes read already).
    let (header, _) = raw.recv().await.unwrap();
    assert_eq!(
        (header.kind, header.flags, header.stream_id),
        (FrameType::WindowUpdate, Flags::ACK, 1)
    );
}

#[tokio::test]
async fn go_away_refuses_new_streams_but_keeps_old_ones() {
    let ((client, _ci), (server, mut server_in)) = pair(quiet(), quiet(), 4096);
    let mut a = within(client.open()).await.unwrap();
    let mut b = within(server_in.accept()).await.unwrap();
    server.go_away();
    within(async {
        loop {
            match client.open().await {
                Err(YamuxError::RemoteGoAway { code: 0 }) => break,
                Err(e) => panic!("{e}"),
                // Raced the GoAway: the server refuses it with RST.
                Ok(mut late) => {
                    let err = late.read(&mut [0; 1]).await.unwrap_err();
                    assert!(matches!(inner(&err), YamuxError::StreamReset { .. }));
                }
            }
        }
    })
    .await;
    a.write_all(b"still").await.unwrap();
    let mut buf = [0; 5];
    within(b.read_exact(&mut buf)).await.unwrap();
    b.write_all(b"works").await.unwrap();
    within(a.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"works");
    assert!(!client.is_closed() && !server.is_closed());
}

#[tokio::test]
async fn streams_beyond_the_accept_backlog_are_reset() {
    let ((client, _ci), (_server, mut server_in)) = pair(quiet(), quiet().accept_backlog(2), 4096);
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = within(client.open()).await.unwrap();
        stream.write_all(b"x").await.unwrap();
        streams.push(stream);
    }
    let err = within(streams[2].read(&mut [0; 1])).await.unwrap_err();
    assert!(
        matches!(inner(&err), YamuxError::StreamReset { id: 5 }),
        "{err}"
    );
    for id in [1, 3] {
        let mut stream = within(server_in.accept()).await.unwrap();
        assert_eq!(stream.id(), id);
        let mut buf = [0; 1];
        within(stream.read_exact(&mut buf)).await.unwrap();
    }
}

#[tokio::test]
async fn open_timeout_resets_only_that_stream() {
    let config = quiet().open_timeout(Some(Duration::from_millis(100)));
    let (session, _incoming, mut raw) = Raw::new(Mode::Client, config);
    let mut stream = within(session.open()).await.unwrap();
    raw.expect(Header::window_update(1, Flags::SYN, 0)).await;
    let err = within(stream.read(&mut [0; 1])).await.unwrap_err();
    assert!(
        matches!(inner(&err), YamuxError::OpenTimeout { id: 1, .. }),
        "{err}"
    );
    raw.expect(Header::window_update(1, Flags::RST, 0)).await;
    assert!(!session.is_closed());
    // A late ACK is ignored; the session still works.
    raw.send(Header::window_update(1, Flags::ACK, 0), b"").await;
    raw.send(Header::ping(Flags::SYN, 7), b"").await;
    raw.expect(Header::ping(Flags::ACK, 7)).await;
}

#[tokio::test]
async fn keepalive_pings_and_gives_up_without_reply() {
    let config = Config::default()
        .keepalive_interval(Some(Duration::from_millis(50)))
        .write_timeout(Duration::from_secs(1));
    let (session, mut incoming, mut raw) = Raw::new(Mode::Client, config);
    // Answer two pings, then go silent.
    for _ in 0..2 {
        let (header, _) = raw.recv().await.unwrap();
        assert_eq!((header.kind, header.flags), (FrameType::Ping, Flags::SYN));
        raw.send(Header::ping(Flags::ACK, header.length), b"").await;
    }
    assert!(!session.is_closed());
    let (header, _) = raw.recv().await.unwrap();
    assert_eq!(header.kind, FrameType::Ping);
    assert!(within(incoming.accept()).await.is_none());
    assert!(matches!(
        session.close_reason(),
        Some(YamuxError::KeepaliveTimeout { .. })
    ));
    raw.expect_eof().await;
}

#[tokio::test]
async fn keepalives_between_two_sessions_keep_them_alive() {
    let config = Config::default()
        .keepalive_interval(Some(Duration::from_millis(20)))
        .write_timeout(Duration::from_millis(500));
    let ((client, _ci), (server, _si)) = pair(config.clone(), config, 4096);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!client.is_closed() && !server.is_closed());
}

/// Which error a malformed input must end the session with.
type Expected = fn(&YamuxError) -> bool;

/// Sets up a server session with one accepted stream (id 1) whose read is
/// pending, sends `bad`, and checks that everything fails with `expected`.
async fn malformed(bad: &[u8], expected: Expected) {
    let (session, mut incoming, mut raw) = Raw::new(Mode::Server, quiet());
    raw.send(Header::window_update(1, Flags::SYN, 0), b"").await;
    let mut stream = within(incoming.accept()).await.unwrap();
    raw.expect(Header::window_update(1, Flags::ACK, 0)).await;
    let read = tokio::spawn(async move { stream.read(&mut [0; 8]).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    raw.send_bytes(bad).await;
    let err = within(read).await.unwrap().unwrap_err();
    assert!(expected(inner(&err)), "{bad:?}: {err}");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().starts_with("yamux protocol error: "));
    raw.expect(Header::go_away(frame::GO_AWAY_PROTOCOL_ERROR))
        .await;
    raw.expect_eof().await;
    assert!(within(incoming.accept()).await.is_none());
    assert!(expected(&within(session.open()).await.unwrap_err()));
}

#[tokio::test]
async fn malformed_input_closes_the_session_with_the_cause() {
    use ProtocolError as P;
    use YamuxError::Protocol as E;
    let cases: Vec<(Vec<u8>, Expected)> = vec![
        (vec![1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], |e| {
            matches!(e, E(P::Frame(FrameError::Version(1))))
        }),
        (vec![0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0], |e| {
            matches!(e, E(P::Frame(FrameError::Type(9))))
        }),
        (vec![0, 1, 0, 0x20, 0, 0, 0, 1, 0, 0, 0, 0], |e| {
            matches!(e, E(P::Frame(FrameError::Flags(0x20))))
        }),
        (Header::data(0, Flags::NONE, 0).encode().to_vec(), |e| {
            matches!(
                e,
                E(P::StreamIdZero {
                    kind: FrameType::Data
                })
            )
        }),
        (
            Header::window_update(2, Flags::SYN, 0).encode().to_vec(),
            |e| matches!(e, E(P::WrongParity { id: 2 })),
        ),
        (
            Header::window_update(1, Flags::SYN, 0).encode().to_vec(),
            |e| matches!(e, E(P::DuplicateStream { id: 1 })),
        ),
        (Header::data(7, Flags::NONE, 0).encode().to_vec(), |e| {
            matches!(e, E(P::UnknownStream { id: 7 }))
        }),
        (
            Header::window_update(4, Flags::NONE, 1).encode().to_vec(),
            |e| matches!(e, E(P::UnknownStream { id: 4 })),
        ),
        (
            Header::data(1, Flags::NONE, INITIAL_WINDOW + 1)
                .encode()
                .to_vec(),
            |e| {
                matches!(e, E(P::WindowExceeded { id: 1, len, window: INITIAL_WINDOW })
                    if *len == INITIAL_WINDOW + 1)
            },
        ),
        (
            Header::window_update(1, Flags::NONE, u32::MAX)
                .encode()
                .to_vec(),
            |e| matches!(e, E(P::WindowOverflow { id: 1, .. })),
        ),
    ];
    for (bad, expected) in cases {
        malformed(&bad, expected).await;
    }
}

#[tokio::test]
async fn data_beyond_the_window_across_frames_is_an_error() {
    let (_session, mut incoming, mut raw) = Raw::new(Mode::Server, quiet());
    let chunk = vec![0; 64 * 1024];
    raw.send(Header::window_update(1, Flags::SYN, 0), b"").await;
    let _stream = within(incoming.accept()).await.unwrap();
    raw.expect(Header::window_update(1, Flags::ACK, 0)).await;
    // Nobody reads: four 64 KiB frames fill the window, the fifth overflows.
    for _ in 0..4 {
        raw.send(Header::data(1, Flags::NONE, chunk.len() as u32), &chunk)
            .await;
    }
    raw.send(Header::data(1, Flags::NONE, 1), b"x").await;
    raw.expect(Header::go_away(frame::GO_AWAY_PROTOCOL_ERROR))
        .await;
    raw.expect_eof().await;
}

#[tokio::test]
async fn a_ping_flood_does_not_grow_memory() {
    let (session, _incoming, raw) = Raw::new(Mode::Server, quiet());
    let (mut rd, mut wr) = tokio::io::split(raw.0);
    const PINGS: u32 = 50_000;
    let flood = tokio::spawn(async move {
        for value in 0..PINGS {
            wr.write_all(&Header::ping(Flags::SYN, value).encode())
                .await
                .unwrap();
        }
        wr
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Nobody reads the replies: the session stops reading instead of
    // queueing them.
    assert!(!flood.is_finished());
    let queued = session.with_inner(|inner| inner.control.len());
    assert!(queued <= CONTROL_LIMIT, "{queued} control frames queued");
    // Reading the replies lets the flood through; every ping is answered.
    let mut bytes = [0; HEADER_LEN];
    for value in 0..PINGS {
        within(rd.read_exact(&mut bytes)).await.unwrap();
        assert_eq!(
            Header::decode(&bytes).unwrap(),
            Header::ping(Flags::ACK, value)
        );
    }
    within(flood).await.unwrap();
    assert!(!session.is_closed());
}

#[tokio::test]
async fn a_dropped_stream_is_credited_and_forgotten() {
    let ((client, _ci), (server, mut server_in)) = pair(quiet(), quiet(), 4096);
    let mut a = within(client.open()).await.unwrap();
    drop(within(server_in.accept()).await.unwrap());
    // Four windows' worth: only possible if the server credits what it
    // discards.
    let data = vec![7; 4 * INITIAL_WINDOW as usize];
    within(a.write_all(&data)).await.unwrap();
    within(a.shutdown()).await.unwrap();
    // The server's FIN arrived: EOF.
    assert_eq!(within(a.read(&mut [0; 1])).await.unwrap(), 0);
    eventually(|| server.with_inner(|inner| inner.streams.is_empty())).await;
    assert_eq!(client.with_inner(|inner| inner.streams.len()), 1);
    drop(a);
    eventually(|| client.with_inner(|inner| inner.streams.is_empty())).await;
}

#[tokio::test]
async fn a_dropped_stream_the_peer_never_closes_is_reset() {
    let config = quiet().close_timeout(Some(Duration::from_millis(100)));
    let (session, mut incoming, mut raw) = Raw::new(Mode::Server, config);
    raw.send(Header::window_update(1, Flags::SYN, 0), b"").await;
    drop(within(incoming.accept()).await.unwrap());
    raw.expect(Header::window_update(1, Flags::ACK, 0)).await;
    raw.expect(Header::window_update(1, Flags::FIN, 0)).await;
    raw.expect(Header::window_update(1, Flags::RST, 0)).await;
    eventually(|| session.with_inner(|inner| inner.streams.is_empty())).await;
}

#[tokio::test]
async fn end_of_file_ends_the_session() {
    let (session, mut incoming, raw) = Raw::new(Mode::Client, quiet());
    let mut stream = within(session.open()).await.unwrap();
    drop(raw);
    let err = within(stream.read(&mut [0; 1])).await.unwrap_err();
    assert!(matches!(inner(&err), YamuxError::ConnectionClosed), "{err}");
    assert!(within(incoming.accept()).await.is_none());
    assert!(matches!(
        within(session.open()).await,
        Err(YamuxError::ConnectionClosed)
    ));
    let err = stream.write_all(b"x").await.unwrap_err();
    assert!(matches!(inner(&err), YamuxError::ConnectionClosed), "{err}");
    within(session.closed()).await;
}

#[tokio::test]
async fn close_flushes_sends_go_away_and_fails_streams() {
    let (session, _incoming, mut raw) = Raw::new(Mode::Client, quiet());
    let mut stream = within(session.open()).await.unwrap();
    stream.write_all(b"last words").await.unwrap();
    session.close();
    within(session.closed()).await;
    raw.expect(Header::window_update(1, Flags::SYN, 0)).await;
    let (header, body) = raw.recv().await.unwrap();
    assert_eq!(header, Header::data(1, Flags::NONE, 10));
    assert_eq!(body, b"last words");
    raw.expect(Header::go_away(frame::GO_AWAY_NORMAL)).await;
    raw.expect_eof().await;
    let err = stream.write_all(b"x").await.unwrap_err();
    assert!(matches!(inner(&err), YamuxError::SessionClosed), "{err}");
    assert!(matches!(
        session.open().await,
        Err(YamuxError::SessionClosed)
    ));
}

#[tokio::test]
async fn dropping_every_handle_ends_the_tasks() {
    let ((client, client_in), (server, mut server_in)) =
        pair(Config::default(), Config::default(), 4096);
    let stream = within(client.open()).await.unwrap();
    let accepted = within(server_in.accept()).await.unwrap();
    let (client_weak, server_weak) = (client.shared_weak(), server.shared_weak());
    drop((client, client_in));
    // A stream keeps its session alive.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        client_weak
            .upgrade()
            .is_some_and(|s| s.lock().closed.is_none())
    );
    drop(stream);
    // The client's tasks end; the server sees the GoAway and EOF, its tasks
    // end too although its handles are alive.
    eventually(|| client_weak.strong_count() == 0).await;
    assert!(within(server_in.accept()).await.is_none());
    assert!(matches!(
        server.close_reason(),
        Some(YamuxError::RemoteGoAway { code: 0 })
    ));
    // What is left: the three handles and their shared guard.
    eventually(|| server_weak.strong_count() == 4).await;
    drop((server, server_in, accepted));
    eventually(|| server_weak.strong_count() == 0).await;

    // Against a raw peer: dropping the handles sends GoAway and closes
    // the connection.
    let (session, incoming, mut raw) = Raw::new(Mode::Server, Config::default());
    let weak = session.shared_weak();
    drop((session, incoming));
    raw.expect(Header::go_away(frame::GO_AWAY_NORMAL)).await;
    raw.expect_eof().await;
    eventually(|| weak.strong_count() == 0).await;
}

#[tokio::test]
async fn dropping_incoming_refuses_streams() {
    let (_session, incoming, mut raw) = Raw::new(Mode::Server, quiet());
    raw.send(Header::window_update(1, Flags::SYN, 0), b"").await;
    raw.send(Header::ping(Flags::SYN, 1), b"").await;
    raw.expect(Header::ping(Flags::ACK, 1)).await;
    // Stream 1 waits in the backlog; dropping `incoming` resets it, and
    // stream 3 is refused outright.
    drop(incoming);
    raw.expect(Header::window_update(1, Flags::RST, 0)).await;
    raw.send(Header::window_update(3, Flags::SYN, 0), b"").await;
    raw.expect(Header::window_update(3, Flags::RST, 0)).await;
}

#[tokio::test]
async fn arbitrary_input_never_panics_the_session() {
    let mut x: u32 = 0x2545_f491;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for round in 0..300 {
        let mode = if round % 2 == 0 {
            Mode::Client
        } else {
            Mode::Server
        };
        let (session, mut incoming, mut raw) = Raw::new(mode, quiet());
        let _opened = within(session.open()).await.unwrap();
        let mut bytes = Vec::new();
        for _ in 0..(next() % 8 + 1) {
            // Mostly plausible headers, so that the deeper paths run too.
            let header = Header {
                kind: [
                    FrameType::Data,
                    FrameType::WindowUpdate,
                    FrameType::Ping,
                    FrameType::GoAway,
                ][next() as usize % 4],
                flags: Flags::NONE,
                stream_id: next() % 6,
                length: [0, 1, 5, INITIAL_WINDOW, u32::MAX][next() as usize % 5],
            };
            let mut encoded = header.encode();
            encoded[3] = (next() % 16) as u8;
            if next() % 10 == 0 {
                encoded[next() as usize % HEADER_LEN] = next() as u8;
            }
            bytes.extend_from_slice(&encoded);
            if header.kind == FrameType::Data && header.length <= 5 {
                bytes.extend(std::iter::repeat_n(b'x', header.length as usize));
            }
        }
        raw.send_bytes(&bytes).await;
        drop(raw);
        // Whatever it was, the session ends (EOF at the latest) in order.
        while within(incoming.accept()).await.is_some() {}
        assert!(session.is_closed());
    }
}
