//! A raw HTTP/2 frame writer and reader for abuse tests (`research/
//! reliability.md` §2.2): the client preface, hand-built frames and HPACK
//! blocks (static-table indices and literals without indexing, no Huffman),
//! and a reader that parses what the server answers. Deliberately able to
//! send what a real client never would.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What every HTTP/2 client sends first.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The size of a frame header.
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's default: larger frames need the peer's consent.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16_384;

/// Frame types (RFC 9113 §6).
#[allow(missing_docs)]
pub mod kind {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
    pub const CONTINUATION: u8 = 9;
}

/// Frame flags.
#[allow(missing_docs)]
pub mod flag {
    pub const NONE: u8 = 0;
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
}

/// Error codes of RST_STREAM and GOAWAY.
#[allow(missing_docs)]
pub mod code {
    pub const NO_ERROR: u32 = 0;
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const FRAME_SIZE_ERROR: u32 = 6;
    pub const REFUSED_STREAM: u32 = 7;
    pub const CANCEL: u32 = 8;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// SETTINGS_MAX_CONCURRENT_STREAMS.
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 3;

/// One frame, in either direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Its type ([`kind`]).
    pub kind: u8,
    /// Its flags ([`flag`]).
    pub flags: u8,
    /// Its stream id (31 bits).
    pub stream: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A GOAWAY frame's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    /// The last stream the sender processed.
    pub last_stream: u32,
    /// The error code ([`code`]).
    pub code: u32,
    /// The debug data, as text.
    pub debug: String,
}

impl Frame {
    /// A frame of any type.
    pub fn new(kind: u8, flags: u8, stream: u32, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            kind,
            flags,
            stream,
            payload: payload.into(),
        }
    }

    /// SETTINGS with these (id, value) pairs.
    pub fn settings(pairs: &[(u16, u32)]) -> Self {
        let payload = pairs
            .iter()
            .flat_map(|(id, value)| [&id.to_be_bytes()[..], &value.to_be_bytes()[..]].concat())
            .collect::<Vec<u8>>();
        Self::new(kind::SETTINGS, flag::NONE, 0, payload)
    }

    /// HEADERS carrying `block`.
    pub fn headers(stream: u32, flags: u8, block: &[u8]) -> Self {
        Self::new(kind::HEADERS, flags, stream, block)
    }

    /// CONTINUATION carrying more of a header block.
    pub fn continuation(stream: u32, flags: u8, block: &[u8]) -> Self {
        Self::new(kind::CONTINUATION, flags, stream, block)
    }

    /// DATA.
    pub fn data(stream: u32, flags: u8, bytes: &[u8]) -> Self {
        Self::new(kind::DATA, flags, stream, bytes)
    }

    /// RST_STREAM with an error code.
    pub fn rst_stream(stream: u32, error: u32) -> Self {
        Self::new(kind::RST_STREAM, flag::NONE, stream, error.to_be_bytes())
    }

    /// WINDOW_UPDATE.
    pub fn window_update(stream: u32, increment: u32) -> Self {
        Self::new(
            kind::WINDOW_UPDATE,
            flag::NONE,
            stream,
            increment.to_be_bytes(),
        )
    }

    /// PING with 8 bytes of opaque data.
    pub fn ping(ack: bool, data: [u8; 8]) -> Self {
        let flags = if ack { flag::ACK } else { flag::NONE };
        Self::new(kind::PING, flags, 0, data)
    }

    /// The frame on the wire. The length is the payload's, even past what
    /// the peer allows (that is the point of some tests); only payloads
    /// beyond 24 bits are cut to fit the field.
    pub fn encode(&self) -> Vec<u8> {
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX) & 0x00ff_ffff;
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&(self.stream & 0x7fff_ffff).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// The first frame in `buf` and the bytes it took, or `None` when `buf`
    /// does not hold a whole frame yet.
    pub fn decode(buf: &[u8]) -> Option<(Self, usize)> {
        let header = buf.get(..HEADER_LEN)?;
        let len =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let payload = buf.get(HEADER_LEN..HEADER_LEN + len)?;
        let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        Some((
            Self::new(header[3], header[4], stream, payload),
            HEADER_LEN + len,
        ))
    }

    /// A SETTINGS frame's (id, value) pairs; empty for other frames.
    pub fn settings_pairs(&self) -> Vec<(u16, u32)> {
        if self.kind != kind::SETTINGS {
            return Vec::new();
        }
        self.payload
            .chunks_exact(6)
            .map(|p| {
                (
                    u16::from_be_bytes([p[0], p[1]]),
                    u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
                )
            })
            .collect()
    }

    /// A GOAWAY frame's content.
    pub fn go_away(&self) -> Option<GoAway> {
        if self.kind != kind::GOAWAY {
            return None;
        }
        let word = |at: usize| {
            let b = self.payload.get(at..at + 4)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        Some(GoAway {
            last_stream: word(0)? & 0x7fff_ffff,
            code: word(4)?,
            debug: String::from_utf8_lossy(self.payload.get(8..)?).into_owned(),
        })
    }

    /// An RST_STREAM frame's error code.
    pub fn rst_code(&self) -> Option<u32> {
        let b = self
            .payload
            .get(..4)
            .filter(|_| self.kind == kind::RST_STREAM)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// An HPACK header block built by hand: static-table indices and literals
/// without indexing (so the server's dynamic table never changes).
#[derive(Clone, Debug, Default)]
pub struct HeaderBlock(Vec<u8>);

impl HeaderBlock {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// A field of the static table by index (`2` is `:method GET`).
    pub fn indexed(mut self, index: u64) -> Self {
        put_int(&mut self.0, 7, 0x80, index);
        self
    }

    /// A literal value for a static-table name (`4` is `:path`).
    pub fn literal_value(mut self, name_index: u64, value: &[u8]) -> Self {
        put_int(&mut self.0, 4, 0x00, name_index);
        put_str(&mut self.0, value);
        self
    }

    /// A literal name and value.
    pub fn literal(mut self, name: &str, value: &[u8]) -> Self {
        self.0.push(0x00);
        put_str(&mut self.0, name.as_bytes());
        put_str(&mut self.0, value);
        self
    }

    /// The request headers of a gRPC call to `path`, as is or malformed.
    pub fn grpc_request(path: &[u8]) -> Self {
        Self::new()
            .indexed(3) // :method POST
            .indexed(6) // :scheme http
            .literal_value(4, path) // :path
            .literal_value(1, b"localhost") // :authority
            .literal("content-type", b"application/grpc")
            .literal("te", b"trailers")
    }

    /// The encoded block.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// An HPACK integer with an `prefix`-bit prefix, OR-ed into `first`.
fn put_int(out: &mut Vec<u8>, prefix: u32, first: u8, value: u64) {
    let max = (1u64 << prefix) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// An HPACK string literal without Huffman coding.
fn put_str(out: &mut Vec<u8>, value: &[u8]) {
    put_int(out, 7, 0x00, value.len() as u64);
    out.extend_from_slice(value);
}

/// A gRPC length-prefixed message (not compressed).
pub fn grpc_message(message: &[u8]) -> Vec<u8> {
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    [&[0][..], &len.to_be_bytes(), message].concat()
}

/// Writes frames in one go (errors ignored: an abused server may hang up
/// half-way, which is what a test then checks). Returns whether all of
/// them went out.
pub async fn write_frames<W: AsyncWrite + Unpin>(writer: &mut W, frames: &[Frame]) -> bool {
    let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
    writer.write_all(&bytes).await.is_ok() && writer.flush().await.is_ok()
}

/// The client preface and an empty SETTINGS frame.
pub fn client_preface() -> Vec<u8> {
    [PREFACE, &Frame::settings(&[]).encode()].concat()
}

/// Reads frames off a connection.
#[derive(Debug)]
pub struct FrameReader<R> {
    reader: R,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader over `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::new(),
        }
    }

    /// The next frame; `None` at end of stream or on a read error (a reset
    /// connection is a closed one for these tests).
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = Frame::decode(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Frames until `stop` matches one (included), the connection ends or
    /// `within` passes; and whether the connection ended.
    pub async fn until(
        &mut self,
        within: Duration,
        mut stop: impl FnMut(&Frame) -> bool,
    ) -> (Vec<Frame>, bool) {
        let mut frames = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(frame)) => {
                    let done = stop(&frame);
                    frames.push(frame);
                    if done {
                        return (frames, false);
                    }
                }
                Ok(None) => return (frames, true),
                Err(_) => return (frames, false),
            }
        }
    }
}

/// The first GOAWAY among `frames`.
pub fn first_go_away(frames: &[Frame]) -> Option<GoAway> {
    frames.iter().find_map(Frame::go_away)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let frames = [
            Frame::settings(&[(SETTINGS_MAX_CONCURRENT_STREAMS, 128), (4, 65_535)]),
            Frame::headers(1, flag::END_HEADERS, HeaderBlock::new().indexed(2).bytes()),
            Frame::data(3, flag::END_STREAM, b"hello"),
            Frame::rst_stream(5, code::CANCEL),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let mut rest = &wire[..];
        for expected in &frames {
            let (frame, used) = Frame::decode(rest).expect("a whole frame");
            assert_eq!(&frame, expected);
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
        assert_eq!(frames[0].settings_pairs(), [(3, 128), (4, 65_535)]);
        assert_eq!(frames[3].rst_code(), Some(code::CANCEL));
    }

    #[test]
    fn a_partial_frame_is_not_decoded() {
        let wire = Frame::data(1, flag::NONE, b"abc").encode();
        assert!(Frame::decode(&wire[..wire.len() - 1]).is_none());
        assert!(Frame::decode(&wire[..4]).is_none());
    }

    #[test]
    fn go_away_is_parsed() {
        let payload = [&7u32.to_be_bytes()[..], &11u32.to_be_bytes(), b"calm"].concat();
        let go_away = Frame::new(kind::GOAWAY, 0, 0, payload).go_away();
        assert_eq!(
            go_away,
            Some(GoAway {
                last_stream: 7,
                code: code::ENHANCE_YOUR_CALM,
                debug: "calm".to_owned()
            })
        );
        assert_eq!(Frame::ping(false, [0; 8]).go_away(), None);
    }

    #[test]
    fn hpack_integers_and_literals_follow_rfc_7541() {
        // RFC 7541 C.1.2: 1337 with a 5-bit prefix.
        let mut out = Vec::new();
        put_int(&mut out, 5, 0, 1337);
        assert_eq!(out, [31, 154, 10]);
        // C.2.2: literal without indexing, `:path /sample/path`.
        let block = HeaderBlock::new().literal_value(4, b"/sample/path");
        assert_eq!(block.bytes()[..2], [0x04, 0x0c]);
        assert_eq!(&block.bytes()[2..], b"/sample/path");
        assert_eq!(HeaderBlock::new().indexed(2).bytes(), [0x82]);
        assert_eq!(grpc_message(b"ab"), [0, 0, 0, 0, 2, b'a', b'b']);
    }
}
