//! Guards against whisper's hallucinations on silence and long audio: segments whisper itself
//! thinks are not speech, segments with very low confidence, and repetition loops.

/// What whisper said about one decoded segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Text.
    pub text: String,
    /// Probability the window holds no speech.
    pub no_speech_prob: f32,
    /// Mean log-probability of its tokens.
    pub avg_logprob: f32,
}

/// Thresholds (whisper's own defaults, as in OpenAI's reference decoder).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Above this no-speech probability, combined with a low log-probability, the segment is dropped.
    pub no_speech: f32,
    /// Below this mean log-probability a segment is untrustworthy.
    pub logprob: f32,
    /// Below this mean log-probability a segment is dropped whatever else holds.
    pub min_logprob: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            no_speech: 0.6,
            logprob: -1.0,
            min_logprob: -2.0,
        }
    }
}

/// Why a segment was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Whisper judged the window silent and was unsure of the text.
    NoSpeech,
    /// Very low confidence.
    LowConfidence,
    /// The text loops on itself or repeats the previous segments.
    Repetition,
    /// Only punctuation, music notes or bracketed non-speech.
    NonSpeech,
}

/// Whether `text` is a repetition loop: a word or short phrase repeated many times in a row.
pub fn is_loop(text: &str) -> bool {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() < 6 {
        return false;
    }
    for n in 1..=4 {
        let mut run = 1;
        let mut i = n;
        while i + n <= words.len() {
            if words[i..i + n] == words[i - n..i] {
                run += 1;
                if run >= 4 {
                    return true;
                }
            } else {
                run = 1;
            }
            i += n;
        }
    }
    // Very few distinct words in a long segment.
    let distinct: std::collections::BTreeSet<&String> = words.iter().collect();
    words.len() >= 12 && distinct.len() * 4 <= words.len()
}

fn is_non_speech(text: &str) -> bool {
    let t = text.trim();
    t.is_empty()
        || t.chars().all(|c| !c.is_alphanumeric())
        || (t.starts_with('[') && t.ends_with(']'))
        || (t.starts_with('(') && t.ends_with(')'))
        || t.contains('♪')
}

/// Decides which candidates to keep; `None` keeps it, `Some(reason)` drops it. A segment whose
/// text equals each of the two before it is a loop across segments.
pub fn filter(candidates: &[Candidate], t: &Thresholds) -> Vec<Option<Drop>> {
    let mut verdicts = Vec::with_capacity(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        let verdict = if is_non_speech(&c.text) {
            Some(Drop::NonSpeech)
        } else if c.no_speech_prob > t.no_speech && c.avg_logprob < t.logprob {
            Some(Drop::NoSpeech)
        } else if c.avg_logprob < t.min_logprob {
            Some(Drop::LowConfidence)
        } else if is_loop(&c.text)
            || (i >= 2
                && candidates[i - 1].text.trim() == c.text.trim()
                && candidates[i - 2].text.trim() == c.text.trim())
        {
            Some(Drop::Repetition)
        } else {
            None
        };
        verdicts.push(verdict);
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(text: &str, ns: f32, lp: f32) -> Candidate {
        Candidate {
            text: text.into(),
            no_speech_prob: ns,
            avg_logprob: lp,
        }
    }

    #[test]
    fn drops_silence_low_confidence_loops_and_non_speech() {
        let cands = vec![
            c("Hello, how are you?", 0.1, -0.3),
            c("Thank you.", 0.9, -1.5),
            c("garbled", 0.1, -2.5),
            c(
                "thank you thank you thank you thank you thank you",
                0.1,
                -0.5,
            ),
            c("[MUSIC]", 0.1, -0.2),
            c("Fine.", 0.7, -0.4),
        ];
        let v = filter(&cands, &Thresholds::default());
        assert_eq!(
            v,
            vec![
                None,
                Some(Drop::NoSpeech),
                Some(Drop::LowConfidence),
                Some(Drop::Repetition),
                Some(Drop::NonSpeech),
                None
            ]
        );
    }

    #[test]
    fn the_same_line_three_times_in_a_row_is_a_loop() {
        let cands = vec![
            c("Subscribe.", 0.2, -0.5),
            c("Subscribe.", 0.2, -0.5),
            c("Subscribe.", 0.2, -0.5),
        ];
        assert_eq!(
            filter(&cands, &Thresholds::default())[2],
            Some(Drop::Repetition)
        );
    }

    #[test]
    fn ordinary_sentences_are_not_loops() {
        assert!(!is_loop(
            "ask not what your country can do for you, ask what you can do for your country"
        ));
        assert!(is_loop("да да да да да да да"));
    }
}
