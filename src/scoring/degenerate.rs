//! Text that is not an answer. A small model under a JSON schema fills every string it must
//! give, and when it has nothing to say it fills them with "1.1.1.1…", one word again and
//! again, or the field's own name. Such text passes the schema, so it is caught here, by its
//! shape alone: no letters, a short unit repeated, few distinct words, text that compresses
//! far better than language does (whisper.cpp refuses its own looping output by the same
//! measure), or a copy of a field name. A degenerate field is dropped, never stored or shown.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::Compression;

/// Why a text is not an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Degenerate {
    /// No letter in any alphabet ("1.1.1.1", "...", "---").
    NoLetters,
    /// One short unit over and over ("ok ok ok ok", "abcabcabc").
    RepeatedUnit,
    /// A handful of words making up a long text.
    FewDistinctWords,
    /// Compresses like a loop, not like language (zlib ratio).
    Compressible(f64),
    /// The field's or a criterion's name, or a schema word such as "string".
    FieldName,
}

impl Degenerate {
    /// The reason in words, as a repair request and a reviewer read it.
    pub fn describe(self) -> String {
        match self {
            Degenerate::NoLetters => "has no letters".into(),
            Degenerate::RepeatedUnit => "repeats one fragment over and over".into(),
            Degenerate::FewDistinctWords => "repeats a few words over and over".into(),
            Degenerate::Compressible(r) => {
                format!("is repetitive (compresses {r:.1} times, language about 1.5)")
            }
            Degenerate::FieldName => "copies a field name instead of answering".into(),
        }
    }
}

/// Texts this long (bytes) or longer are judged by their compression ratio; shorter ones
/// compress poorly whatever they say.
const COMPRESSIBLE_FROM: usize = 60;
/// zlib ratio above which a text is a loop: whisper.cpp's `compression_ratio_threshold`.
const MAX_RATIO: f64 = 2.4;
/// Words a text needs before its share of distinct words says anything.
const FEW_WORDS_FROM: usize = 8;
/// Distinct words per word at or below which a long text is a loop.
const MIN_DISTINCT_SHARE: f64 = 0.3;

/// Why `text` is not an answer, if it is not. `names` are the words that would be a copy of
/// the field (its key, the criterion's id). Empty text is not judged here: it is missing, and
/// the caller says so.
pub fn check(text: &str, names: &[&str]) -> Option<Degenerate> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if !text.chars().any(char::is_alphabetic) {
        return Some(Degenerate::NoLetters);
    }
    let bare = squash(text);
    const SCHEMA_WORDS: [&str; 8] = [
        "string",
        "text",
        "quote",
        "quotes",
        "rationale",
        "action",
        "null",
        "none",
    ];
    if SCHEMA_WORDS.contains(&bare.as_str()) || names.iter().any(|n| squash(n) == bare) {
        return Some(Degenerate::FieldName);
    }
    if repeated_unit(text) {
        return Some(Degenerate::RepeatedUnit);
    }
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.len() >= FEW_WORDS_FROM {
        let mut distinct = words.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if (distinct.len() as f64) / (words.len() as f64) <= MIN_DISTINCT_SHARE {
            return Some(Degenerate::FewDistinctWords);
        }
    }
    if text.len() >= COMPRESSIBLE_FROM {
        let ratio = compression_ratio(text);
        if ratio > MAX_RATIO {
            return Some(Degenerate::Compressible(ratio));
        }
    }
    None
}

/// Letters and digits only, lower case: "Better_Phrasing" and "better phrasing" are one name.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `text` (six characters or more, trailing dots and ellipses aside) is one unit
/// repeated at least two and a half times to its end.
fn repeated_unit(text: &str) -> bool {
    let chars: Vec<char> = text
        .trim_end_matches(['.', '…', ' '])
        .chars()
        .flat_map(char::to_lowercase)
        .collect();
    let n = chars.len();
    if n < 6 {
        return false;
    }
    // Two and a half periods: "action action action" is three words with two spaces.
    (1..=n * 2 / 5).any(|p| (p..n).all(|i| chars[i] == chars[i - p]))
}

/// Bytes of `text` per byte of its zlib compression.
fn compression_ratio(text: &str) -> f64 {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(text.as_bytes());
    let compressed = z.finish().map(|v| v.len()).unwrap_or(text.len()).max(1);
    text.len() as f64 / compressed as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_digits_and_field_names_are_not_answers() {
        let cases = [
            ("1.1.1.1.1.1.1.1.1.1...", Degenerate::NoLetters),
            ("... --- ...", Degenerate::NoLetters),
            ("ok ok ok ok ok", Degenerate::RepeatedUnit),
            ("action action action", Degenerate::RepeatedUnit),
            ("хорошо хорошо хорошо хорошо", Degenerate::RepeatedUnit),
            ("abcabcabcabc…", Degenerate::RepeatedUnit),
            ("rationale", Degenerate::FieldName),
            ("Better phrasing", Degenerate::FieldName),
            ("needs_discovery", Degenerate::FieldName),
            ("string", Degenerate::FieldName),
        ];
        for (text, want) in cases {
            assert_eq!(
                check(text, &["better_phrasing", "needs_discovery"]),
                Some(want),
                "{text:?}"
            );
        }
        let few = "the client the manager the client the manager the client the manager the end";
        assert_eq!(check(few, &[]), Some(Degenerate::FewDistinctWords));
        let looping =
            "The manager asked. The manager asked. The manager asked. The manager asked. \
                       The manager asked. The manager asked again.";
        assert!(check(looping, &[]).is_some(), "{:?}", check(looping, &[]));
    }

    #[test]
    fn answers_in_both_languages_pass_however_short() {
        let fine = [
            "Because.",
            "ok",
            "Да",
            "Greeted the client by name and introduced the company.",
            "Менеджер представился, назвал компанию и уточнил, удобно ли клиенту говорить.",
            "Не выяснил бюджет и сроки; вопросы были закрытыми, клиент отвечал «да» или «нет».",
            "Asked about volume, budget and timing, then summarised the client's needs back to them \
             before presenting the plan.",
            "Send the proposal by Friday",
            "Price 4 500 rubles, 12 licences, delivery on 15.03",
            "Quote: «Здравствуйте, Иван, это Анна из компании Альфа»",
        ];
        for text in fine {
            assert_eq!(check(text, &["rationale", "greeting"]), None, "{text:?}");
        }
    }

    #[test]
    fn a_real_sentence_compresses_like_language() {
        let ru = "Менеджер выяснил потребности клиента: объём закупки, сроки поставки и бюджет, \
                  затем предложил подходящий тариф и договорился о следующем звонке в пятницу.";
        let en = "The manager uncovered the client's needs, volume, timing and budget, then \
                  offered the plan that fits and agreed on a follow-up call on Friday.";
        assert!(
            compression_ratio(ru) < MAX_RATIO,
            "{}",
            compression_ratio(ru)
        );
        assert!(
            compression_ratio(en) < MAX_RATIO,
            "{}",
            compression_ratio(en)
        );
    }
}
