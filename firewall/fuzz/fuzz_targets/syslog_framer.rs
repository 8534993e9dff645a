//! The RFC 6587 framer on an arbitrary stream, fed in two chunks: it must
//! never panic, never return a frame over its limit, and never loop.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use riposte_firewall::syslog::Framer;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let cut = (split as usize).min(rest.len());
    let max = 512;
    let mut framer = Framer::new(max);
    let mut buf = BytesMut::new();
    for chunk in [&rest[..cut], &rest[cut..]] {
        buf.extend_from_slice(chunk);
        for _ in 0..=rest.len() {
            match framer.decode(&mut buf) {
                Ok(Some(frame)) => assert!(frame.len() <= max),
                Ok(None) => break,
                Err(e) if e.is_fatal() => return,
                Err(_) => {}
            }
        }
    }
    let _ = framer.decode_eof(&mut buf);
});
