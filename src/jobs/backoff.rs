//! Retry delays: exponential with jitter, so failed jobs do not retry in lockstep.

use std::time::Duration;

use rand::Rng;

/// Delay before attempt `attempt + 1` after attempt `attempt` (from 1) failed:
/// `base * 2^(attempt-1)`, capped at `max`, then spread by +-25%.
pub fn backoff_delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp).min(max);
    let jitter = rand::thread_rng().gen_range(0.75..=1.25);
    raw.mul_f64(jitter).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_caps() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        for _ in 0..100 {
            let d1 = backoff_delay(1, base, max).as_secs_f64();
            assert!((1.5..=2.5).contains(&d1), "{d1}");
            let d3 = backoff_delay(3, base, max).as_secs_f64();
            assert!((6.0..=10.0).contains(&d3), "{d3}");
            let d20 = backoff_delay(20, base, max).as_secs_f64();
            assert!((45.0..=60.0).contains(&d20), "{d20}");
        }
    }
}
