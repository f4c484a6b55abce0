//! Word error rate: the word-level edit distance between a reference and a hypothesis, after
//! lower-casing, dropping punctuation and folding ё into е (a recogniser that writes "ещё" for
//! "еще" made no error a listener would hear).

use serde::Serialize;

/// Word errors against a reference, kept as counts so calls add up before the rate is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WordErrors {
    /// Substitutions + deletions + insertions.
    pub errors: usize,
    /// Words in the reference.
    pub reference_words: usize,
}

impl WordErrors {
    /// Errors per reference word (`None` without reference words).
    pub fn rate(self) -> Option<f64> {
        (self.reference_words > 0).then(|| self.errors as f64 / self.reference_words as f64)
    }

    /// Both counts summed.
    pub fn add(&mut self, other: WordErrors) {
        self.errors += other.errors;
        self.reference_words += other.reference_words;
    }
}

/// The words of `s` as compared.
pub fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .replace('ё', "е")
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Word errors of `hypothesis` against `reference`.
pub fn word_errors(reference: &str, hypothesis: &str) -> WordErrors {
    let (r, h) = (words(reference), words(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut cur = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            let sub = prev[j - 1] + usize::from(r[i - 1] != h[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    WordErrors {
        errors: prev[h.len()],
        reference_words: r.len(),
    }
}

/// Word error rate of `hypothesis` against `reference` (0 for an empty reference).
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    word_errors(reference, hypothesis).rate().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_substitutions_deletions_and_insertions_over_reference_words() {
        let e = word_errors("ask not what your country", "Ask NOT, what the country can");
        // "your" -> "the" (1 substitution), "can" inserted (1).
        assert_eq!(
            e,
            WordErrors {
                errors: 2,
                reference_words: 5
            }
        );
        assert_eq!(wer("Ещё раз", "еще раз"), 0.0, "ё is е");
        assert_eq!(wer("", "anything"), 0.0);
        assert_eq!(word_errors("one two", "").errors, 2);
    }
}
