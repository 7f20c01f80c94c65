//! `yamux::frame::Header::decode` on 12-byte headers (the input is cut into
//! consecutive 12-byte pieces; a shorter tail is ignored).
//!
//! Invariants: no panic; a header that decodes encodes to the same 12 bytes
//! and decodes again to an equal value; `Debug`/`Display` never panic.

#![no_main]

use goplug::yamux::frame::{HEADER_LEN, Header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for chunk in data.chunks_exact(HEADER_LEN) {
        let bytes: &[u8; HEADER_LEN] = chunk.try_into().expect("chunks_exact");
        match Header::decode(bytes) {
            Ok(header) => {
                let encoded = header.encode();
                assert_eq!(&encoded, bytes, "{header:?} re-encoded differently");
                assert_eq!(Header::decode(&encoded), Ok(header));
                let _ = format!("{header:?} {:?}", header.flags);
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
});
