//! `ReattachConfig::from_json` and `map_from_json` (what a host reads from
//! an environment variable such as `TF_REATTACH_PROVIDERS`) on arbitrary
//! text.
//!
//! Invariants: no panic; whatever parses survives `to_json` /
//! `map_to_json` and parses back to an equal value.

#![no_main]

use goplug::reattach::{MAX_REATTACH_JSON, ReattachConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    match ReattachConfig::from_json(&text) {
        Ok(config) => {
            let json = config.to_json();
            let again = ReattachConfig::from_json(&json).unwrap_or_else(|error| {
                panic!("{text:?} parsed, but its to_json {json:?} did not: {error}")
            });
            assert_eq!(again, config, "{text:?} -> {json:?}");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }

    match ReattachConfig::map_from_json(&text) {
        Ok(map) => {
            let json = ReattachConfig::map_to_json(map.iter().map(|(name, c)| (name.as_str(), c)));
            // Defaults (`"Protocol":""`, a missing `"Test"`) print longer than
            // they were read, so a map near the size cap may not fit back.
            if json.len() <= MAX_REATTACH_JSON {
                let again = ReattachConfig::map_from_json(&json).unwrap_or_else(|error| {
                    panic!("{text:?} parsed, but its map_to_json {json:?} did not: {error}")
                });
                assert_eq!(again, map, "{text:?} -> {json:?}");
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
