//! L2-regularised logistic regression fitted by Newton's method (IRLS), and the Brier score.
//!
//! Hand-written rather than a crate: the models here have a handful of features and at most a
//! few hundred thousand rows, where Newton converges in a few steps, and it spares the build a
//! linear-algebra stack. See `docs/decisions/0006-sales-analytics.md`.

/// A fitted model: standardisation of each feature, then weights (index 0 is the intercept).
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    means: Vec<f64>,
    scales: Vec<f64>,
    weights: Vec<f64>,
}

/// Ridge penalty on the (standardised) weights; keeps small or separable samples finite.
const L2: f64 = 1.0;
const MAX_ITERATIONS: usize = 50;

impl Logistic {
    /// Fits `y` (true = won) on rows `x` (all the same length). `None` without rows.
    #[allow(clippy::needless_range_loop)] // Index loops read like the formulas they implement.
    pub fn fit(x: &[Vec<f64>], y: &[bool]) -> Option<Self> {
        let n = x.len();
        let k = x.first()?.len();
        if n == 0 || y.len() != n {
            return None;
        }
        let means: Vec<f64> = (0..k)
            .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64)
            .collect();
        let scales: Vec<f64> = (0..k)
            .map(|j| {
                let var = x.iter().map(|r| (r[j] - means[j]).powi(2)).sum::<f64>() / n as f64;
                if var > 1e-12 {
                    var.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        let z: Vec<Vec<f64>> = x
            .iter()
            .map(|r| {
                std::iter::once(1.0)
                    .chain((0..k).map(|j| (r[j] - means[j]) / scales[j]))
                    .collect()
            })
            .collect();
        let d = k + 1;
        let mut w = vec![0.0; d];
        for _ in 0..MAX_ITERATIONS {
            // Gradient and Hessian of the penalised negative log-likelihood.
            let mut g = vec![0.0; d];
            let mut h = vec![vec![0.0; d]; d];
            for (row, &won) in z.iter().zip(y) {
                let p = sigmoid(dot(&w, row));
                let err = p - f64::from(u8::from(won));
                let curvature = (p * (1.0 - p)).max(1e-9);
                for a in 0..d {
                    g[a] += err * row[a];
                    for b in 0..=a {
                        h[a][b] += curvature * row[a] * row[b];
                    }
                }
            }
            for a in 1..d {
                g[a] += L2 * w[a];
                h[a][a] += L2;
            }
            for a in 0..d {
                for b in 0..a {
                    h[b][a] = h[a][b];
                }
            }
            let step = solve(h, g)?;
            let mut change: f64 = 0.0;
            for a in 0..d {
                w[a] -= step[a];
                change = change.max(step[a].abs());
            }
            if change < 1e-8 {
                break;
            }
        }
        Some(Self {
            means,
            scales,
            weights: w,
        })
    }

    /// Probability of a win for one row.
    pub fn predict(&self, row: &[f64]) -> f64 {
        let z: f64 = self.weights[0]
            + row
                .iter()
                .enumerate()
                .map(|(j, v)| self.weights[j + 1] * (v - self.means[j]) / self.scales[j])
                .sum::<f64>();
        sigmoid(z)
    }
}

/// Mean squared difference between predicted probabilities and outcomes (0 is perfect; always
/// answering 0.5 scores 0.25).
pub fn brier(model: &Logistic, x: &[Vec<f64>], y: &[bool]) -> Option<f64> {
    if x.is_empty() {
        return None;
    }
    let sum: f64 = x
        .iter()
        .zip(y)
        .map(|(r, &won)| (model.predict(r) - f64::from(u8::from(won))).powi(2))
        .sum();
    Some(sum / x.len() as f64)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `a * x = b` by Gaussian elimination with partial pivoting; `None` if singular.
#[allow(clippy::needless_range_loop)] // Index loops read like the formulas they implement.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            for c in col..n {
                a[row][c] -= f * a[col][c];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_monotone_signal_and_is_calibrated_on_it() {
        // Win probability rises with the feature: 10 rows per level, wins = level of 10.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for level in 0..=10 {
            for i in 0..10 {
                x.push(vec![f64::from(level)]);
                y.push(i < level);
            }
        }
        let m = Logistic::fit(&x, &y).expect("fits");
        assert!(m.predict(&[9.0]) > 0.8 && m.predict(&[1.0]) < 0.2);
        assert!((m.predict(&[5.0]) - 0.5).abs() < 0.05);
        let b = brier(&m, &x, &y).expect("brier");
        assert!(b < 0.2, "better than a coin: {b}");
    }

    #[test]
    fn separable_data_stays_finite() {
        let x = vec![vec![0.0], vec![1.0], vec![2.0], vec![3.0]];
        let y = vec![false, false, true, true];
        let m = Logistic::fit(&x, &y).expect("fits");
        let p = m.predict(&[3.0]);
        assert!(p.is_finite() && p > 0.5);
    }
}
