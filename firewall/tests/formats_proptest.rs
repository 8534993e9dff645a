//! Property tests: whatever the bytes, the header splitter, the CEF, LEEF
//! and EVE parsers and the stream framer return instead of panicking, and
//! the framer gives the same records however the stream is cut.

use bytes::BytesMut;
use proptest::prelude::*;
use riposte_firewall::syslog::{frame_pieces, split_header, FrameError, Framer};
use riposte_firewall::{cef, eve, leef, ParseOptions, Parsed, RecordContext};

fn ctx(original: &str) -> RecordContext<'_> {
    RecordContext::bare(original)
}

/// Runs every parser on `text`; only a panic fails.
fn parse_all(text: &str) {
    let opts = ParseOptions::default();
    let _ = split_header(text);
    for parser in [cef::parse, leef::parse, eve::parse] {
        if let Ok(Parsed::Event(ev)) = parser(text, &ctx(text), &opts) {
            assert_eq!(&*ev.original, text);
        }
    }
}

/// Text that looks enough like each format to reach its deeper paths.
fn near_miss() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just(""),
        Just("<14>"),
        Just("<14>1 2024-06-15T10:00:00Z host app - - "),
        Just("<14>1 2024-06-15T10:00:00Z host app - - [sd a=\""),
        Just("<13> Jun  15 10:00:00 "),
        Just("Feb  22 21:32:20 pa-fw-2 "),
        Just("2023-07-06T08:11:40+02:00 host "),
        Just("CEF:0|Palo Alto Networks|PAN-OS|10.1|spyware|THREAT|8|"),
        Just("CEF:0|Palo Alto Networks|LF|2.0|TRAFFIC|end|1|rt="),
        Just("LEEF:1.0|Palo Alto Networks|PAN-OS Syslog Integration|11.1|allow|cat=TRAFFIC|"),
        Just("LEEF:2.0|Palo Alto Networks|PAN-OS|11.1|x(1)|x"),
        Just("{\"event_type\":\"alert\",\"timestamp\":\"2024-06-15T10:00:00+0000\","),
        Just("{\"event_type\":\"drop\",\"alert\":{"),
    ];
    let tail = prop_oneof![
        ".{0,200}",
        "([a-zA-Z]{1,8}=[ a-z0-9.:/\\\\=|\"]{0,12}[ |\t]){0,12}",
        "[\\[\\]{}\":,0-9a-z\\\\ ]{0,120}",
    ];
    (prefix, tail).prop_map(|(p, t)| format!("{p}{t}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic_on_arbitrary_text(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        parse_all(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parsers_never_panic_on_near_misses(text in near_miss()) {
        parse_all(&text);
    }

    #[test]
    fn header_split_returns_a_suffix_of_the_record(text in near_miss()) {
        if let Ok((_, payload)) = split_header(&text) {
            prop_assert!(text.ends_with(payload));
        }
    }

    #[test]
    fn bsd_headers_strip_to_the_exact_payload(
        pri in proptest::option::of(0u8..=191),
        month in prop::sample::select(vec!["Jan", "Feb", "Mar", "Jul", "Sep", "Dec"]),
        day in 1u32..=28,
        pad in prop::bool::ANY,
        host in proptest::option::of("[a-z][a-z0-9-]{0,12}(\\.[a-z]{2,5}){0,2}"),
        payload in "1,20[0-9]{2}/[0-9]{2}/[0-9]{2} [0-9:]{8},[^\n]{0,60}",
    ) {
        let pri = pri.map(|p| format!("<{p}>")).unwrap_or_default();
        let day = if pad && day < 10 { format!(" {day}") } else { day.to_string() };
        let host_part = host.as_deref().map(|h| format!("{h} ")).unwrap_or_default();
        let line = format!("{pri}{month} {day} 12:34:56 {host_part}{payload}");
        let (header, got) = split_header(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, payload.as_str());
        prop_assert_eq!(header.hostname, host.as_deref());
        prop_assert!(header.timestamp.is_some());
    }
}

type Out = Vec<Result<Vec<u8>, FrameError>>;

/// The framer's records and errors for the stream cut into `pieces`.
fn frame(max: usize, pieces: &[&[u8]]) -> Out {
    frame_pieces(max, pieces.iter().copied())
        .into_iter()
        .map(|r| r.map(|f| f.to_vec()))
        .collect()
}

/// Streams made of the bytes that matter to framing.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"0123456789".to_vec()),
        3 => Just(b' '),
        2 => Just(b'\n'),
        1 => Just(b'\r'),
        1 => Just(b'\0'),
        3 => prop::sample::select(b"<>a,-T:|{".to_vec()),
        1 => any::<u8>(),
    ];
    proptest::collection::vec(byte, 0..300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn framing_does_not_depend_on_how_the_stream_is_cut(
        input in stream(),
        max in 1usize..40,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let whole = frame(max, &[&input]);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut last = 0;
        for p in points {
            pieces.push(&input[last..p]);
            last = p;
        }
        pieces.push(&input[last..]);
        prop_assert_eq!(&frame(max, &pieces), &whole);
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(&frame(max, &bytewise), &whole);
        for record in whole.iter().flatten() {
            prop_assert!(!record.is_empty() && record.len() <= max);
        }
    }

    #[test]
    fn framer_buffer_stays_bounded(input in proptest::collection::vec(any::<u8>(), 0..2000), max in 1usize..64) {
        let mut framer = Framer::new(max);
        let mut buf = BytesMut::new();
        for piece in input.chunks(7) {
            buf.extend_from_slice(piece);
            loop {
                match framer.decode(&mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) if e.is_fatal() => return Ok(()),
                    Err(_) => {}
                }
            }
            // Waiting for a counted frame may hold up to `max` bytes plus
            // the count; a line in progress at most `max` (+1 for a CR).
            prop_assert!(buf.len() <= max + 12, "buffered {} with max {}", buf.len(), max);
        }
    }
}
