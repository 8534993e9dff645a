//! Retrying transient failures: exponential backoff with full jitter,
//! honouring the server's Retry-After, bounded in attempts and time.

use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
    /// Give up once this much time has passed since the first attempt.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            deadline: Duration::from_secs(60),
        }
    }
}

/// What an attempt's error says about trying again.
pub trait Retryable {
    fn is_transient(&self) -> bool;
    fn retry_after(&self) -> Option<Duration>;
    /// The other side is away altogether (no connection): a restart or an
    /// upgrade of it takes longer than a few quick attempts, so these are
    /// retried until the deadline whatever the attempt count.
    fn is_unreachable(&self) -> bool {
        false
    }
    /// A refusal a server that has just come back may give before its
    /// caches fill (kube-apiserver answers 403 until its RBAC informers have
    /// synced): retried when the same run saw the server unreachable.
    fn settles_after_outage(&self) -> bool {
        false
    }
}

/// The result and how many attempts it took.
#[derive(Debug)]
pub struct Attempted<T, E> {
    pub result: Result<T, E>,
    pub attempts: u32,
}

impl RetryPolicy {
    /// The wait before attempt `n + 1` (n ≥ 1): full jitter over an
    /// exponentially growing cap, or the server's Retry-After when longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let jittered =
            Duration::from_millis(rand::rng().random_range(0..=exp.as_millis().max(1) as u64));
        match retry_after {
            // A server asking for more than five minutes is not waited for
            // that long in one go; the deadline decides what happens next.
            Some(after) => after.min(Duration::from_secs(300)).max(jittered),
            None => jittered,
        }
    }

    /// Runs `op` until it succeeds, fails permanently, or the policy's
    /// bounds are reached.
    pub async fn run<T, E, F, Fut>(&self, mut op: F) -> Attempted<T, E>
    where
        E: Retryable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let mut attempts = 0;
        let mut was_away = false;
        loop {
            attempts += 1;
            match op().await {
                Ok(v) => {
                    return Attempted {
                        result: Ok(v),
                        attempts,
                    }
                }
                Err(e) => {
                    let away = e.is_unreachable() || (was_away && e.settles_after_outage());
                    was_away |= e.is_unreachable();
                    let transient = e.is_transient() || away;
                    let out_of_attempts = attempts >= self.max_attempts && !away;
                    if !transient || out_of_attempts {
                        return Attempted {
                            result: Err(e),
                            attempts,
                        };
                    }
                    let wait = self.delay(attempts, e.retry_after());
                    if started.elapsed() + wait > self.deadline {
                        return Attempted {
                            result: Err(e),
                            attempts,
                        };
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct E {
        transient: bool,
        after: Option<Duration>,
    }

    impl Retryable for E {
        fn is_transient(&self) -> bool {
            self.transient
        }
        fn retry_after(&self) -> Option<Duration> {
            self.after
        }
    }

    #[derive(Debug)]
    struct Away;

    impl Retryable for Away {
        fn is_transient(&self) -> bool {
            true
        }
        fn retry_after(&self) -> Option<Duration> {
            None
        }
        fn is_unreachable(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_retried_past_the_attempt_cap_until_the_deadline() {
        let p = RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            deadline: Duration::from_millis(200),
        };
        let calls = AtomicU32::new(0);
        let out = p
            .run(|| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 5 {
                        Err(Away)
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(out.result.ok(), Some(5));
        assert_eq!(out.attempts, 6);
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            deadline: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let out = quick()
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(E {
                        transient: true,
                        after: None,
                    })
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(out.result.ok(), Some(7));
        assert_eq!(out.attempts, 3);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let out: Attempted<(), E> = quick()
            .run(|| async {
                Err(E {
                    transient: false,
                    after: None,
                })
            })
            .await;
        assert_eq!(out.attempts, 1);
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let out: Attempted<(), E> = quick()
            .run(|| async {
                Err(E {
                    transient: true,
                    after: None,
                })
            })
            .await;
        assert_eq!(out.attempts, 4);
    }

    #[test]
    fn retry_after_is_honoured_and_delays_are_capped() {
        let p = RetryPolicy::default();
        assert!(p.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        for attempt in 1..40 {
            assert!(p.delay(attempt, None) <= p.max_delay);
        }
    }

    #[tokio::test]
    async fn deadline_stops_long_retry_after() {
        let p = RetryPolicy {
            deadline: Duration::from_millis(50),
            ..quick()
        };
        let started = Instant::now();
        let out: Attempted<(), E> = p
            .run(|| async {
                Err(E {
                    transient: true,
                    after: Some(Duration::from_secs(30)),
                })
            })
            .await;
        assert_eq!(out.attempts, 1);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
