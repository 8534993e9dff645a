//! RFC 6587 stream framing: turns a TCP/TLS byte stream into records.
//!
//! Pure: the engine owns the socket and the buffer, feeds bytes in and asks
//! for records. Each record is detected on its own, so one stream may mix
//! both framings:
//! - octet counting, `<len> <msg>`, when the frame starts with a non-zero
//!   digit, more digits, then a space (a bare PAN-OS CSV row starts `1,` and
//!   an SLS row `2024-`, so neither is taken for a count);
//! - non-transparent framing, one record per line, ended by LF, CRLF or NUL.
//!
//! Memory stays bounded by `max_frame`: an oversized line is discarded as it
//! arrives until its end, an oversized counted frame is skipped octet by
//! octet, and either is reported once as [`FrameError::TooLong`]. A count too
//! large to be anything but a desynchronized stream is fatal.

use std::ops::ControlFlow;

use bytes::{Buf, Bytes, BytesMut};

/// Why a frame could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A record over the limit was skipped; the next one is read normally.
    #[error("{}", too_long_message(*.counted, *.max))]
    TooLong {
        /// The announced size of an octet-counted frame; `None` for a line,
        /// whose size is not known when it is cut off.
        counted: Option<usize>,
        max: usize,
    },
    /// An octet count no sender would announce: the stream is out of step
    /// and cannot be resynchronized. Close the connection.
    #[error("octet count `{digits}` is not a usable frame length (limit {max} bytes); the stream is out of step")]
    BadOctetCount { digits: String, max: usize },
    /// The stream ended inside an octet-counted frame.
    #[error("stream ended {received} bytes into a {expected}-byte frame")]
    Truncated { expected: usize, received: usize },
}

fn too_long_message(counted: Option<usize>, max: usize) -> String {
    match counted {
        Some(len) => format!("frame of {len} bytes is over the {max}-byte limit; skipped"),
        None => format!("line is over the {max}-byte limit; skipped to its end"),
    }
}

impl FrameError {
    /// True when the connection must be closed; false when the decoder has
    /// already skipped the bad record and reading may go on.
    pub fn is_fatal(&self) -> bool {
        matches!(self, FrameError::BadOctetCount { .. })
    }

    /// A short, fixed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::TooLong { .. } => "frame_too_long",
            FrameError::BadOctetCount { .. } => "bad_octet_count",
            FrameError::Truncated { .. } => "truncated_frame",
        }
    }
}

/// Counts longer than this many digits are never taken for a length.
const MAX_COUNT_DIGITS: usize = 10;

/// Counted frames over the limit are skipped, not fatal, up to this many
/// times the limit: beyond it the "count" is far more likely a desynchronized
/// stream than a real message.
const SKIP_FACTOR: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records. `scanned` bytes of the buffer are known to be
    /// digits of a possible octet count.
    Start { scanned: usize },
    /// Reading a line; `scanned` bytes hold no terminator.
    Line { scanned: usize },
    /// Reading the body of a counted frame.
    Counted { len: usize },
    /// Discarding an oversized line up to its terminator.
    SkipLine,
    /// Discarding the rest of an oversized counted frame.
    SkipCounted { remaining: usize },
    /// The stream was found out of step; nothing more is decoded.
    Failed,
}

/// What one state of the decoder did: `Continue` to the next state, or
/// `Break` with what [`Framer::decode`] returns.
type Step = ControlFlow<Result<Option<Bytes>, FrameError>>;

/// Incremental RFC 6587 decoder. Feed it the connection's buffer; it takes
/// whole records from the front and leaves partial ones in place.
#[derive(Debug, Clone)]
pub struct Framer {
    max_frame: usize,
    state: State,
}

impl Framer {
    /// `max_frame`: the longest record accepted, in bytes (terminator
    /// excluded).
    pub fn new(max_frame: usize) -> Framer {
        Framer {
            max_frame: max_frame.max(1),
            state: State::Start { scanned: 0 },
        }
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Takes the next whole record from the front of `buf`, or returns
    /// `Ok(None)` when more bytes are needed. Empty lines are skipped.
    ///
    /// After [`FrameError::TooLong`] or [`FrameError::Truncated`] call again
    /// to go on; after a fatal error every call fails the same way.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        loop {
            let step = match self.state {
                State::Failed => return Err(self.failed()),
                State::Start { scanned } => self.start(buf, scanned),
                State::Counted { len } => self.counted(buf, len),
                State::Line { scanned } => self.line(buf, scanned),
                State::SkipLine => self.skip_line(buf),
                State::SkipCounted { remaining } => self.skip_counted(buf, remaining),
            };
            if let ControlFlow::Break(out) = step {
                return out;
            }
        }
    }

    /// Between records: skips empty lines, then tells an octet count from
    /// the start of a line.
    fn start(&mut self, buf: &mut BytesMut, scanned: usize) -> Step {
        let skip = buf
            .iter()
            .take_while(|&&c| matches!(c, b'\n' | b'\r' | b'\0'))
            .count();
        if skip > 0 {
            buf.advance(skip);
            self.state = State::Start { scanned: 0 };
            return ControlFlow::Continue(());
        }
        match buf.first() {
            None => return ControlFlow::Break(Ok(None)),
            Some(b'1'..=b'9') => {}
            // Most records are lines: read this one now rather than by
            // another turn of decode's loop.
            Some(_) => return self.line(buf, 0),
        }
        let digits = scanned
            + buf[scanned..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
        if digits > self.max_frame {
            // More digits than a frame may hold: whatever follows, this is
            // an oversized line, and deciding so before the next byte
            // arrives keeps memory bounded.
            self.state = State::Line { scanned: digits };
            return ControlFlow::Continue(());
        }
        match buf.get(digits) {
            None => {
                self.state = State::Start { scanned: digits };
                ControlFlow::Break(Ok(None))
            }
            Some(b' ') => {
                let len = match self.octet_count(&buf[..digits]) {
                    Ok(len) => len,
                    Err(e) => return ControlFlow::Break(Err(e)),
                };
                buf.advance(digits + 1);
                if len > self.max_frame {
                    self.state = State::SkipCounted { remaining: len };
                    return ControlFlow::Break(Err(FrameError::TooLong {
                        counted: Some(len),
                        max: self.max_frame,
                    }));
                }
                self.counted(buf, len)
            }
            Some(_) => self.line(buf, digits),
        }
    }

    /// The body of a counted frame, once all of it is in.
    // `line` and `counted` are reached from `start` as well as from their
    // own states: always inlined, the split of `decode` by state costs no
    // call per record (the framer bench).
    #[inline(always)]
    fn counted(&mut self, buf: &mut BytesMut, len: usize) -> Step {
        if buf.len() < len {
            self.state = State::Counted { len };
            // Room for the body now rather than one growth per read.
            buf.reserve(len - buf.len());
            return ControlFlow::Break(Ok(None));
        }
        self.state = State::Start { scanned: 0 };
        ControlFlow::Break(Ok(Some(buf.split_to(len).freeze())))
    }

    /// A line up to its terminator; `scanned` bytes are known to hold none.
    #[inline(always)]
    fn line(&mut self, buf: &mut BytesMut, scanned: usize) -> Step {
        let Some(i) = memchr::memchr2(b'\n', b'\0', &buf[scanned..]) else {
            // A trailing CR may be the first half of CRLF: it does not count
            // against the limit yet.
            let pending = buf.len() - usize::from(buf.last() == Some(&b'\r'));
            if pending > self.max_frame {
                buf.clear();
                self.state = State::SkipLine;
                return ControlFlow::Break(Err(FrameError::TooLong {
                    counted: None,
                    max: self.max_frame,
                }));
            }
            self.state = State::Line { scanned: buf.len() };
            return ControlFlow::Break(Ok(None));
        };
        let end = scanned + i;
        let mut line = buf.split_to(end + 1);
        let mut len = end;
        if len > 0 && line[len - 1] == b'\r' {
            len -= 1;
        }
        self.state = State::Start { scanned: 0 };
        if len > self.max_frame {
            return ControlFlow::Break(Err(FrameError::TooLong {
                counted: None,
                max: self.max_frame,
            }));
        }
        if len == 0 {
            return ControlFlow::Continue(());
        }
        line.truncate(len);
        ControlFlow::Break(Ok(Some(line.freeze())))
    }

    /// Discards an oversized line up to its terminator.
    fn skip_line(&mut self, buf: &mut BytesMut) -> Step {
        match memchr::memchr2(b'\n', b'\0', buf) {
            Some(i) => {
                buf.advance(i + 1);
                self.state = State::Start { scanned: 0 };
                ControlFlow::Continue(())
            }
            None => {
                buf.clear();
                ControlFlow::Break(Ok(None))
            }
        }
    }

    /// Discards the rest of an oversized counted frame.
    fn skip_counted(&mut self, buf: &mut BytesMut, remaining: usize) -> Step {
        let n = remaining.min(buf.len());
        buf.advance(n);
        if n < remaining {
            self.state = State::SkipCounted {
                remaining: remaining - n,
            };
            return ControlFlow::Break(Ok(None));
        }
        self.state = State::Start { scanned: 0 };
        ControlFlow::Continue(())
    }

    /// Like [`decode`](Self::decode), for when the stream has ended: the last
    /// line may lack its terminator and is returned as a record; a counted
    /// frame cut short is reported as [`FrameError::Truncated`]. Call until it
    /// returns `Ok(None)`.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        match self.state {
            State::Start { .. } | State::Line { .. } => {
                let mut len = buf.len();
                while len > 0 && matches!(buf[len - 1], b'\r' | b'\n' | b'\0') {
                    len -= 1;
                }
                let mut rest = buf.split();
                self.state = State::Start { scanned: 0 };
                if len == 0 {
                    return Ok(None);
                }
                if len > self.max_frame {
                    return Err(FrameError::TooLong {
                        counted: None,
                        max: self.max_frame,
                    });
                }
                rest.truncate(len);
                Ok(Some(rest.freeze()))
            }
            State::Counted { len } => {
                let received = buf.len();
                buf.clear();
                self.state = State::Start { scanned: 0 };
                Err(FrameError::Truncated {
                    expected: len,
                    received,
                })
            }
            // The oversized record was already reported.
            State::SkipLine | State::SkipCounted { .. } => {
                buf.clear();
                self.state = State::Start { scanned: 0 };
                Ok(None)
            }
            State::Failed => Err(self.failed()),
        }
    }

    fn octet_count(&mut self, digits: &[u8]) -> Result<usize, FrameError> {
        let value = if digits.len() > MAX_COUNT_DIGITS {
            None
        } else {
            digits.iter().try_fold(0usize, |acc, &c| {
                acc.checked_mul(10)?.checked_add(usize::from(c - b'0'))
            })
        };
        match value {
            Some(len) if len <= self.max_frame.saturating_mul(SKIP_FACTOR) => Ok(len),
            _ => {
                self.state = State::Failed;
                Err(FrameError::BadOctetCount {
                    digits: String::from_utf8_lossy(&digits[..digits.len().min(24)]).into_owned(),
                    max: self.max_frame,
                })
            }
        }
    }

    fn failed(&self) -> FrameError {
        FrameError::BadOctetCount {
            digits: String::from("(earlier count)"),
            max: self.max_frame,
        }
    }
}

/// Frames a whole stream that arrives in `pieces`, as a connection reader
/// would: every record and every error in order, then what end of stream
/// makes of the rest, stopping at the first fatal error (after which a
/// reader closes the connection). For callers that hold the stream (files,
/// replays, tests).
pub fn frame_pieces<'a>(
    max_frame: usize,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Result<Bytes, FrameError>> {
    let mut framer = Framer::new(max_frame);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let fatal =
        |out: &Vec<Result<Bytes, FrameError>>| matches!(out.last(), Some(Err(e)) if e.is_fatal());
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match framer.decode(&mut buf) {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => break,
                Err(e) => out.push(Err(e)),
            }
            if fatal(&out) {
                return out;
            }
        }
    }
    loop {
        match framer.decode_eof(&mut buf) {
            Ok(Some(frame)) => out.push(Ok(frame)),
            Ok(None) => break,
            Err(e) => out.push(Err(e)),
        }
        if fatal(&out) {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Out = Vec<Result<Vec<u8>, FrameError>>;

    fn run_pieces(max: usize, pieces: &[&[u8]]) -> Out {
        frame_pieces(max, pieces.iter().copied())
            .into_iter()
            .map(|r| r.map(|f| f.to_vec()))
            .collect()
    }

    fn run(max: usize, input: &[u8], chunk: usize) -> Out {
        if chunk == 0 {
            return run_pieces(max, &[input]);
        }
        let pieces: Vec<&[u8]> = input.chunks(chunk).collect();
        run_pieces(max, &pieces)
    }

    fn ok(s: &str) -> Result<Vec<u8>, FrameError> {
        Ok(s.as_bytes().to_vec())
    }

    /// Runs `input` whole, in every chunk size up to 16 and cut in two at
    /// every byte; all must agree. Returns the whole-input result.
    fn same_at_every_split(max: usize, input: &[u8]) -> Out {
        let whole = run(max, input, 0);
        for chunk in 1..=input.len().min(16) {
            assert_eq!(run(max, input, chunk), whole, "chunk size {chunk}");
        }
        for cut in 0..=input.len() {
            assert_eq!(
                run_pieces(max, &[&input[..cut], &input[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
        whole
    }

    #[test]
    fn lines_end_at_lf_crlf_or_nul() {
        let out = same_at_every_split(100, b"<14>a b\n1,2024/01/01,x\r\nCEF:0|y\0{\"z\":1}\n");
        assert_eq!(
            out,
            vec![
                ok("<14>a b"),
                ok("1,2024/01/01,x"),
                ok("CEF:0|y"),
                ok("{\"z\":1}")
            ]
        );
    }

    #[test]
    fn empty_lines_are_skipped() {
        let out = same_at_every_split(100, b"\n\r\n\0a\n\n\nb\r\n\r\n");
        assert_eq!(out, vec![ok("a"), ok("b")]);
    }

    #[test]
    fn octet_counted_frames_may_hold_newlines() {
        let out = same_at_every_split(100, b"11 <14>a\nb c d5 hello3 xyz");
        assert_eq!(out, vec![ok("<14>a\nb c d"), ok("hello"), ok("xyz")]);
    }

    #[test]
    fn framings_mix_per_frame() {
        let input = b"7 <14>abc1,2024/01/01,THREAT\n5 hello\n2021-10-27T19:20:59Z,no-serial\n3 end";
        let out = same_at_every_split(100, input);
        assert_eq!(
            out,
            vec![
                ok("<14>abc"),
                ok("1,2024/01/01,THREAT"),
                ok("hello"),
                ok("2021-10-27T19:20:59Z,no-serial"),
                ok("end"),
            ]
        );
    }

    #[test]
    fn a_line_starting_with_digits_is_not_a_count() {
        let out = same_at_every_split(100, b"1,2,3\n123\n0 zero\n");
        assert_eq!(out, vec![ok("1,2,3"), ok("123"), ok("0 zero")]);
    }

    #[test]
    fn oversized_lines_are_skipped_once_and_reading_goes_on() {
        let input = b"short\nthis line is far too long for the limit\nnext\r\n";
        let out = same_at_every_split(10, input);
        assert_eq!(
            out,
            vec![
                ok("short"),
                Err(FrameError::TooLong {
                    counted: None,
                    max: 10
                }),
                ok("next"),
            ]
        );
    }

    #[test]
    fn oversized_lines_are_not_buffered() {
        let mut framer = Framer::new(16);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[b'x'; 20]);
        assert_eq!(
            framer.decode(&mut buf),
            Err(FrameError::TooLong {
                counted: None,
                max: 16
            })
        );
        for _ in 0..1000 {
            buf.extend_from_slice(&[b'y'; 1000]);
            assert_eq!(framer.decode(&mut buf), Ok(None));
            assert!(buf.is_empty(), "skipped bytes must not accumulate");
        }
        buf.extend_from_slice(b"yyy\nok\n");
        assert_eq!(framer.decode(&mut buf), Ok(Some(Bytes::from_static(b"ok"))));
    }

    #[test]
    fn a_line_exactly_at_the_limit_passes_even_before_its_crlf() {
        let out = same_at_every_split(5, b"12345\r\nabcdef\n");
        assert_eq!(
            out,
            vec![
                ok("12345"),
                Err(FrameError::TooLong {
                    counted: None,
                    max: 5
                })
            ]
        );
    }

    #[test]
    fn oversized_counted_frames_are_skipped_exactly() {
        let out = same_at_every_split(8, b"12 abcdefghijkl3 abc9 123456789");
        assert_eq!(
            out,
            vec![
                Err(FrameError::TooLong {
                    counted: Some(12),
                    max: 8
                }),
                ok("abc"),
                Err(FrameError::TooLong {
                    counted: Some(9),
                    max: 8
                }),
            ]
        );
    }

    #[test]
    fn absurd_counts_are_fatal() {
        let out = same_at_every_split(100, b"99999999999999999999999 x");
        assert!(
            matches!(out.as_slice(), [Err(e)] if e.is_fatal()),
            "{out:?}"
        );
        let out = same_at_every_split(100, b"ok\n6401 x");
        assert!(
            matches!(
                out.as_slice(),
                [Ok(_), Err(FrameError::BadOctetCount { .. })]
            ),
            "{out:?}"
        );
        // Once failed, the framer stays failed.
        let mut framer = Framer::new(100);
        let mut buf = BytesMut::from(&b"99999999999 x\nok\n"[..]);
        assert!(framer.decode(&mut buf).is_err());
        assert!(framer.decode(&mut buf).is_err());
        assert!(framer.decode_eof(&mut buf).is_err());
    }

    #[test]
    fn a_count_just_under_the_fatal_bound_is_skipped() {
        let mut framer = Framer::new(10);
        let mut buf = BytesMut::from(&b"640 "[..]);
        assert_eq!(
            framer.decode(&mut buf),
            Err(FrameError::TooLong {
                counted: Some(640),
                max: 10
            })
        );
    }

    #[test]
    fn truncated_frames_at_eof_are_reported() {
        let out = same_at_every_split(100, b"ok\n10 abc");
        assert_eq!(
            out,
            vec![
                ok("ok"),
                Err(FrameError::Truncated {
                    expected: 10,
                    received: 3
                })
            ]
        );
        let out = same_at_every_split(100, b"12 ");
        assert_eq!(
            out,
            vec![Err(FrameError::Truncated {
                expected: 12,
                received: 0
            })]
        );
    }

    #[test]
    fn the_last_unterminated_line_is_delivered_at_eof() {
        let out = same_at_every_split(100, b"a\nlast one\r");
        assert_eq!(out, vec![ok("a"), ok("last one")]);
        let out = same_at_every_split(100, b"123");
        assert_eq!(out, vec![ok("123")]);
        let out = same_at_every_split(3, b"toolong");
        assert_eq!(
            out,
            vec![Err(FrameError::TooLong {
                counted: None,
                max: 3
            })]
        );
    }

    #[test]
    fn long_digit_runs_are_bounded_too() {
        let mut input = vec![b'7'; 50];
        input.extend_from_slice(b",x\nok\n");
        let out = same_at_every_split(20, &input);
        assert_eq!(
            out,
            vec![
                Err(FrameError::TooLong {
                    counted: None,
                    max: 20
                }),
                ok("ok")
            ]
        );
    }

    #[test]
    fn errors_say_whether_to_close() {
        assert!(!FrameError::TooLong {
            counted: None,
            max: 1
        }
        .is_fatal());
        assert!(!FrameError::Truncated {
            expected: 2,
            received: 1
        }
        .is_fatal());
        let fatal = FrameError::BadOctetCount {
            digits: "9".repeat(12),
            max: 1,
        };
        assert!(fatal.is_fatal());
        assert!(fatal.to_string().contains("out of step"));
        assert_eq!(fatal.reason(), "bad_octet_count");
    }
}
