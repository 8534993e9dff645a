//! The CEF parser on arbitrary payloads: it must answer, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riposte_firewall::{cef, ParseOptions, RecordContext};

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = RecordContext::bare(payload);
    let _ = cef::parse(payload, &ctx, &ParseOptions::default());
});
