//! A server-mode `yamux::Session` (a plugin's end of the connection) fed
//! arbitrary bytes by a peer over `tokio::io::duplex`.
//!
//! The first input byte picks the scenario, the rest is what the peer
//! sends:
//!
//! | bit | meaning |
//! |-----|---------|
//! | 0   | the peer closes its side (EOF) after sending everything |
//! | 1-2 | write chunk size: 1, 7, 64 or 4096 bytes |
//! | 3   | accepted streams echo what they read (else they are dropped) |
//! | 4   | we open a stream of our own and write to it |
//! | 5   | we ping the peer |
//! | 6   | tight config: 16-byte frames, accept backlog 2, small duplex buffer |
//! | 7   | we send GoAway once the input is written |
//!
//! Everything runs on a current-thread runtime with a paused clock, so the
//! session's keepalives and timeouts fire as soon as nothing else can run.
//!
//! Invariants: no panic anywhere (libfuzzer-sys aborts on a panic in any
//! task); every frame the session writes is a valid yamux header and the
//! streams it opens have even ids; after a peer EOF the session ends within
//! `LIMIT` of virtual time; without one it ends or goes idle by then. A hang
//! (a task that never yields) shows up as a libFuzzer timeout.

#![no_main]

use std::time::Duration;

use goplug::yamux::frame::{Flags, FrameType, HEADER_LEN, Header};
use goplug::yamux::{Config, Mode, Session};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Virtual time a session gets to settle (go past the 30 s keepalive and
/// the 10 s write timeout).
const LIMIT: Duration = Duration::from_secs(120);

/// How much an accepted stream reads before it stops echoing.
const ECHO_LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(run(control, input));
    // Dropping the runtime drops every task still parked.
});

async fn run(control: u8, input: &[u8]) {
    let eof = control & 1 != 0;
    let chunk = [1, 7, 64, 4096][usize::from((control >> 1) & 3)];
    let echo = control & 8 != 0;
    let open = control & 16 != 0;
    let ping = control & 32 != 0;
    let tight = control & 64 != 0;
    let go_away = control & 128 != 0;

    let mut config = Config::default();
    let mut buffer = 64 * 1024;
    if tight {
        config = config.max_frame_size(16).accept_backlog(2);
        buffer = 256;
    }
    let (ours, peer) = tokio::io::duplex(buffer);
    let (session, mut incoming) = Session::new(ours, Mode::Server, config);
    let (mut peer_rd, mut peer_wr) = tokio::io::split(peer);

    // The peer's reader: drains and checks everything the session writes.
    let drain = tokio::spawn(async move {
        let mut header = [0u8; HEADER_LEN];
        let mut body = vec![0u8; 4096];
        loop {
            if peer_rd.read_exact(&mut header).await.is_err() {
                return;
            }
            let decoded = Header::decode(&header)
                .unwrap_or_else(|e| panic!("session wrote an invalid header {header:02x?}: {e}"));
            let opens = decoded.flags.contains(Flags::SYN)
                && matches!(decoded.kind, FrameType::Data | FrameType::WindowUpdate);
            assert!(
                !opens || (decoded.stream_id != 0 && decoded.stream_id % 2 == 0),
                "a server session opened stream {} ({decoded:?})",
                decoded.stream_id
            );
            if decoded.kind == FrameType::Data {
                let mut left = decoded.length as usize;
                while left > 0 {
                    let n = left.min(body.len());
                    if peer_rd.read_exact(&mut body[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
            }
        }
    });

    // Accepted streams: echo (bounded) or drop.
    let acceptor = tokio::spawn(async move {
        while let Some(mut stream) = incoming.accept().await {
            if !echo {
                drop(stream);
                continue;
            }
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let mut total = 0;
                while total < ECHO_LIMIT {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            total += n;
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = stream.shutdown().await;
            });
        }
    });

    if open {
        let session = session.clone();
        tokio::spawn(async move {
            if let Ok(mut stream) = session.open().await {
                let _ = stream.write_all(b"hello from the plugin side").await;
                let _ = stream.shutdown().await;
                let mut sink = Vec::new();
                let _ = (&mut stream)
                    .take(ECHO_LIMIT as u64)
                    .read_to_end(&mut sink)
                    .await;
            }
        });
    }
    if ping {
        let session = session.clone();
        tokio::spawn(async move {
            let _ = session.ping().await;
        });
    }

    // The peer's writer.
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        for piece in input.chunks(chunk) {
            if peer_wr.write_all(piece).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        if eof {
            let _ = peer_wr.shutdown().await;
            drop(peer_wr);
        } else {
            // Keep the connection open (idle) until the end of the run.
            std::future::pending::<()>().await;
        }
    });

    // Everything the peer sent has been written, or the session stopped
    // reading (then the writer waits; the session must still end or idle).
    let mut writer = writer;
    let _ = tokio::time::timeout(LIMIT, &mut writer).await;
    if go_away {
        session.go_away();
    }
    let ended = tokio::time::timeout(LIMIT, session.closed()).await.is_ok();
    if eof && writer.is_finished() {
        assert!(
            ended,
            "the session did not end within {LIMIT:?} of the peer's EOF"
        );
    }
    let _ = session.close_reason();
    session.close();
    writer.abort();
    acceptor.abort();
    drain.abort();
}
