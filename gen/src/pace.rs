//! Holding a sender to a target rate.
//!
//! Lines are paced in batches against a monotonic clock: line `n` is due
//! `n / rate` seconds after the start, and the sender sleeps only at batch
//! boundaries until the batch's first line is due. Because the schedule is
//! absolute, sleep overshoot never accumulates, and at high rates the
//! sleeps stay long enough for the OS timer to honour them.

use std::time::{Duration, Instant};

/// How much time one batch covers.
const BATCH_SPAN: Duration = Duration::from_millis(2);

/// Paces lines to a rate; `None` means as fast as possible.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    rate: Option<f64>,
    batch: u64,
}

impl Pacer {
    /// `rate` in lines per second; `None`, zero, negative or non-finite
    /// rates mean unlimited.
    pub fn new(rate: Option<f64>) -> Pacer {
        let rate = rate.filter(|r| r.is_finite() && *r > 0.0);
        let batch = rate.map_or(u64::MAX, |r| {
            ((r * BATCH_SPAN.as_secs_f64()) as u64).clamp(1, 65_536)
        });
        Pacer {
            start: Instant::now(),
            rate,
            batch,
        }
    }

    /// Lines per batch (`u64::MAX` when unlimited).
    pub fn batch(&self) -> u64 {
        self.batch
    }

    /// Whether line `n` (0-based) starts a batch: the moment to flush what
    /// was written and wait.
    pub fn at_boundary(&self, n: u64) -> bool {
        self.rate.is_some() && n.checked_rem(self.batch) == Some(0)
    }

    /// When line `n` is due.
    pub fn due(&self, n: u64) -> Instant {
        match self.rate {
            Some(rate) => self.start + Duration::from_secs_f64(n as f64 / rate),
            None => self.start,
        }
    }

    /// Sleeps until line `n` is due (returns at once when it already is).
    pub fn wait_for(&self, n: u64) {
        let due = self.due(n);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paces `count` lines at `rate` the way the CLI does.
    fn run(rate: f64, count: u64) -> Duration {
        let pacer = Pacer::new(Some(rate));
        for n in 0..count {
            if pacer.at_boundary(n) {
                pacer.wait_for(n);
            }
        }
        pacer.elapsed()
    }

    #[test]
    fn high_rates_are_held_accurately_in_batches() {
        // 200,000 lines/s for 60,000 lines: 0.3 s, in batches of 400.
        let pacer = Pacer::new(Some(200_000.0));
        assert_eq!(pacer.batch(), 400);
        let took = run(200_000.0, 60_000).as_secs_f64();
        assert!((0.29..0.45).contains(&took), "took {took} s");
    }

    #[test]
    fn low_rates_pace_every_line() {
        let pacer = Pacer::new(Some(100.0));
        assert_eq!(pacer.batch(), 1);
        let took = run(100.0, 21).as_secs_f64();
        assert!((0.19..0.35).contains(&took), "took {took} s");
    }

    #[test]
    fn no_rate_means_no_waiting() {
        for rate in [None, Some(0.0), Some(-5.0), Some(f64::NAN)] {
            let pacer = Pacer::new(rate);
            assert!(!pacer.at_boundary(0));
            assert!(!pacer.at_boundary(1_000_000));
        }
    }
}
