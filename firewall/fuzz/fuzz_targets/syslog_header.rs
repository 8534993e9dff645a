//! The syslog header splitter on arbitrary text: it must answer, never
//! panic, and the payload it returns is a suffix of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riposte_firewall::syslog::split_header;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((_, payload)) = split_header(text) {
        assert!(text.ends_with(payload));
    }
});
