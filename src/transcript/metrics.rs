//! Conversation metrics from speaker turns: talk share, monologues, questions, interruptions,
//! speech rate, silence and filler words.
//!
//! Rules, in words (also in the README):
//! - *Talk time* of a speaker is the union of their segments' intervals.
//! - *Interruption*: a turn that starts while the other speaker's turn is still running, by more
//!   than `min_overlap_s` (timestamps of recognised speech are approximate).
//! - *Question*: a sentence of the manager ending in `?`. For Russian, where recognisers often
//!   drop the question mark, also a sentence that starts with an interrogative word
//!   (что, как, какой, почему, когда, где, сколько, ...) or whose second word is the particle
//!   «ли» ("Удобно ли вам...").
//! - *Filler words*: words or phrases from the configured list of the call's language.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{turns, Segment};
use crate::domain::{Language, Speaker};

/// Settings of the metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// A pause longer than this inside one speaker's speech starts a new turn.
    pub max_pause_s: f64,
    /// Overlap needed before a turn counts as an interruption.
    pub min_overlap_s: f64,
    /// Filler words and phrases in Russian.
    pub fillers_ru: Vec<String>,
    /// Filler words and phrases in English.
    pub fillers_en: Vec<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        let list = |s: &[&str]| s.iter().map(|w| w.to_string()).collect();
        Self {
            max_pause_s: 1.5,
            min_overlap_s: 0.3,
            fillers_ru: list(&[
                "ну",
                "э",
                "ээ",
                "эм",
                "как бы",
                "типа",
                "короче",
                "в общем",
                "это самое",
                "так сказать",
                "значит",
            ]),
            fillers_en: list(&[
                "uh",
                "um",
                "er",
                "ah",
                "you know",
                "i mean",
                "basically",
                "sort of",
                "kind of",
            ]),
        }
    }
}

/// Figures for one speaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpeakerMetrics {
    /// Who.
    pub speaker: Speaker,
    /// Seconds of speech.
    pub talk_seconds: f64,
    /// Share of all speech, 0-1.
    pub talk_share: f64,
    /// Number of turns.
    pub turns: u32,
    /// Longest single turn, seconds.
    pub longest_monologue_s: f64,
    /// Words spoken.
    pub words: u32,
    /// Words per minute of their own talk time.
    pub words_per_minute: f64,
    /// Filler words and phrases used.
    pub filler_words: u32,
    /// Fillers per 100 words.
    pub fillers_per_100_words: f64,
    /// Times this speaker started talking over the other.
    pub interruptions: u32,
}

/// Figures for the whole call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationMetrics {
    /// Recording length, seconds.
    pub duration_s: f64,
    /// Per speaker, in order manager, client, unknown (those present).
    pub speakers: Vec<SpeakerMetrics>,
    /// Questions the manager asked.
    pub manager_questions: u32,
    /// Manager's questions per minute of the call.
    pub manager_questions_per_minute: f64,
    /// Turns that started over the other speaker, in total.
    pub interruptions: u32,
    /// Share of the recording with nobody speaking, 0-1.
    pub silence_share: f64,
    /// Longest stretch with nobody speaking, seconds.
    pub longest_silence_s: f64,
}

/// Sorted, non-overlapping union of intervals.
fn union(mut spans: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    spans.retain(|(a, b)| b > a);
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn normalise_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn count_fillers(words: &[String], fillers: &[String]) -> u32 {
    let mut n = 0;
    for filler in fillers {
        let parts: Vec<String> = normalise_words(filler);
        if parts.is_empty() {
            continue;
        }
        n += words
            .windows(parts.len())
            .filter(|w| *w == parts.as_slice())
            .count() as u32;
    }
    n
}

const RU_INTERROGATIVES: &[&str] = &[
    "что",
    "чем",
    "чего",
    "чему",
    "как",
    "какой",
    "какая",
    "какое",
    "какие",
    "каким",
    "какую",
    "каких",
    "почему",
    "зачем",
    "когда",
    "где",
    "куда",
    "откуда",
    "сколько",
    "кто",
    "кого",
    "кому",
    "разве",
    "неужели",
    "который",
    "которая",
    "которые",
];

/// Whether a sentence is a question (see the module docs for the rule).
pub fn is_question(sentence: &str, language: Language) -> bool {
    let s = sentence.trim();
    if s.ends_with('?') {
        return true;
    }
    if language != Language::Ru {
        return false;
    }
    let words = normalise_words(s);
    match words.as_slice() {
        [first, ..] if RU_INTERROGATIVES.contains(&first.as_str()) => true,
        [_, second, ..] if second == "ли" => true,
        _ => false,
    }
}

/// Splits text into sentences at `.`, `!`, `?` and `…`, keeping the mark.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if matches!(c, '.' | '!' | '?' | '…') {
            if !current.trim().is_empty() {
                out.push(current.trim().to_string());
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Computes the metrics of a call from its segments.
pub fn compute(
    segments: &[Segment],
    duration_s: f64,
    language: Language,
    config: &MetricsConfig,
) -> ConversationMetrics {
    let turns = turns(segments, config.max_pause_s);
    let fillers = if language == Language::Ru {
        &config.fillers_ru
    } else {
        &config.fillers_en
    };

    // Interruptions: a turn starting while the other speaker's latest turn still runs.
    let mut interruptions_by: Vec<(Speaker, u32)> = Vec::new();
    let mut total_interruptions = 0;
    for (i, t) in turns.iter().enumerate() {
        let interrupted = turns[..i]
            .iter()
            .rev()
            .find(|p| p.speaker != t.speaker)
            .is_some_and(|p| p.end - t.start > config.min_overlap_s);
        if interrupted {
            total_interruptions += 1;
            match interruptions_by.iter_mut().find(|(s, _)| *s == t.speaker) {
                Some((_, n)) => *n += 1,
                None => interruptions_by.push((t.speaker, 1)),
            }
        }
    }

    let speech = union(
        segments
            .iter()
            .filter(|s| !s.text.trim().is_empty())
            .map(|s| (s.start, s.end))
            .collect(),
    );
    let total_talk: f64 = Speaker::ALL
        .iter()
        .map(|sp| {
            union(
                segments
                    .iter()
                    .filter(|s| s.speaker == *sp && !s.text.trim().is_empty())
                    .map(|s| (s.start, s.end))
                    .collect(),
            )
            .iter()
            .map(|(a, b)| b - a)
            .sum::<f64>()
        })
        .sum();

    let mut speakers = Vec::new();
    for sp in Speaker::ALL {
        let mine: Vec<&Segment> = segments
            .iter()
            .filter(|s| s.speaker == *sp && !s.text.trim().is_empty())
            .collect();
        if mine.is_empty() {
            continue;
        }
        let talk: f64 = union(mine.iter().map(|s| (s.start, s.end)).collect())
            .iter()
            .map(|(a, b)| b - a)
            .sum();
        let words: Vec<String> = mine.iter().flat_map(|s| normalise_words(&s.text)).collect();
        let my_turns: Vec<_> = turns.iter().filter(|t| t.speaker == *sp).collect();
        let filler_words = count_fillers(&words, fillers);
        speakers.push(SpeakerMetrics {
            speaker: *sp,
            talk_seconds: round3(talk),
            talk_share: if total_talk > 0.0 {
                round3(talk / total_talk)
            } else {
                0.0
            },
            turns: my_turns.len() as u32,
            longest_monologue_s: round3(
                my_turns.iter().map(|t| t.end - t.start).fold(0.0, f64::max),
            ),
            words: words.len() as u32,
            words_per_minute: if talk > 0.0 {
                round3(words.len() as f64 / (talk / 60.0))
            } else {
                0.0
            },
            filler_words,
            fillers_per_100_words: if words.is_empty() {
                0.0
            } else {
                round3(100.0 * filler_words as f64 / words.len() as f64)
            },
            interruptions: interruptions_by
                .iter()
                .find(|(s, _)| s == sp)
                .map_or(0, |(_, n)| *n),
        });
    }

    let manager_questions = turns
        .iter()
        .filter(|t| t.speaker == Speaker::Manager)
        .flat_map(|t| sentences(&t.text))
        .filter(|s| is_question(s, language))
        .count() as u32;

    let spoken: f64 = speech.iter().map(|(a, b)| b - a).sum();
    let mut longest_silence: f64 = 0.0;
    let mut cursor = 0.0;
    for (a, b) in &speech {
        longest_silence = longest_silence.max(a - cursor);
        cursor = *b;
    }
    longest_silence = longest_silence.max(duration_s - cursor);

    ConversationMetrics {
        duration_s: round3(duration_s),
        speakers,
        manager_questions,
        manager_questions_per_minute: if duration_s > 0.0 {
            round3(manager_questions as f64 / (duration_s / 60.0))
        } else {
            0.0
        },
        interruptions: total_interruptions,
        silence_share: if duration_s > 0.0 {
            round3(((duration_s - spoken) / duration_s).clamp(0.0, 1.0))
        } else {
            0.0
        },
        longest_silence_s: round3(longest_silence.max(0.0)),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::tests::seg;

    #[test]
    fn russian_questions_without_a_question_mark_are_counted() {
        assert!(is_question("Какие у вас сейчас объёмы", Language::Ru));
        assert!(is_question("Удобно ли вам сейчас говорить", Language::Ru));
        assert!(is_question("А вы пробовали?", Language::Ru));
        assert!(!is_question("Мы настраиваем рекламу.", Language::Ru));
        assert!(!is_question("What a day.", Language::En));
        assert!(is_question("How are you?", Language::En));
    }

    #[test]
    fn talk_interruptions_silence_and_fillers() {
        let segments = vec![
            seg(
                Speaker::Manager,
                1.0,
                5.0,
                "Hi, um, is this Sarah? How are you taking payments?",
            ),
            seg(
                Speaker::Client,
                4.0,
                8.0,
                "Terminals, you know, from our bank.",
            ),
            seg(Speaker::Manager, 10.0, 12.0, "I see."),
        ];
        let m = compute(&segments, 20.0, Language::En, &MetricsConfig::default());
        assert_eq!(
            m.interruptions, 1,
            "the client started 1 s before the manager finished"
        );
        assert_eq!(m.manager_questions, 2);
        let manager = &m.speakers[0];
        assert_eq!(manager.speaker, Speaker::Manager);
        assert_eq!(manager.talk_seconds, 6.0);
        assert_eq!(manager.filler_words, 1);
        assert_eq!(m.speakers[1].filler_words, 1, "the phrase 'you know'");
        assert_eq!(m.speakers[1].interruptions, 1);
        // Speech covers 1-8 and 10-12: 9 s of 20.
        assert_eq!(m.silence_share, 0.55);
        assert_eq!(m.longest_silence_s, 8.0);
        assert_eq!(manager.longest_monologue_s, 4.0);
    }

    #[test]
    fn silence_only_is_all_silence_and_no_speakers() {
        let m = compute(&[], 600.0, Language::En, &MetricsConfig::default());
        assert!(m.speakers.is_empty());
        assert_eq!(
            (m.silence_share, m.longest_silence_s, m.interruptions),
            (1.0, 600.0, 0)
        );
    }
}
