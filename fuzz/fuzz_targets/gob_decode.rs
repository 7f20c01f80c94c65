//! Arbitrary bytes into goplug's gob decoder: it must never panic, and what
//! it decodes must re-encode (see `goplug::netrpc::gob::fuzz_decode`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    goplug::netrpc::gob::fuzz_decode(data);
});
