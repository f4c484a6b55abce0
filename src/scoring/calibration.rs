//! Agreement between the model and QA corrections, per criterion.
//!
//! Every corrected criterion is a pair (model answer, QA answer) on the criterion's scale.
//! Reported: exact agreement, agreement within one step, and Cohen's weighted kappa with
//! linear weights (chance-corrected; 1 = perfect, 0 = chance level), with the counts behind
//! them. Pairs where either side said "not applicable" are counted apart.

use serde::Serialize;
use utoipa::ToSchema;

/// Agreement for one criterion.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Agreement {
    /// Criterion id.
    pub criterion: String,
    /// Corrected criteria with an answer on both sides.
    pub pairs: usize,
    /// Of those, where QA kept the model's answer.
    pub exact: usize,
    /// Share exact (`null` when there are no pairs).
    pub exact_rate: Option<f64>,
    /// Of those, where QA moved the answer by at most one step.
    pub within_one: usize,
    /// Share within one step.
    pub within_one_rate: Option<f64>,
    /// Cohen's weighted kappa, linear weights (`null` when undefined: no pairs, or both
    /// sides always gave one and the same answer).
    pub weighted_kappa: Option<f64>,
    /// Corrections where one side said "not applicable".
    pub na_disagreements: usize,
    /// How often each pair of answers occurred: `confusion[reference][model]` over the scale
    /// 0..=max, the reference being QA's answer (or a label's, in `callgrade eval scoring`).
    pub confusion: Vec<Vec<usize>>,
}

/// One corrected criterion.
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    /// Top of the scale.
    pub scale_max: u8,
    /// The model's answer.
    pub model: Option<u8>,
    /// QA's answer.
    pub qa: Option<u8>,
}

/// Agreement over `pairs` for `criterion`.
pub fn agreement(criterion: &str, pairs: &[Pair]) -> Agreement {
    let both: Vec<(u8, u8, u8)> = pairs
        .iter()
        .filter_map(|p| Some((p.model?, p.qa?, p.scale_max.max(1))))
        .collect();
    let na_disagreements = pairs
        .iter()
        .filter(|p| p.model.is_none() != p.qa.is_none())
        .count();
    let n = both.len();
    let exact = both.iter().filter(|(m, q, _)| m == q).count();
    let within_one = both.iter().filter(|(m, q, _)| m.abs_diff(*q) <= 1).count();
    let rate = |k: usize| (n > 0).then(|| round3(k as f64 / n as f64));
    let size = usize::from(pairs.iter().map(|p| p.scale_max).max().unwrap_or(1).max(1)) + 1;
    let mut confusion = vec![vec![0usize; size]; size];
    for &(m, q, _) in &both {
        confusion[usize::from(q).min(size - 1)][usize::from(m).min(size - 1)] += 1;
    }
    Agreement {
        criterion: criterion.to_string(),
        pairs: n,
        exact,
        exact_rate: rate(exact),
        within_one,
        within_one_rate: rate(within_one),
        weighted_kappa: weighted_kappa(&both),
        na_disagreements,
        confusion,
    }
}

/// Cohen's kappa with linear disagreement weights |i-j|/(k-1) over categories 0..=max.
fn weighted_kappa(pairs: &[(u8, u8, u8)]) -> Option<f64> {
    let n = pairs.len();
    if n == 0 {
        return None;
    }
    let k = usize::from(pairs.iter().map(|p| p.2).max().unwrap_or(1)) + 1;
    let mut observed = vec![vec![0.0f64; k]; k];
    for &(m, q, _) in pairs {
        observed[usize::from(m).min(k - 1)][usize::from(q).min(k - 1)] += 1.0;
    }
    let rows: Vec<f64> = observed.iter().map(|r| r.iter().sum()).collect();
    let cols: Vec<f64> = (0..k)
        .map(|j| observed.iter().map(|r| r[j]).sum())
        .collect();
    let w = |i: usize, j: usize| i.abs_diff(j) as f64 / (k - 1) as f64;
    let (mut obs, mut exp) = (0.0, 0.0);
    for i in 0..k {
        for j in 0..k {
            obs += w(i, j) * observed[i][j] / n as f64;
            exp += w(i, j) * rows[i] * cols[j] / (n as f64 * n as f64);
        }
    }
    (exp > 0.0).then(|| round3(1.0 - obs / exp))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(u8, u8)]) -> Vec<Pair> {
        list.iter()
            .map(|&(m, q)| Pair {
                scale_max: 2,
                model: Some(m),
                qa: Some(q),
            })
            .collect()
    }

    #[test]
    fn perfect_agreement_is_kappa_one() {
        let a = agreement("c", &pairs(&[(0, 0), (1, 1), (2, 2), (2, 2)]));
        assert_eq!(a.weighted_kappa, Some(1.0));
        assert_eq!(a.exact_rate, Some(1.0));
    }

    #[test]
    fn weighted_kappa_matches_a_hand_computed_table() {
        // model/qa: (0,0) (0,1) (1,1) (2,1) (2,2) (2,0); n = 6, k = 3, weights 0, .5, 1.
        // Observed disagreement: (.5 + .5 + 1) / 6 = 2/6 = 0.3333.
        // Rows (model): 0:2 1:1 2:3; cols (qa): 0:2 1:3 2:1.
        // Expected: sum w_ij r_i c_j / 36 = [r0(c1*.5 + c2*1) + r1(c0*.5 + c2*.5)
        //   + r2(c0*1 + c1*.5)] / 36 = [2(1.5+1) + 1(1+.5) + 3(2+1.5)] / 36 = 17/36.
        // kappa = 1 - (12/36)/(17/36) = 1 - 12/17 = 0.294.
        let a = agreement(
            "c",
            &pairs(&[(0, 0), (0, 1), (1, 1), (2, 1), (2, 2), (2, 0)]),
        );
        assert_eq!(a.weighted_kappa, Some(0.294));
        assert_eq!(a.exact, 3);
        assert_eq!(a.within_one, 5);
        assert_eq!(a.pairs, 6);
        // Rows are QA's answers, columns the model's.
        assert_eq!(
            a.confusion,
            vec![vec![1, 0, 1], vec![1, 1, 1], vec![0, 0, 1]]
        );
    }

    #[test]
    fn no_pairs_gives_nulls_not_zeros() {
        let a = agreement("c", &[]);
        assert_eq!(a.weighted_kappa, None);
        assert_eq!(a.exact_rate, None);
        let na = [Pair {
            scale_max: 2,
            model: None,
            qa: Some(1),
        }];
        assert_eq!(agreement("c", &na).na_disagreements, 1);
    }
}
