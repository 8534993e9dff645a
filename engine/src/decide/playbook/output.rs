//! `print` and `debug` of one playbook, bounded.
//!
//! A script can call `print` thousands of times per run and runs on every
//! event, so its output is a token bucket per playbook (as its errors are
//! rate-limited): beyond the burst, lines are dropped and counted in
//! `riposte_playbook_output_dropped_total{playbook}`, and the next line let
//! through says how many were held back. One line is cut to a bounded size.

use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;

/// The output budget of one playbook.
#[derive(Debug)]
pub struct ScriptOutput {
    per_second: f64,
    max_bytes: usize,
    bucket: Mutex<Bucket>,
    dropped: Counter,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    /// Dropped since the last line let through.
    held_back: u64,
}

impl ScriptOutput {
    /// `per_second` lines on average, bursts of as many; `0` silences the
    /// playbook (every line is counted as dropped).
    pub fn new(per_second: u32, max_bytes: usize, dropped: Counter) -> ScriptOutput {
        let per_second = f64::from(per_second);
        ScriptOutput {
            per_second,
            max_bytes,
            bucket: Mutex::new(Bucket {
                tokens: per_second,
                refilled: Instant::now(),
                held_back: 0,
            }),
            dropped,
        }
    }

    /// `Some(lines held back since the last one)` when a line may be
    /// written now; otherwise counts it as dropped.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.per_second);
        b.refilled = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Some(std::mem::take(&mut b.held_back));
        }
        b.held_back += 1;
        drop(b);
        self.dropped.inc();
        None
    }

    /// `text` cut to the line size limit, on a character boundary.
    pub fn clip<'a>(&self, text: &'a str) -> (&'a str, usize) {
        clip(text, self.max_bytes)
    }
}

/// The longest prefix of `text` within `max` bytes that ends on a character
/// boundary, and how many bytes were cut.
pub fn clip(text: &str, max: usize) -> (&str, usize) {
    if text.len() <= max {
        return (text, 0);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_let_through_then_lines_are_dropped_and_counted() {
        let dropped = Counter::default();
        let out = ScriptOutput::new(5, 100, dropped.clone());
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(out.admit_at(t0), Some(0));
        }
        for _ in 0..1000 {
            assert_eq!(out.admit_at(t0), None);
        }
        assert_eq!(dropped.get(), 1000);
        // A fifth of a second later one token is back, and the line says
        // how many were held back before it.
        assert_eq!(out.admit_at(t0 + Duration::from_millis(200)), Some(1000));
        assert_eq!(out.admit_at(t0 + Duration::from_millis(200)), None);
        // The bucket never holds more than a burst.
        let later = t0 + Duration::from_secs(3600);
        let admitted = (0..100).filter(|_| out.admit_at(later).is_some()).count();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn zero_silences_the_playbook() {
        let dropped = Counter::default();
        let out = ScriptOutput::new(0, 100, dropped.clone());
        assert_eq!(out.admit(), None);
        assert_eq!(dropped.get(), 1);
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        assert_eq!(clip("short", 10), ("short", 0));
        assert_eq!(clip("abcdef", 4), ("abcd", 2));
        // "é" is two bytes: cutting inside it backs off to before it.
        assert_eq!(clip("aé", 2), ("a", 2));
        let long = "x".repeat(100_000);
        assert_eq!(clip(&long, 1024).0.len(), 1024);
    }
}
