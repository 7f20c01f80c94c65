//! `HandshakeLine::parse` on arbitrary text (invalid UTF-8 is converted
//! lossily, as a host reading a plugin's stdout would see it).
//!
//! Invariants: parsing never panics; a line that parses prints (`Display`)
//! to a line that parses to an equal value; `check` and `check_multiplex`
//! never panic, whatever the host offers.

#![no_main]

use goplug::handshake::{HandshakeLine, Protocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let line = match HandshakeLine::parse(&raw) {
        Ok(line) => line,
        Err(error) => {
            // Error texts quote the line: building them must not panic.
            let _ = error.to_string();
            return;
        }
    };

    let printed = line.to_string();
    let again = HandshakeLine::parse(&printed).unwrap_or_else(|error| {
        panic!("{raw:?} parsed, but its printed form {printed:?} did not: {error}")
    });
    assert_eq!(
        again, line,
        "{raw:?} -> {printed:?} parsed to a different line"
    );

    let offers: [&[u32]; 3] = [&[], &[line.app_version], &[1, 2, 3, u32::MAX]];
    let protocols: [&[Protocol]; 3] = [&[], &[Protocol::Grpc], &[Protocol::Grpc, Protocol::NetRpc]];
    for offered in offers {
        for allowed in protocols {
            for expects_cert in [false, true] {
                if let Err(error) = line.check(offered, allowed, expects_cert) {
                    let _ = error.to_string();
                }
            }
        }
    }
    if let Err(error) = line.check_multiplex() {
        let _ = error.to_string();
    }
});
