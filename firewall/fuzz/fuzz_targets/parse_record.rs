//! The public entry point on arbitrary bytes: header stripping, format
//! detection and every parser behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riposte_firewall::{parse_record, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let _ = parse_record(data, &ParseOptions::default());
});
