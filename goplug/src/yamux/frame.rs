//! The yamux frame header: a pure codec, no I/O.
//!
//! Every yamux frame starts with the same 12 bytes, all fields big-endian:
//!
//! ```text
//!  0        1        2        4            8            12
//! +--------+--------+--------+------------+------------+
//! |version |  type  | flags  | stream id  |   length   |
//! |  u8=0  |   u8   |  u16   |    u32     |    u32     |
//! +--------+--------+--------+------------+------------+
//! ```
//!
//! `length` means "payload bytes that follow" for [`FrameType::Data`], "window
//! delta" for [`FrameType::WindowUpdate`], "opaque value" for
//! [`FrameType::Ping`] and "error code" for [`FrameType::GoAway`]. Only data
//! frames carry a payload.

use std::fmt;

/// Size of a frame header on the wire.
pub const HEADER_LEN: usize = 12;

/// The only protocol version there is.
pub const VERSION: u8 = 0;

/// The receive window every stream starts with; both sides assume it until
/// a window update says otherwise.
pub const INITIAL_WINDOW: u32 = 256 * 1024;

/// GoAway code: normal termination.
pub const GO_AWAY_NORMAL: u32 = 0;
/// GoAway code: the peer violated the protocol.
pub const GO_AWAY_PROTOCOL_ERROR: u32 = 1;
/// GoAway code: internal error.
pub const GO_AWAY_INTERNAL_ERROR: u32 = 2;

/// What a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// Stream data; `length` payload bytes follow the header.
    Data = 0,
    /// Adds `length` bytes to the stream's send window.
    WindowUpdate = 1,
    /// Keepalive / RTT probe; `length` is an opaque value echoed back.
    Ping = 2,
    /// Session termination; `length` is the error code.
    GoAway = 3,
}

impl FrameType {
    fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Data,
            1 => Self::WindowUpdate,
            2 => Self::Ping,
            3 => Self::GoAway,
            _ => return None,
        })
    }
}

/// The flag bits of a frame header.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u16);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);
    /// Opens a stream; on a ping, marks the request.
    pub const SYN: Flags = Flags(1);
    /// Acknowledges a stream; on a ping, marks the reply.
    pub const ACK: Flags = Flags(2);
    /// Half-closes a stream: the sender sends no more data.
    pub const FIN: Flags = Flags(4);
    /// Resets a stream immediately.
    pub const RST: Flags = Flags(8);
    /// Every bit the protocol defines.
    pub const ALL: Flags = Flags(0xf);

    /// The raw bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("NONE");
        }
        let mut first = true;
        for (flag, name) in [
            (Flags::SYN, "SYN"),
            (Flags::ACK, "ACK"),
            (Flags::FIN, "FIN"),
            (Flags::RST, "RST"),
        ] {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        let unknown = self.0 & !Flags::ALL.0;
        if unknown != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{unknown:#x}")?;
        }
        Ok(())
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// What the frame is.
    pub kind: FrameType,
    /// Its flags.
    pub flags: Flags,
    /// The stream it belongs to; 0 for the session (pings, GoAway).
    pub stream_id: u32,
    /// Payload length, window delta, ping value or GoAway code, by `kind`.
    pub length: u32,
}

/// A frame header that is not valid yamux.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The version byte is not 0.
    #[error("unsupported yamux version {0} (only version 0 exists)")]
    Version(u8),
    /// The type byte is not one of the four frame types.
    #[error("unknown yamux frame type {0}")]
    Type(u8),
    /// Flag bits outside SYN, ACK, FIN and RST are set.
    #[error("unknown yamux flags {0:#06x}")]
    Flags(u16),
}

impl Header {
    /// A data frame header announcing `len` payload bytes.
    pub const fn data(stream_id: u32, flags: Flags, len: u32) -> Header {
        Header {
            kind: FrameType::Data,
            flags,
            stream_id,
            length: len,
        }
    }

    /// A window update adding `delta` to the peer's send window.
    pub const fn window_update(stream_id: u32, flags: Flags, delta: u32) -> Header {
        Header {
            kind: FrameType::WindowUpdate,
            flags,
            stream_id,
            length: delta,
        }
    }

    /// A ping request (`SYN`) or reply (`ACK`) carrying `opaque`.
    pub const fn ping(flags: Flags, opaque: u32) -> Header {
        Header {
            kind: FrameType::Ping,
            flags,
            stream_id: 0,
            length: opaque,
        }
    }

    /// A GoAway with error `code`.
    pub const fn go_away(code: u32) -> Header {
        Header {
            kind: FrameType::GoAway,
            flags: Flags::NONE,
            stream_id: 0,
            length: code,
        }
    }

    /// Decodes a header; never panics.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Header, FrameError> {
        let [version, kind, f0, f1, s0, s1, s2, s3, l0, l1, l2, l3] = *bytes;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let kind = FrameType::from_u8(kind).ok_or(FrameError::Type(kind))?;
        let flags = u16::from_be_bytes([f0, f1]);
        if flags & !Flags::ALL.0 != 0 {
            return Err(FrameError::Flags(flags));
        }
        Ok(Header {
            kind,
            flags: Flags(flags),
            stream_id: u32::from_be_bytes([s0, s1, s2, s3]),
            length: u32::from_be_bytes([l0, l1, l2, l3]),
        })
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        out[0] = VERSION;
        out[1] = self.kind as u8;
        out[2..4].copy_from_slice(&self.flags.0.to_be_bytes());
        out[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        out[8..12].copy_from_slice(&self.length.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_headers_round_trip() {
        let cases: &[([u8; 12], Header)] = &[
            (
                [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5],
                Header::data(1, Flags::NONE, 5),
            ),
            (
                [0, 1, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0],
                Header::window_update(3, Flags::SYN, 0),
            ),
            (
                [0, 1, 0, 2, 0, 0, 0, 2, 0, 4, 0, 0],
                Header::window_update(2, Flags::ACK, 256 * 1024),
            ),
            (
                [0, 0, 0, 4, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff],
                Header::data(u32::MAX - 1, Flags::FIN, u32::MAX),
            ),
            (
                [0, 1, 0, 8, 0, 0, 1, 0, 0, 0, 0, 0],
                Header::window_update(256, Flags::RST, 0),
            ),
            (
                [0, 1, 0, 0x0f, 0, 0, 0, 7, 0, 0, 0, 0],
                Header::window_update(7, Flags::ALL, 0),
            ),
            (
                [0, 2, 0, 1, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78],
                Header::ping(Flags::SYN, 0x1234_5678),
            ),
            (
                [0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9],
                Header::ping(Flags::ACK, 9),
            ),
            ([0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], Header::go_away(1)),
        ];
        for (bytes, header) in cases {
            assert_eq!(Header::decode(bytes), Ok(*header), "{bytes:?}");
            assert_eq!(&header.encode(), bytes, "{header:?}");
        }
    }

    #[test]
    fn invalid_headers_name_the_problem() {
        let cases: &[([u8; 12], FrameError, &str)] = &[
            (
                [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
                FrameError::Version(1),
                "unsupported yamux version 1",
            ),
            (
                [0xff, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
                FrameError::Version(255),
                "version 255",
            ),
            (
                [0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
                FrameError::Type(4),
                "unknown yamux frame type 4",
            ),
            (
                [0, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
                FrameError::Type(255),
                "frame type 255",
            ),
            (
                [0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0],
                FrameError::Flags(0x10),
                "unknown yamux flags 0x0010",
            ),
            (
                [0, 1, 0x80, 0x01, 0, 0, 0, 1, 0, 0, 0, 0],
                FrameError::Flags(0x8001),
                "0x8001",
            ),
        ];
        for (bytes, error, text) in cases {
            assert_eq!(Header::decode(bytes), Err(*error), "{bytes:?}");
            assert!(error.to_string().contains(text), "{error}");
        }
    }

    #[test]
    fn decode_never_panics_and_encode_inverts_it() {
        // A cheap exhaustive sweep over the first four bytes (the ones with
        // validation), with the id and length bytes varying too.
        for version in [0u8, 1, 255] {
            for kind in 0..=255u8 {
                for flags in [0u16, 1, 0xf, 0x10, 0xffff] {
                    let [f0, f1] = flags.to_be_bytes();
                    let bytes = [version, kind, f0, f1, kind, 2, 3, 4, 5, 6, 7, kind];
                    if let Ok(header) = Header::decode(&bytes) {
                        assert_eq!(header.encode(), bytes);
                    }
                }
            }
        }
    }

    #[test]
    fn flags_debug_lists_names() {
        assert_eq!(format!("{:?}", Flags::SYN | Flags::FIN), "SYN|FIN");
        assert_eq!(format!("{:?}", Flags::NONE), "NONE");
    }
}
