//! Reliability suite, series D: transport and protocol abuse
//! (`research/reliability.md` §5, T28–T35). A real plugin process is
//! attacked over its own socket with raw HTTP/2 frames, raw yamux frames
//! and bad gob, while the legitimate host keeps using it; every test runs
//! under a [`Harness::exclusive`] (its processes gone, no zombies, fds and
//! socket dir at baseline), and the plugin's own fds and memory are read
//! from `/proc`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goplug::Protocol;
use goplug::handshake::PluginAddress;
use goplug::host::{Channel, Client, PluginSet};
use goplug::netrpc::rpc::RpcClient;
use goplug_example_kv::{HANDSHAKE, pb, pb::kv_client::KvClient};
use goplug_test::h2raw::{
    self, Frame, FrameReader, HeaderBlock, code, first_go_away, flag, kind, write_frames,
};
use goplug_test::{FAKE, Harness, prompt, scaled};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// A generous bound for one exchange on a loaded 2-core machine.
fn bound() -> Duration {
    scaled(Duration::from_secs(10))
}
/// The plugin's fd count may move by this much (runtime internals).
const FD_SLACK: usize = 2;

/// Anything a raw attacker can talk through.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A fake-plugin process started by a real host, and its working directory
/// (where the KV plugin writes one `kv_<key>` file per `Put`: the handler
/// invocation counter of these tests).
struct Plugin {
    client: Client,
    pid: u32,
    work: PathBuf,
}

impl Plugin {
    /// Starts `fake-plugin kv` over gRPC (or net/rpc with `netrpc`).
    async fn start(h: &Harness, name: &str, netrpc: bool, auto_mtls: bool) -> Self {
        let work = h.scratch(name);
        let mut command = h.command(&FAKE);
        command.arg("kv").current_dir(&work);
        let mut builder = Client::builder(HANDSHAKE)
            .unix_socket_dir(h.temp_dir())
            .start_timeout(Duration::from_secs(20))
            .auto_mtls(auto_mtls);
        if netrpc {
            command.env("FAKE_PROTOCOL", "netrpc");
            builder = builder
                .plugins(PluginSet::new().netrpc_with("kv", |rpc, _| rpc))
                .allowed_protocols([Protocol::NetRpc]);
        } else {
            builder = builder.plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"));
        }
        let client = within(builder.command(command).start())
            .await
            .expect("the plugin starts");
        let pid = client.pid().expect("a launched plugin has a pid");
        h.track(pid);
        Self { client, pid, work }
    }

    fn kv(&self) -> KvClient<Channel> {
        self.client.dispense_named("kv").expect("dispense kv")
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, Iterator::count)
    }

    fn rss_kib(&self) -> u64 {
        goplug_test::status_kib(&self.pid.to_string(), "VmRSS").expect("the plugin's VmRSS")
    }

    /// Whether a `Put` of `key` ever ran.
    fn wrote(&self, key: &str) -> bool {
        self.work.join(format!("kv_{key}")).exists()
    }

    /// Waits until the plugin's fd count is back to `baseline` (± slack).
    async fn fds_settle(&self, baseline: usize) {
        let start = Instant::now();
        while self.fds() > baseline + FD_SLACK && start.elapsed() < bound() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            self.fds() <= baseline + FD_SLACK,
            "plugin fds {} (baseline {baseline})",
            self.fds()
        );
    }

    /// The legitimate host still works: ping and a put/get round trip.
    async fn still_serves(&self, key: &str) {
        within(self.client.ping()).await.expect("ping");
        let mut kv = self.kv();
        within(kv.put(pb::PutRequest {
            key: key.to_owned(),
            value: b"ok".to_vec(),
        }))
        .await
        .expect("put");
        let got = within(kv.get(pb::GetRequest {
            key: key.to_owned(),
        }))
        .await
        .expect("get");
        assert!(got.into_inner().value.starts_with(b"ok"));
    }

    async fn stop(self) {
        let report = within(self.client.shutdown()).await;
        assert!(report.graceful, "{report:?}");
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(bound(), future)
        .await
        .expect("timed out")
}

/// A plain connection to the plugin's listener.
async fn dial(address: &PluginAddress) -> Box<dyn Io> {
    match address {
        PluginAddress::Unix(path) => Box::new(
            within(tokio::net::UnixStream::connect(path))
                .await
                .expect("connect"),
        ),
        PluginAddress::Tcp(addr) => Box::new(
            within(tokio::net::TcpStream::connect(addr))
                .await
                .expect("connect"),
        ),
    }
}

/// A raw HTTP/2 connection past the preface and SETTINGS exchange.
struct H2 {
    reader: FrameReader<ReadHalf<Box<dyn Io>>>,
    writer: WriteHalf<Box<dyn Io>>,
    /// The server's first SETTINGS.
    settings: Vec<(u16, u32)>,
}

impl H2 {
    async fn connect(address: &PluginAddress) -> Self {
        let (reader, mut writer) = tokio::io::split(dial(address).await);
        within(writer.write_all(&h2raw::client_preface()))
            .await
            .expect("preface");
        let mut reader = FrameReader::new(reader);
        let (frames, _) = reader
            .until(bound(), |f| {
                f.kind == kind::SETTINGS && f.flags & flag::ACK == 0
            })
            .await;
        let settings = frames
            .last()
            .filter(|f| f.kind == kind::SETTINGS)
            .expect("the server's SETTINGS")
            .settings_pairs();
        let ack = Frame::new(kind::SETTINGS, flag::ACK, 0, Vec::new());
        assert!(write_frames(&mut writer, &[ack]).await);
        Self {
            reader,
            writer,
            settings,
        }
    }

    /// Sends `frames` from another task (the server may stop reading, or
    /// hang up, half-way) while reading the answer until `stop`, the end of
    /// the connection or `wait`. Returns the frames read and whether the
    /// connection ended.
    async fn flood(
        mut self,
        frames: Vec<Frame>,
        wait: Duration,
        stop: impl FnMut(&Frame) -> bool,
    ) -> (Vec<Frame>, bool, Self) {
        let mut writer = self.writer;
        let sending = tokio::spawn(async move {
            write_frames(&mut writer, &frames).await;
            writer
        });
        let (answer, ended) = self.reader.until(wait, stop).await;
        self.writer = within(sending).await.expect("the writer task");
        (answer, ended, self)
    }
}

/// The body of a gRPC `KV.Put` for a short key and value.
fn put_body(key: &str, value: &[u8]) -> Vec<u8> {
    let short = |n: usize| {
        u8::try_from(n)
            .ok()
            .filter(|n| *n < 0x80)
            .expect("short field")
    };
    let message = [
        &[0x0a, short(key.len())][..],
        key.as_bytes(),
        &[0x12, short(value.len())],
        value,
    ]
    .concat();
    h2raw::grpc_message(&message)
}

/// HEADERS opening a gRPC call to `path` on `stream`, body to follow.
fn open_call(stream: u32, path: &[u8]) -> Frame {
    Frame::headers(
        stream,
        flag::END_HEADERS,
        HeaderBlock::grpc_request(path).bytes(),
    )
}

/// Whether a response header block is `:status 431` (a literal for static
/// name 8, its value raw or Huffman-coded, indexed or not).
fn is_status_431(block: &[u8]) -> bool {
    let [0x48 | 0x08, value @ ..] = block else {
        return false;
    };
    value == [0x03, b'4', b'3', b'1'] || value == [0x83, 0x69, 0x90, 0xff]
}

/// The answer to a PING, or the reason there was none.
async fn ping_answered(h2: H2) -> bool {
    let data = *b"healthy?";
    let (frames, _, _) = h2
        .flood(vec![Frame::ping(false, data)], bound(), |f| {
            f.kind == kind::PING || f.kind == kind::GOAWAY
        })
        .await;
    frames
        .iter()
        .any(|f| f.kind == kind::PING && f.flags & flag::ACK != 0 && f.payload == data)
}

/// T28: strangers on an AutoMTLS plugin (plaintext, TLS without a client
/// certificate) are turned away 1,000 times while the host's RPC loop sees
/// no error and the plugin's fd count stays flat.
#[test]
fn t28_automtls_plugin_turns_strangers_away_without_leaking() {
    Harness::exclusive().run(async |h| {
        let plugin = Plugin::start(h, "t28", false, true).await;
        let PluginAddress::Unix(socket) = plugin.client.address().clone() else {
            panic!("expected a unix socket");
        };
        let baseline = plugin.fds();
        let (errors, stop) = legitimate_loop(&plugin);
        let stranger =
            tokio_rustls::TlsConnector::from(Arc::new(goplug_test::pki::stranger_client_config()));
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a server name");
        for attempt in 0..1_000 {
            let stream = within(tokio::net::UnixStream::connect(&socket))
                .await
                .expect("connect");
            if attempt % 2 == 0 {
                // Plaintext HTTP/2: a TLS alert or nothing, never HTTP/2.
                let mut stream = stream;
                let _ = stream.write_all(&h2raw::client_preface()).await;
                let mut reply = Vec::new();
                let _ = within(stream.read_to_end(&mut reply)).await;
                assert!(reply.is_empty() || reply[0] == 0x15, "{reply:?}");
            } else {
                let served = within(async {
                    let mut tls = stranger.connect(name.clone(), stream).await?;
                    tls.write_all(&h2raw::client_preface()).await?;
                    tls.read(&mut [0u8; 64]).await
                })
                .await;
                assert!(
                    matches!(served, Err(_) | Ok(0)),
                    "a client without a certificate was served: {served:?}"
                );
            }
        }
        stop.store(true, Ordering::Relaxed);
        plugin.fds_settle(baseline).await;
        assert_eq!(errors.load(Ordering::Relaxed), 0, "the host's RPCs failed");
        within(plugin.client.ping()).await.expect("ping");
        plugin.stop().await;
    });
}

/// Calls the plugin's `Get` in a loop until told to stop; counts the
/// calls that fail in transport or hang.
fn legitimate_loop(plugin: &Plugin) -> (Arc<AtomicUsize>, Arc<AtomicBool>) {
    let errors = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut kv = plugin.kv();
    let (e, s) = (errors.clone(), stop.clone());
    tokio::spawn(async move {
        while !s.load(Ordering::Relaxed) {
            let call = kv.get(pb::GetRequest {
                key: "missing".to_owned(),
            });
            // A missing key is an answer (NotFound-like); only transport
            // failures and hangs count.
            match tokio::time::timeout(bound(), call).await {
                Ok(Ok(_)) => {}
                Ok(Err(status)) if status.code() == tonic::Code::Unknown => {}
                _ => {
                    e.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (errors, stop)
}

/// T29: garbage, a truncated preface, a 2-byte-per-second writer, 200 idle
/// connections and connect-then-close on the gRPC listener. The server
/// keeps serving the host throughout, closes the connections that never
/// complete the HTTP/2 preface, and its fds return to baseline.
#[test]
fn t29_garbage_and_slowloris_neither_stop_the_server_nor_hold_fds() {
    Harness::exclusive().run(async |h| {
        let plugin = Plugin::start(h, "t29", false, false).await;
        let address = plugin.client.address().clone();
        let baseline = plugin.fds();
        let (errors, stop) = legitimate_loop(&plugin);

        for _ in 0..50 {
            drop(dial(&address).await);
        }
        let mut garbage = dial(&address).await;
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let _ = garbage.write_all(&noise).await;
        let mut truncated = dial(&address).await;
        within(truncated.write_all(&h2raw::PREFACE[..10]))
            .await
            .expect("half a preface");
        let mut idle = Vec::new();
        for _ in 0..200 {
            idle.push(dial(&address).await);
        }
        let slow = {
            let mut conn = dial(&address).await;
            tokio::spawn(async move {
                // 2 bytes a second: the whole preface would take 12 s.
                for byte in h2raw::client_preface() {
                    if conn.write_all(&[byte]).await.is_err() {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let mut probe = [0u8; 1];
                    let closed = matches!(
                        tokio::time::timeout(Duration::from_millis(1), conn.read(&mut probe)).await,
                        Ok(Ok(0) | Err(_))
                    );
                    if closed {
                        return true;
                    }
                }
                false
            })
        };
        let start = Instant::now();
        while plugin.fds() < baseline + 200 && start.elapsed() < bound() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            plugin.fds() >= baseline + 200,
            "the idle connections were not accepted: {} fds (baseline {baseline})",
            plugin.fds()
        );
        plugin.still_serves("t29-during").await;

        // Every connection that never completes a preface is closed by the server.
        let closed_by_server = |mut conn: Box<dyn Io>| async move {
            let mut sink = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut sink));
            read.await.is_ok()
        };
        let mut waits = vec![
            tokio::spawn(closed_by_server(garbage)),
            tokio::spawn(closed_by_server(truncated)),
        ];
        waits.extend(idle.into_iter().map(|c| tokio::spawn(closed_by_server(c))));
        for wait in waits {
            assert!(
                tokio::time::timeout(Duration::from_secs(40), wait)
                    .await
                    .expect("bounded")
                    .expect("the wait task"),
                "a connection without a preface stayed open"
            );
        }
        assert!(
            within(slow).await.expect("the slow writer"),
            "a 2 bytes/s writer was allowed to finish its preface"
        );
        plugin.fds_settle(baseline).await;
        stop.store(true, Ordering::Relaxed);
        assert_eq!(errors.load(Ordering::Relaxed), 0, "the host's RPCs failed");
        plugin.still_serves("t29-after").await;
        plugin.stop().await;
    });
}

/// T30: HTTP/2 floods against the plugin's gRPC server: the limits
/// of §2.2 are announced and enforced, memory stays bounded and the
/// process survives.
#[test]
fn t30_http2_floods_meet_the_servers_limits() {
    Harness::exclusive().run(async |h| {
        let plugin = Plugin::start(h, "t30", false, false).await;
        let address = plugin.client.address().clone();
        let rss_before = plugin.rss_kib();

        // The first SETTINGS carries MAX_CONCURRENT_STREAMS.
        let h2 = H2::connect(&address).await;
        let max_streams = h2
            .settings
            .iter()
            .find(|(id, _)| *id == h2raw::SETTINGS_MAX_CONCURRENT_STREAMS)
            .map(|(_, value)| *value)
            .unwrap_or_else(|| panic!("no MAX_CONCURRENT_STREAMS in {:?}", h2.settings));

        // (g) Streams beyond the limit are refused; the others stay open.
        let extra = 10;
        let opened: Vec<Frame> = (0..max_streams + extra)
            .map(|i| open_call(1 + 2 * i, b"/proto.KV/Put"))
            .collect();
        let mut refused = 0;
        let (frames, ended, h2) = h2
            .flood(opened, bound(), |f| {
                refused += u32::from(f.rst_code() == Some(code::REFUSED_STREAM));
                refused == extra
            })
            .await;
        assert!(!ended, "the connection ended: {frames:?}");
        assert_eq!(refused, extra, "{frames:?}");
        drop(h2);

        // (a) Rapid reset: 10k HEADERS+RST_STREAM. GOAWAY ENHANCE_YOUR_CALM, or
        // a connection that still answers.
        let rapid: Vec<Frame> = (0..10_000u32)
            .flat_map(|i| {
                let stream = 1 + 2 * i;
                [
                    open_call(stream, b"/proto.KV/Put"),
                    Frame::rst_stream(stream, code::CANCEL),
                ]
            })
            .collect();
        let h2 = H2::connect(&address).await;
        let (frames, _, h2) = h2
            .flood(rapid, Duration::from_secs(2), |f| f.kind == kind::GOAWAY)
            .await;
        match first_go_away(&frames) {
            Some(go_away) => assert_eq!(go_away.code, code::ENHANCE_YOUR_CALM, "{go_away:?}"),
            None => assert!(
                ping_answered(h2).await,
                "neither GOAWAY nor a healthy connection"
            ),
        }

        // (b) 1,100 malformed requests (`:method GET` only): the library's
        // resets run out, GOAWAY ENHANCE_YOUR_CALM.
        let malformed: Vec<Frame> = (0..1_100u32)
            .map(|i| {
                Frame::headers(
                    1 + 2 * i,
                    flag::END_HEADERS | flag::END_STREAM,
                    HeaderBlock::new().indexed(2).bytes(),
                )
            })
            .collect();
        let h2 = H2::connect(&address).await;
        let (frames, _, _) = h2
            .flood(malformed, bound(), |f| f.kind == kind::GOAWAY)
            .await;
        let go_away = first_go_away(&frames).expect("GOAWAY after 1,100 malformed requests");
        assert_eq!(go_away.code, code::ENHANCE_YOUR_CALM, "{go_away:?}");

        // (c) CONTINUATION without END_HEADERS past the header-list limit.
        let pad = |i: u32| HeaderBlock::new().literal(&format!("x-pad-{i}"), &[b'a'; 1024]);
        let mut endless = vec![Frame::headers(
            1,
            flag::NONE,
            HeaderBlock::grpc_request(b"/proto.KV/Put").bytes(),
        )];
        endless.extend((0..64).map(|i| Frame::continuation(1, flag::NONE, pad(i).bytes())));
        let h2 = H2::connect(&address).await;
        let (frames, ended, _) = h2.flood(endless, bound(), |f| f.kind == kind::GOAWAY).await;
        assert!(
            first_go_away(&frames).is_some() || ended,
            "an endless header block was accepted: {frames:?}"
        );

        // (d) A 64 KiB header list in few frames (so not a CONTINUATION
        // flood): refused (431 or a reset), never handled.
        let wide = |i: u32| HeaderBlock::new().literal(&format!("x-wide-{i}"), &[b'a'; 16_000]);
        let mut big = vec![Frame::headers(
            1,
            flag::NONE,
            HeaderBlock::grpc_request(b"/proto.KV/Put").bytes(),
        )];
        big.extend((0..4).map(|i| Frame::continuation(1, flag::NONE, wide(i).bytes())));
        big.push(Frame::continuation(1, flag::END_HEADERS, &[]));
        big.push(Frame::data(1, flag::END_STREAM, &put_body("t30big", b"x")));
        let h2 = H2::connect(&address).await;
        let (frames, _, _) = h2
            .flood(big, bound(), |f| {
                f.stream == 1 && matches!(f.kind, kind::RST_STREAM | kind::HEADERS)
            })
            .await;
        assert!(
            frames.iter().any(|f| f.stream == 1
                && (f.kind == kind::RST_STREAM
                    || (f.kind == kind::HEADERS && is_status_431(&f.payload)))),
            "a 64 KiB header list was not refused: {frames:?}"
        );
        assert!(!plugin.wrote("t30big"), "the handler ran");

        // (e) A frame larger than MAX_FRAME_SIZE.
        let oversized = vec![Frame::data(
            1,
            flag::NONE,
            &vec![0; h2raw::DEFAULT_MAX_FRAME_SIZE + 1],
        )];
        let h2 = H2::connect(&address).await;
        let (frames, _, _) = h2
            .flood(oversized, bound(), |f| f.kind == kind::GOAWAY)
            .await;
        let go_away = first_go_away(&frames).expect("GOAWAY after an oversized frame");
        assert_eq!(go_away.code, code::FRAME_SIZE_ERROR, "{go_away:?}");

        // (f) 100k empty DATA frames on one stream.
        let mut empty = vec![open_call(1, b"/proto.KV/Put")];
        empty.extend((0..100_000).map(|_| Frame::data(1, flag::NONE, &[])));
        let h2 = H2::connect(&address).await;
        let (frames, ended, _) = h2.flood(empty, bound(), |f| f.kind == kind::GOAWAY).await;
        assert!(
            first_go_away(&frames).is_some() || ended,
            "100k empty DATA frames were accepted: {frames:?}"
        );

        let grown = plugin.rss_kib().saturating_sub(rss_before);
        assert!(grown < 20 * 1024, "plugin RSS grew by {grown} KiB");
        plugin.still_serves("t30").await;
        plugin.stop().await;
    });
}

/// T31: the plugin refuses a request over its 4 MiB decode limit and stays
/// usable (a request just under it succeeds); the host accepts a 64 MiB
/// response, as go-plugin's MaxInt32 client does.
#[test]
fn t31_message_limits_refuse_large_requests_and_accept_large_responses() {
    const LIMIT: usize = 4 << 20;
    Harness::exclusive().run(async |h| {
        let plugin = Plugin::start(h, "t31", false, false).await;
        let mut kv = plugin.kv();
        let rss_before = plugin.rss_kib();

        let too_big = within(kv.put(pb::PutRequest {
            key: "over".to_owned(),
            value: vec![b'x'; LIMIT + 1],
        }))
        .await
        .expect_err("a request over the limit");
        assert!(
            matches!(
                too_big.code(),
                tonic::Code::ResourceExhausted | tonic::Code::OutOfRange
            ),
            "{too_big:?}"
        );
        assert!(!plugin.wrote("over"), "the handler ran");
        // Key "under" (5) + value with its tag and 4-byte length: the whole
        // message is LIMIT - 5 bytes.
        let value_len = LIMIT - 5 - (2 + 5) - (1 + 4);
        within(kv.put(pb::PutRequest {
            key: "under".to_owned(),
            value: vec![b'y'; value_len],
        }))
        .await
        .expect("a request under the limit, on the same connection");
        assert!(plugin.wrote("under"));
        let grown = plugin.rss_kib().saturating_sub(rss_before);
        assert!(grown < 3 * 2 * 4096, "plugin RSS grew by {grown} KiB");

        // 64 MiB back to the host: a file the plugin's Get reads.
        let huge = 64 << 20;
        std::fs::write(plugin.work.join("kv_huge"), vec![b'z'; huge]).expect("the file");
        let host_before = goplug_test::status_kib("self", "VmRSS").expect("own RSS");
        let got = within(kv.get(pb::GetRequest {
            key: "huge".to_owned(),
        }))
        .await
        .expect("a 64 MiB response")
        .into_inner();
        assert_eq!(got.value.len(), huge + "Read by plugin version 1\n".len());
        let host_grown = goplug_test::status_kib("self", "VmRSS")
            .expect("own RSS")
            .saturating_sub(host_before);
        assert!(
            host_grown < 3 * 64 * 1024,
            "host RSS grew by {host_grown} KiB"
        );
        drop(got);
        plugin.stop().await;
    });
}

/// T32: requests whose `:path` is relative, empty, or names an unknown
/// service or method are answered without running any handler; the same
/// request with the right path does run it.
#[test]
fn t32_bad_paths_never_reach_a_handler() {
    Harness::exclusive().run(async |h| {
        let plugin = Plugin::start(h, "t32", false, false).await;
        let address = plugin.client.address().clone();
        let paths: [&[u8]; 7] = [
            b"proto.KV/Put",
            b"/proto.Nope/Put",
            b"/proto.KV/Nope",
            b"",
            b"//proto.KV/Put",
            b"/proto.KV/Put/",
            b"/proto.KV/Put", // the control: this one must run
        ];
        let mut frames = Vec::new();
        for (i, path) in (0u32..).zip(paths) {
            let stream = 1 + 2 * i;
            frames.push(open_call(stream, path));
            frames.push(Frame::data(
                stream,
                flag::END_STREAM,
                &put_body("routed", b"x"),
            ));
        }
        let streams: Vec<u32> = (0u32..).zip(paths).map(|(i, _)| 1 + 2 * i).collect();
        let mut answered = std::collections::HashSet::new();
        let h2 = H2::connect(&address).await;
        let (got, ended, _) = h2
            .flood(frames, bound(), |f| {
                let ends = f.flags & flag::END_STREAM != 0 && f.kind == kind::HEADERS;
                if ends || f.kind == kind::RST_STREAM {
                    answered.insert(f.stream);
                }
                answered.len() == streams.len() || f.kind == kind::GOAWAY
            })
            .await;
        assert!(!ended, "{got:?}");
        assert_eq!(answered.len(), streams.len(), "unanswered streams: {got:?}");
        // Only the control request wrote the file: exactly one Put ran.
        let value = std::fs::read(plugin.work.join("kv_routed")).expect("the control request ran");
        assert_eq!(value, b"x\n\nWritten from plugin version 1\n");
        std::fs::remove_file(plugin.work.join("kv_routed")).expect("reset the counter");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!plugin.wrote("routed"), "a bad path ran the handler late");
        plugin.stop().await;
    });
}

/// A yamux frame header: version 0, type, flags, stream id, length.
fn yamux(kind: u8, flags: u16, stream: u32, length: u32) -> Vec<u8> {
    [
        &[0, kind][..],
        &flags.to_be_bytes(),
        &stream.to_be_bytes(),
        &length.to_be_bytes(),
    ]
    .concat()
}

const YAMUX_DATA: u8 = 0;
const YAMUX_WINDOW_UPDATE: u8 = 1;
const YAMUX_GO_AWAY: u8 = 3;
const YAMUX_SYN: u16 = 1;

/// T33: malformed yamux on a real net/rpc plugin's listener: each case gets
/// GoAway(protocol error) and a closed connection, the plugin's fds return
/// to baseline and the host keeps calling it. (Frame-level cases with the
/// exact error are unit tests in `goplug/src/yamux/tests.rs`.)
#[test]
fn t33_malformed_yamux_closes_only_that_connection() {
    Harness::exclusive().run(async |h| {
        let plugin = Plugin::start(h, "t33", true, false).await;
        let rpc: RpcClient = within(plugin.client.dispense_named_async("kv"))
            .await
            .expect("dispense");
        let address = plugin.client.address().clone();
        let baseline = plugin.fds();
        let syn = yamux(YAMUX_WINDOW_UPDATE, YAMUX_SYN, 1, 0);
        // One byte past the initial window (GHSA-vxx9); the header alone
        // must condemn it, so only the start of the body is sent (a peer
        // closing on unread data would reset the connection, hiding GoAway).
        let big_body = 256 * 1024 + 1;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("version 1", [&[1u8][..], &yamux(0, 0, 1, 0)[1..]].concat()),
            ("unknown type", yamux(9, 0, 1, 0)),
            (
                "Data|SYN past the window",
                [
                    yamux(YAMUX_DATA, YAMUX_SYN, 1, big_body as u32),
                    vec![0; 1024],
                ]
                .concat(),
            ),
            (
                "window overflow",
                [syn.clone(), yamux(YAMUX_WINDOW_UPDATE, 0, 1, u32::MAX)].concat(),
            ),
            ("duplicate SYN", [syn.clone(), syn.clone()].concat()),
            (
                "SYN on the plugin's parity",
                yamux(YAMUX_WINDOW_UPDATE, YAMUX_SYN, 2, 0),
            ),
        ];
        for (what, bad) in cases {
            let (mut reader, mut writer) = tokio::io::split(dial(&address).await);
            let sending = tokio::spawn(async move {
                let _ = writer.write_all(&bad).await;
                writer
            });
            let mut answer = Vec::new();
            within(reader.read_to_end(&mut answer))
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            drop(within(sending).await);
            // The last frame is GoAway with code 1 (protocol error).
            let go_away = answer.len().checked_sub(12).map(|at| &answer[at..]);
            assert_eq!(
                go_away,
                Some(&yamux(YAMUX_GO_AWAY, 0, 0, 1)[..]),
                "{what}: {answer:?}"
            );
        }
        plugin.fds_settle(baseline).await;
        let missing =
            within(rpc.call::<String, Vec<u8>>("Plugin.Get", &"missing".to_owned())).await;
        assert!(
            matches!(missing, Err(goplug::Error::RemoteCall { .. })),
            "the host's connection broke: {missing:?}"
        );
        drop(rpc);
        plugin.stop().await;
    });
}

/// T33 (GHSA-3999, GHSA-29qp class): a peer that stops reading while we
/// write 100 MiB. The session gives up at its write timeout, so the write
/// and a read pending on another stream both fail promptly instead of
/// hanging, and memory stays bounded by the window, not the 100 MiB.
#[test]
fn t33_a_peer_that_stops_reading_fails_every_pending_call() {
    Harness::exclusive().run(async |_h| {
        let (ours, _silent_peer) = tokio::io::duplex(64 * 1024);
        let config = goplug::yamux::Config::default().write_timeout(Duration::from_millis(500));
        let (session, _incoming) =
            goplug::yamux::Session::new(ours, goplug::yamux::Mode::Client, config);
        let mut writer = within(session.open()).await.expect("a stream");
        let mut reader = within(session.open()).await.expect("another stream");
        let rss_before = goplug_test::status_kib("self", "VmRSS").expect("own RSS");
        let started = Instant::now();
        let pending_read = tokio::spawn(async move { reader.read(&mut [0u8; 8]).await });
        let chunk = vec![7u8; 1 << 20];
        let written = within(async {
            for _ in 0..100 {
                writer.write_all(&chunk).await?;
            }
            writer.flush().await
        })
        .await;
        assert!(
            written.is_err(),
            "100 MiB went to a peer that reads nothing"
        );
        let read = within(pending_read).await.expect("the reading task");
        assert!(read.is_err(), "a pending read survived: {read:?}");
        // 500 ms write timeout (go-plugin's bound is 2 s): failing, not
        // hanging, on a loaded machine.
        assert!(
            started.elapsed() < Duration::from_millis(500) + prompt(),
            "{:?}",
            started.elapsed()
        );
        assert!(session.is_closed());
        let grown = goplug_test::status_kib("self", "VmRSS")
            .expect("own RSS")
            .saturating_sub(rss_before);
        assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
    });
}

/// A gob unsigned integer.
fn gob_uint(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(value as u8);
        return;
    }
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push((256 - (8 - skip)) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// A gob signed integer.
fn gob_int(out: &mut Vec<u8>, value: i64) {
    let folded = if value < 0 {
        (!(value as u64) << 1) | 1
    } else {
        (value as u64) << 1
    };
    gob_uint(out, folded);
}

/// A gob message: its length, then its bytes.
fn gob_framed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    gob_uint(&mut out, message.len() as u64);
    out.extend_from_slice(message);
    out
}

/// 10,000 slice types, each of the one before, then a value of the last.
fn gob_nested(levels: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for id in 65..65 + levels {
        let elem = if id == 65 { 2 } else { id - 1 };
        let mut m = Vec::new();
        gob_int(&mut m, -id);
        m.extend([2, 1, 2]); // wireType.SliceT, CommonType.Name = ""
        gob_int(&mut m, id);
        m.extend([0, 1]);
        gob_int(&mut m, elem);
        m.extend([0, 0]);
        out.extend(gob_framed(&m));
    }
    let mut value = Vec::new();
    gob_int(&mut value, 64 + levels);
    value.extend([1, 1, 0]);
    out.extend(gob_framed(&value));
    out
}

/// T34: bad gob on the control stream of a real net/rpc plugin (a type
/// nested 10,000 deep, a 2³¹-byte message, an overflowing varint, a
/// truncated message): the plugin drops that connection without a big
/// allocation, and the host's connection keeps working.
#[test]
fn t34_bad_gob_drops_the_connection_without_a_big_allocation() {
    Harness::exclusive().run(async |h| {
        let plugin = Plugin::start(h, "t34", true, false).await;
        let rpc: RpcClient = within(plugin.client.dispense_named_async("kv"))
            .await
            .expect("dispense");
        let PluginAddress::Unix(socket) = plugin.client.address().clone() else {
            panic!("expected a unix socket");
        };
        let baseline = plugin.fds();
        let rss_before = plugin.rss_kib();
        // The nested types are otherwise well-formed: the decoder refuses
        // them for their depth, not for a slip in this test.
        let depth = goplug::netrpc::gob::Decoder::new(goplug::netrpc::gob::Limits::default())
            .decode(&gob_nested(10_000));
        assert!(
            matches!(depth, Err(goplug::netrpc::gob::GobError::DepthLimit { .. })),
            "{depth:?}"
        );
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("nested 10,000 levels", gob_nested(10_000)),
            ("2^31-byte message", {
                let mut m = Vec::new();
                gob_uint(&mut m, 1 << 31);
                m.extend([0; 16]);
                m
            }),
            (
                "overflowing varint",
                [0xf7].into_iter().chain([0xff; 9]).collect(),
            ),
            ("truncated message", [&[0x40][..], &[1, 2, 3]].concat()),
        ];
        for (what, bad) in cases {
            let conn = within(tokio::net::UnixStream::connect(&socket))
                .await
                .expect("connect");
            let (session, _incoming) = goplug::yamux::Session::new(
                conn,
                goplug::yamux::Mode::Client,
                goplug::yamux::Config::default(),
            );
            let mut control = within(session.open()).await.expect("control");
            let _stdout = within(session.open()).await.expect("stdout");
            let _stderr = within(session.open()).await.expect("stderr");
            let _ = within(control.write_all(&bad)).await;
            // The truncated message only shows as such once the stream ends.
            let _ = within(control.shutdown()).await;
            let mut rest = Vec::new();
            let read = within(control.read_to_end(&mut rest)).await;
            assert!(
                matches!(&read, Err(_) | Ok(0)),
                "{what}: the plugin answered bad gob: {read:?} {rest:?}"
            );
            within(session.closed()).await;
        }
        plugin.fds_settle(baseline).await;
        let grown = plugin.rss_kib().saturating_sub(rss_before);
        assert!(grown < 8 * 1024, "plugin RSS grew by {grown} KiB");
        let missing =
            within(rpc.call::<String, Vec<u8>>("Plugin.Get", &"missing".to_owned())).await;
        assert!(
            matches!(missing, Err(goplug::Error::RemoteCall { .. })),
            "the host's connection broke: {missing:?}"
        );
        drop(rpc);
        plugin.stop().await;
    });
}

/// Runs `call` (true when it failed) and times it.
async fn timed(
    what: &'static str,
    call: impl Future<Output = bool>,
) -> (&'static str, bool, Duration) {
    let started = Instant::now();
    let failed = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .unwrap_or_else(|_| panic!("{what} never gave up"));
    (what, failed, started.elapsed())
}

/// T35 (a, b): a gRPC broker dial nobody serves, and a net/rpc broker
/// accept and dial nobody answers, each fail after go-plugin's 5 s (run at
/// once to keep the wall time at 5 s). A gRPC `accept_and_serve` has no
/// wait to time out, in go-plugin as here: it serves until stopped.
#[test]
fn t35_broker_waits_give_up_after_five_seconds() {
    Harness::exclusive().run(async |h| {
        let grpc = Plugin::start(h, "t35-grpc", false, false).await;
        let netrpc = Plugin::start(h, "t35-netrpc", true, false).await;
        let mux = netrpc
            .client
            .mux_broker()
            .expect("a net/rpc host has a mux broker");
        let results = tokio::join!(
            timed("gRPC dial", async {
                grpc.client.broker().dial(4242).await.is_err()
            }),
            timed("net/rpc accept", async { mux.accept(4242).await.is_err() }),
            timed("net/rpc dial", async { mux.dial(4243).await.is_err() }),
        );
        for (what, failed, took) in [results.0, results.1, results.2] {
            assert!(failed, "{what} succeeded");
            // 5 s as go-plugin; the upper bound leaves room for a loaded box.
            assert!(
                took >= Duration::from_millis(4_900) && took < scaled(Duration::from_secs(15)),
                "{what} gave up after {took:?}"
            );
        }
        grpc.still_serves("t35").await;
        netrpc.stop().await;
        grpc.stop().await;
    });
}

/// T35 (c): 1,000 brokered servers opened, dialled, called and closed
/// (host and plugin in one process): the runtime's tasks and the fds
/// return to baseline.
#[test]
fn t35_broker_churn_returns_tasks_and_fds_to_baseline() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    Harness::exclusive().run(async |_h| {
        let (plugin_broker_tx, plugin_broker_rx) = std::sync::mpsc::channel();
        let serve = goplug::plugin::ServeConfig::new(HANDSHAKE).plugins(
            goplug::plugin::Services::new().grpc_with_broker("kv", move |broker| {
                let _ = plugin_broker_tx.send(broker.clone());
                pb::kv_server::KvServer::new(goplug_example_kv::FileKv::versioned(1))
            }),
        );
        let client = within(goplug::testing::connect(
            serve,
            PluginSet::new().grpc::<KvClient<Channel>>("kv"),
        ))
        .await
        .expect("in-process plugin");
        let plugin_broker = plugin_broker_rx
            .recv_timeout(bound())
            .expect("the plugin's broker");
        let metrics = tokio::runtime::Handle::current().metrics();
        let churn = |rounds: u32| {
            let (plugin_broker, host_broker) = (plugin_broker.clone(), client.broker().clone());
            async move {
                for _ in 0..rounds {
                    let id = plugin_broker.next_id();
                    let (_reporter, health) = tonic_health::server::health_reporter();
                    let server = within(plugin_broker.accept_and_serve(id, health))
                        .await
                        .expect("serve");
                    let channel = within(host_broker.dial(id)).await.expect("dial");
                    within(HealthClient::new(channel).check(HealthCheckRequest {
                        service: String::new(),
                    }))
                    .await
                    .expect("a call on the brokered connection");
                    server.stop();
                }
            }
        };
        // A warm-up round sets up what lives as long as the connection.
        churn(5).await;
        let settle = || tokio::time::sleep(Duration::from_millis(100));
        // The baseline once the warm-up has settled: unchanged for 1 s.
        let now = || (goplug_test::open_fds(), metrics.num_alive_tasks());
        let (mut baseline, mut unchanged, start) = (now(), 0, Instant::now());
        while unchanged < 10 && start.elapsed() < bound() {
            settle().await;
            let sample = now();
            unchanged = if sample == baseline { unchanged + 1 } else { 0 };
            baseline = (baseline.0.min(sample.0), baseline.1.min(sample.1));
        }
        let (fds, tasks) = baseline;
        churn(1_000).await;
        let start = Instant::now();
        loop {
            let (now_fds, now_tasks) = (goplug_test::open_fds(), metrics.num_alive_tasks());
            if now_fds <= fds && now_tasks <= tasks {
                break;
            }
            assert!(
                start.elapsed() < bound(),
                "fds {now_fds} (baseline {fds}), tasks {now_tasks} (baseline {tasks})"
            );
            settle().await;
        }
        assert!(within(client.shutdown()).await.graceful);
        drop(plugin_broker);
    });
}
