//! The PAN-OS CSV parser on arbitrary payloads, in UTC and in a zone with
//! daylight saving: it must answer, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riposte_firewall::{panos, ParseOptions, RecordContext};

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = RecordContext {
        original: payload,
        hostname: Some("fuzz-fw"),
        header_time: None,
    };
    let _ = panos::looks_like_csv(payload);
    for timezone in [chrono_tz::Tz::UTC, chrono_tz::Tz::Europe__Berlin] {
        let opts = ParseOptions {
            timezone,
            ..ParseOptions::default()
        };
        let _ = panos::parse(payload, &ctx, &opts);
    }
});
