//! Small, fast random helpers for the generator's hot path.
//!
//! Generation draws a few dozen numbers per line; these avoid the
//! distribution machinery and its rejection loops. The tiny bias of the
//! multiply-shift reduction does not matter for synthetic logs.

use rand::rngs::SmallRng;
use rand::RngCore;

/// A number in `0..n` (`0` when `n` is 0).
#[inline]
pub(crate) fn below(rng: &mut SmallRng, n: u64) -> u64 {
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

/// A number in `lo..=hi`.
#[inline]
pub(crate) fn between(rng: &mut SmallRng, lo: u64, hi: u64) -> u64 {
    lo + below(rng, hi.saturating_sub(lo) + 1)
}

/// True with probability `p`.
#[inline]
pub(crate) fn chance(rng: &mut SmallRng, p: f64) -> bool {
    // 53 random bits make a uniform float in [0, 1).
    ((rng.next_u64() >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
}

/// A uniformly chosen element of a non-empty slice.
#[inline]
pub(crate) fn one<'a, T>(rng: &mut SmallRng, items: &'a [T]) -> &'a T {
    let i = below(rng, items.len() as u64) as usize;
    &items[i.min(items.len().saturating_sub(1))]
}

/// A uniformly chosen string of a non-empty list.
#[inline]
pub(crate) fn one_str(rng: &mut SmallRng, items: &[&'static str]) -> &'static str {
    let s: &&'static str = one(rng, items);
    s
}

/// An index chosen with the given weights (`total` is their sum).
pub(crate) fn pick(rng: &mut SmallRng, weights: &[u32], total: u32) -> usize {
    let mut r = below(rng, u64::from(total)) as u32;
    for (i, &w) in weights.iter().enumerate() {
        if r < w {
            return i;
        }
        r -= w;
    }
    weights.len().saturating_sub(1)
}

/// `len` random lowercase hex digits.
pub(crate) fn hex(rng: &mut SmallRng, len: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(len);
    let mut bits = 0u64;
    for i in 0..len {
        if i % 16 == 0 {
            bits = rng.next_u64();
        }
        s.push(char::from(DIGITS[(bits & 0xf) as usize]));
        bits >>= 4;
    }
    s
}

/// A random (version 4 style) UUID in its usual 8-4-4-4-12 form.
pub(crate) fn uuid(rng: &mut SmallRng) -> String {
    let h = hex(rng, 32);
    let mut s = String::with_capacity(36);
    s.push_str(&h[0..8]);
    s.push('-');
    s.push_str(&h[8..12]);
    s.push_str("-4");
    s.push_str(&h[13..16]);
    s.push_str("-a");
    s.push_str(&h[17..20]);
    s.push('-');
    s.push_str(&h[20..32]);
    s
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn below_and_between_stay_in_range_and_cover_it() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut seen = [false; 7];
        for _ in 0..10_000 {
            let v = between(&mut rng, 3, 9);
            assert!((3..=9).contains(&v));
            seen[(v - 3) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(below(&mut rng, 0), 0);
    }

    #[test]
    fn weighted_pick_follows_the_weights() {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut counts = [0u32; 3];
        for _ in 0..100_000 {
            counts[pick(&mut rng, &[1, 0, 9], 10)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((8_500..11_500).contains(&counts[0]), "{counts:?}");
    }
}
