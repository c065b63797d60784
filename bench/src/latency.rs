//! Latency quantiles of a closed-loop run, raw and corrected for coordinated omission.
//!
//! A closed-loop generator (one request per connection at a time, like this one and `wrk`)
//! sends nothing while the server stalls, so a stall of 50 ms costs each connection one
//! slow sample, not the fifty that clients arriving at a steady rate would have seen. The
//! raw quantiles therefore describe the generator's own requests only. `wrk` (4.x,
//! `stats_correct` in `src/stats.c`) corrects for this after the run: with `e` the
//! expected interval between one connection's requests (run time ÷ requests per
//! connection), every sample `v ≥ 2e` adds synthetic samples at `v − e`, `v − 2e`, … while
//! they exceed `e`. [`corrected_quantile_us`] applies the same rule, so the benchmark's
//! corrected p99 and `wrk --latency`'s p99 measure the same thing (docs/performance.md,
//! "The benchmark's p99 and wrk's").

/// The `q` quantile of `sorted` (ascending, in µs): the smallest sample with at least
/// `q × n` samples at or below it.
pub fn quantile_us(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    sorted[rank(q, n as u64) as usize - 1]
}

/// The 1-based rank of the `q` quantile among `n` samples.
fn rank(q: f64, n: u64) -> u64 {
    ((q * n as f64).ceil() as u64).clamp(1, n)
}

/// The expected interval between one connection's requests, in µs, as `wrk` computes it:
/// `elapsed ÷ (answers ÷ connections)`, both divisions on integers. `None` when the run is
/// too short to say.
pub fn expected_interval_us(elapsed_us: u64, answers: u64, connections: u64) -> Option<u64> {
    let per_connection = answers.checked_div(connections)?;
    elapsed_us.checked_div(per_connection).filter(|e| *e > 0)
}

/// How many synthetic samples `v` adds: `v − k·e` for `k ≥ 1` while the value exceeds `e`.
fn synthetic(v: u64, e: u64) -> u64 {
    if v < 2 * e { 0 } else { (v - e - 1) / e }
}

/// How many of the synthetic samples of `v` are at or below `x`.
fn synthetic_at_or_below(v: u64, e: u64, x: u64) -> u64 {
    let total = synthetic(v, e);
    if v <= x {
        return total;
    }
    // v − k·e ≤ x  ⇔  k ≥ ⌈(v − x) / e⌉.
    let first = (v - x).div_ceil(e).max(1);
    (total + 1).saturating_sub(first)
}

/// The `q` quantile of `sorted` (ascending, in µs) once the samples are corrected for
/// coordinated omission with the expected interval `e` µs, found without materialising
/// the synthetic samples (a stall of seconds would add millions).
pub fn corrected_quantile_us(sorted: &[u32], e: u64, q: f64) -> u32 {
    if sorted.is_empty() || e == 0 {
        return quantile_us(sorted, q);
    }
    // Only samples of at least 2e add any; they are the sorted slice's tail.
    let tail = &sorted[sorted.partition_point(|v| u64::from(*v) < 2 * e)..];
    let added: u64 = tail.iter().map(|v| synthetic(u64::from(*v), e)).sum();
    let wanted = rank(q, sorted.len() as u64 + added);
    let at_or_below = |x: u64| -> u64 {
        let raw = sorted.partition_point(|v| u64::from(*v) <= x) as u64;
        raw + tail
            .iter()
            .map(|v| synthetic_at_or_below(u64::from(*v), e, x))
            .sum::<u64>()
    };
    // The smallest x with `wanted` samples at or below it; every sample is ≤ the maximum.
    let (mut lo, mut hi) = (0u64, u64::from(*sorted.last().unwrap_or(&0)));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if at_or_below(mid) >= wanted {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    u32::try_from(hi).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wrk`'s `stats_correct`, written out over a materialised list, to check against.
    fn wrk_corrected(samples: &[u32], e: u64) -> Vec<u32> {
        let mut out = samples.to_vec();
        for &v in samples {
            let v = u64::from(v);
            if v < 2 * e {
                continue;
            }
            let mut m = v - e;
            while m > e {
                out.push(m as u32);
                m -= e;
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn quantiles_match_a_materialised_correction() {
        // A steady 1 ms with one stall of 80 ms that every connection's request sat through,
        // and some samples right at the edges of the rule (2e, 2e + 1).
        let e = 1_000;
        let mut samples: Vec<u32> = (0..5_000).map(|i| 900 + (i % 200)).collect();
        samples.extend([80_000; 32]);
        samples.extend([2_000, 2_001, 3_999, 4_000, 4_001]);
        samples.sort_unstable();
        let full = wrk_corrected(&samples, e);
        for q in [0.5, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0] {
            assert_eq!(
                corrected_quantile_us(&samples, e, q),
                quantile_us(&full, q),
                "q = {q}"
            );
        }
    }

    #[test]
    fn a_stall_that_the_raw_p99_hides_shows_in_the_corrected_one() {
        // 32 connections at about 1 ms each for 2.5 s, one 50 ms stall: 32 slow samples in
        // about 80,000 are invisible in the raw p99, but a steady client would have waited
        // through the stall at every moment of it.
        let mut samples: Vec<u32> = vec![1_000; 80_000];
        samples.extend([50_000; 32]);
        samples.sort_unstable();
        let e = expected_interval_us(2_550_000, samples.len() as u64, 32).unwrap();
        assert_eq!(quantile_us(&samples, 0.99), 1_000);
        assert!(corrected_quantile_us(&samples, e, 0.99) > 20_000);
        // Without samples of at least 2e there is nothing to correct.
        let steady = vec![1_000u32; 1_000];
        assert_eq!(corrected_quantile_us(&steady, 1_000, 0.99), 1_000);
    }

    #[test]
    fn the_expected_interval_follows_wrk() {
        assert_eq!(expected_interval_us(10_000_000, 320_000, 32), Some(1_000));
        assert_eq!(expected_interval_us(10_000_000, 10, 32), None);
        assert_eq!(expected_interval_us(10_000_000, 100, 0), None);
    }
}
