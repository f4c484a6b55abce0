//! Personal data taken out of transcripts before anyone who should not see it does: bank
//! cards, phone numbers, e-mail addresses, Russian passports, ИНН, СНИЛС and ОГРН, written or
//! spoken (decision 0020).
//!
//! Recognisers write numbers as digits, as words ("восемь девятьсот шестнадцать ...",
//! "four one one one ...") or as broken digit groups, and addresses as words ("иван собака
//! мейл точка ру"); [`numbers`] reads all of them back into digits, [`detect`] decides what
//! each is from its length, its check digits ([`checks`]) and the words before it. Names are
//! not redacted: the scorecard checks that the manager introduced themselves and used the
//! client's name.
//!
//! [`redact`] replaces each find with a typed placeholder (`[телефон]`, `[card]`) that keeps
//! the times of the words it replaces, so the call page, evidence quotes and search keep
//! working on the redacted text.

pub mod checks;
pub mod detect;
pub mod numbers;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{text_enum, ParseError, Role};
use crate::transcript::{Segment, Transcript, Word};
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// A kind of personal data.
    Kind {
        /// A bank card number (Luhn-checked).
        Card => "card",
        /// A phone number (Russian or international).
        Phone => "phone",
        /// An e-mail address.
        Email => "email",
        /// A Russian passport's series and number.
        Passport => "passport",
        /// ИНН, the Russian tax number.
        Inn => "inn",
        /// СНИЛС, the Russian pension insurance number.
        Snils => "snils",
        /// ОГРН / ОГРНИП, the Russian company registration number.
        Ogrn => "ogrn",
    }
);

impl Kind {
    /// The placeholder that stands for it in a transcript of `language`.
    pub fn placeholder(self, language: &str) -> &'static str {
        let ru = language == "ru";
        match self {
            Kind::Card => {
                if ru {
                    "[карта]"
                } else {
                    "[card]"
                }
            }
            Kind::Phone => {
                if ru {
                    "[телефон]"
                } else {
                    "[phone]"
                }
            }
            Kind::Email => {
                if ru {
                    "[почта]"
                } else {
                    "[email]"
                }
            }
            Kind::Passport => {
                if ru {
                    "[паспорт]"
                } else {
                    "[passport]"
                }
            }
            Kind::Inn => {
                if ru {
                    "[ИНН]"
                } else {
                    "[tax id]"
                }
            }
            Kind::Snils => {
                if ru {
                    "[СНИЛС]"
                } else {
                    "[SNILS]"
                }
            }
            Kind::Ogrn => {
                if ru {
                    "[ОГРН]"
                } else {
                    "[OGRN]"
                }
            }
        }
    }
}

text_enum!(
    /// Who is kept from the redacted values.
    Scope {
        /// Only the LLM: what is sent to it is redacted; people read the transcript as said.
        Llm => "llm",
        /// The LLM and everyone but admins: transcripts, search snippets and the audio played
        /// to managers, QA and heads are redacted; admins hear and read the original.
        EveryoneButAdmins => "everyone_but_admins",
    }
);

/// `[redaction]`: what is redacted, and for whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// The kinds to redact (`card`, `phone`, `email`, `passport`, `inn`, `snils`, `ogrn`);
    /// empty: nothing is redacted.
    pub kinds: Vec<Kind>,
    /// `llm` or `everyone_but_admins`.
    pub scope: Scope,
    /// Keep the original recording and transcript (true), or store only the redacted
    /// transcript and a recording muted over what was redacted (false).
    pub keep_original: bool,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            kinds: Kind::ALL.to_vec(),
            scope: Scope::Llm,
            keep_original: true,
        }
    }
}

impl RedactionConfig {
    /// Whether a reader with `role` gets redacted transcripts and muted audio.
    pub fn hides_from(&self, role: Role) -> bool {
        self.scope == Scope::EveryoneButAdmins && role != Role::Admin && !self.kinds.is_empty()
    }

    /// The kinds replaced in the search index: those hidden from readers, since the index
    /// serves every reader.
    pub fn in_index(&self) -> &[Kind] {
        self.hidden_from(Role::Manager)
    }

    /// The kinds hidden from a reader with `role` (none when nothing is).
    pub fn hidden_from(&self, role: Role) -> &[Kind] {
        if self.hides_from(role) {
            &self.kinds
        } else {
            &[]
        }
    }

    /// What `role` may read of `t`: `t` itself, or `t` redacted (off the async threads).
    pub async fn for_reader(&self, role: Role, t: Transcript) -> Transcript {
        redact_off_thread(t, self.hidden_from(role)).await.0
    }
}

/// [`redact`] on the blocking pool, for callers on the async threads: detection takes about
/// 40 µs an utterance (docs/PERFORMANCE.md), tens of milliseconds for a three-hour call, too
/// long to hold a thread that serves other requests. Nothing to hide costs nothing.
pub async fn redact_off_thread(t: Transcript, kinds: &[Kind]) -> (Transcript, Vec<Redaction>) {
    if kinds.is_empty() {
        return (t, Vec::new());
    }
    let kinds = kinds.to_vec();
    match tokio::task::spawn_blocking(move || redact(&t, &kinds)).await {
        Ok(done) => done,
        // Only a panic inside `redact` gets here; the task's panic is passed on as it was.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// One redacted stretch of a recording: what it was and when it was said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Redaction {
    /// What was there.
    pub kind: Kind,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// A word of the transcript: where it is and what it says.
struct Slot {
    segment: usize,
    word: usize,
}

/// The words of a segment: its recognised words, or (when the recogniser gave none) its text
/// split at spaces, timed evenly across the segment.
fn words_of(segment: &Segment) -> Vec<Word> {
    if !segment.words.is_empty() {
        return segment.words.clone();
    }
    let parts: Vec<&str> = segment.text.split_whitespace().collect();
    let step = segment.duration() / parts.len().max(1) as f64;
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| Word {
            text: (*p).to_string(),
            start: segment.start + step * i as f64,
            end: segment.start + step * (i + 1) as f64,
            probability: segment.confidence,
        })
        .collect()
}

/// The punctuation a replaced word ended with, so "позвоните 8 916 123 45 67." keeps its
/// full stop after the placeholder.
fn trailing_punctuation(word: &str) -> &str {
    let trimmed = word.trim_end_matches([',', '.', ';', ':', '!', '?']);
    &word[trimmed.len()..]
}

/// `t` with every find of `kinds` replaced by its placeholder, and where each was.
///
/// Consecutive segments of one speaker are read as one stretch, so a number split across two
/// segments is still found.
pub fn redact(t: &Transcript, kinds: &[Kind]) -> (Transcript, Vec<Redaction>) {
    let mut out = t.clone();
    let mut redactions = Vec::new();
    if kinds.is_empty() {
        return (out, redactions);
    }
    let mut words: Vec<Vec<Word>> = t.segments.iter().map(words_of).collect();
    let mut changed = vec![false; t.segments.len()];
    let mut i = 0;
    while i < t.segments.len() {
        let speaker = t.segments[i].speaker;
        let mut j = i;
        while j < t.segments.len() && t.segments[j].speaker == speaker {
            j += 1;
        }
        let slots: Vec<Slot> = (i..j)
            .flat_map(|s| {
                (0..words[s].len()).map(move |w| Slot {
                    segment: s,
                    word: w,
                })
            })
            .collect();
        let tokens: Vec<String> = slots
            .iter()
            .map(|s| words[s.segment][s.word].text.trim().to_string())
            .collect();
        let mut removed: Vec<(usize, usize)> = Vec::new();
        for found in detect::find(&tokens) {
            if !kinds.contains(&found.kind) {
                continue;
            }
            let (first, last) = (&slots[found.first], &slots[found.last]);
            let start = words[first.segment][first.word].start;
            let end = words[last.segment][last.word].end;
            let tail = trailing_punctuation(words[last.segment][last.word].text.trim()).to_string();
            let placeholder = &mut words[first.segment][first.word];
            placeholder.text = format!("{}{tail}", found.kind.placeholder(&t.language));
            placeholder.end = if last.segment == first.segment {
                end
            } else {
                placeholder.end
            };
            placeholder.probability = 1.0;
            changed[first.segment] = true;
            for slot in &slots[found.first + 1..=found.last] {
                removed.push((slot.segment, slot.word));
                changed[slot.segment] = true;
            }
            redactions.push(Redaction {
                kind: found.kind,
                start,
                end,
            });
        }
        // Remove from the back so the indexes stay right.
        removed.sort_unstable();
        for (segment, word) in removed.into_iter().rev() {
            words[segment].remove(word);
        }
        i = j;
    }
    for (s, segment) in out.segments.iter_mut().enumerate() {
        if !changed[s] {
            continue;
        }
        let new_words = std::mem::take(&mut words[s]);
        segment.text = new_words
            .iter()
            .map(|w| w.text.trim())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !segment.words.is_empty() {
            segment.words = new_words;
        }
    }
    (out, redactions)
}

/// `text` (one line as said, e.g. a search hit) with every find of `kinds` replaced by its
/// placeholder, in Russian when the text is written in Cyrillic.
pub fn redact_text(text: &str, kinds: &[Kind]) -> String {
    let tokens: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    let finds: Vec<detect::Found> = detect::find(&tokens)
        .into_iter()
        .filter(|f| kinds.contains(&f.kind))
        .collect();
    if finds.is_empty() {
        return text.to_string();
    }
    let cyrillic = text
        .chars()
        .any(|c| matches!(c, 'а'..='я' | 'А'..='Я' | 'ё' | 'Ё'));
    let language = if cyrillic { "ru" } else { "en" };
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    for f in finds {
        out.extend(tokens[i..f.first].iter().cloned());
        out.push(format!(
            "{}{}",
            f.kind.placeholder(language),
            trailing_punctuation(&tokens[f.last])
        ));
        i = f.last + 1;
    }
    out.extend(tokens[i..].iter().cloned());
    out.join(" ")
}

/// `text` cut into pieces, each marked whether it is a redaction placeholder (of either
/// language), so a page can show them apart from what was said.
pub fn pieces(text: &str) -> Vec<(String, bool)> {
    let all: Vec<&str> = placeholders("ru")
        .into_iter()
        .chain(placeholders("en"))
        .collect();
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('[') {
        let Some(found) = all.iter().find(|p| rest[at..].starts_with(*p)) else {
            let cut = at + '['.len_utf8();
            push_plain(&mut out, &rest[..cut]);
            rest = &rest[cut..];
            continue;
        };
        push_plain(&mut out, &rest[..at]);
        out.push(((*found).to_string(), true));
        rest = &rest[at + found.len()..];
    }
    push_plain(&mut out, rest);
    out
}

fn push_plain(out: &mut Vec<(String, bool)>, text: &str) {
    if text.is_empty() {
        return;
    }
    match out.last_mut() {
        Some((last, false)) => last.push_str(text),
        _ => out.push((text.to_string(), false)),
    }
}

/// Every kind, with the placeholder text of each as the transcript shows it.
pub fn placeholders(language: &str) -> Vec<&'static str> {
    Kind::ALL.iter().map(|k| k.placeholder(language)).collect()
}

#[cfg(test)]
mod tests;
