//! Small statistics the KPIs share: ratios with their counts, mean, median, percentiles.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A ratio with the counts behind it; `value` is null when the denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ratio {
    /// Numerator.
    pub numerator: i64,
    /// Denominator.
    pub denominator: i64,
    /// numerator / denominator, or null.
    pub value: Option<f64>,
}

impl Ratio {
    /// `numerator / denominator`.
    pub fn of(numerator: i64, denominator: i64) -> Self {
        Self {
            numerator,
            denominator,
            value: (denominator != 0).then(|| numerator as f64 / denominator as f64),
        }
    }
}

/// Arithmetic mean; `None` for no values.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Percentile `p` (0..=1) with linear interpolation between closest ranks
/// (rank = p * (n - 1), as numpy's default); `None` for no values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

/// Pearson's correlation of paired values; `None` with fewer than three pairs or when either
/// side does not vary.
pub fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 3 {
        return None;
    }
    let n = pairs.len() as f64;
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// The median (the 50th percentile).
pub fn median(values: &[f64]) -> Option<f64> {
    percentile(values, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_is_one_for_a_line_and_undefined_without_spread() {
        let line = [(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)];
        assert!((pearson(&line).unwrap() - 1.0).abs() < 1e-12);
        let opposite = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)];
        assert!((pearson(&opposite).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[(1.0, 2.0), (2.0, 2.0), (3.0, 2.0)]), None);
        assert_eq!(pearson(&[(1.0, 2.0), (2.0, 3.0)]), None);
    }

    #[test]
    fn percentiles_interpolate_linearly() {
        let v = [40.0, 1.0, 5.0, 10.0, 20.0, 30.0];
        assert_eq!(median(&v), Some(15.0));
        assert_eq!(percentile(&v, 0.9), Some(35.0));
        assert_eq!(percentile(&[5.0, 10.0, 30.0], 0.9), Some(26.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratios_are_null_without_a_denominator() {
        assert_eq!(Ratio::of(0, 0).value, None);
        assert_eq!(Ratio::of(3, 4).value, Some(0.75));
    }
}

/// A 95% Wilson score interval for a proportion `k / n`; `None` when `n` is zero.
pub fn wilson_95(k: i64, n: i64) -> Option<(f64, f64)> {
    if n <= 0 {
        return None;
    }
    let z = 1.959_963_984_540_054_f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

#[cfg(test)]
mod wilson_tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 8 of 10: (0.4902, 0.9433) to four places.
        let (lo, hi) = wilson_95(8, 10).expect("interval");
        assert!(
            (lo - 0.4902).abs() < 1e-4 && (hi - 0.9433).abs() < 1e-4,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson_95(0, 5).expect("interval");
        assert!(lo == 0.0 && (hi - 0.4345).abs() < 1e-4, "{lo} {hi}");
        assert_eq!(wilson_95(0, 0), None);
    }
}
