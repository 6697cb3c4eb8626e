//! The police-json decoder on arbitrary bytes: never a panic, and what decodes keeps the round trip
//! (`jxg_adapters::fuzzing::round_trip`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    jxg_adapters::fuzzing::round_trip("police-json", data);
});
