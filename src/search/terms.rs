//! Words and their stems: the one function that both the index and a query go through, so a
//! query term and an indexed term are equal exactly when their words share a stem.
//!
//! A word is a run of letters and digits (an apostrophe between two of them stays inside:
//! "client's", "don't"). It is lower-cased, "ё" becomes "е", and it is stemmed by the Snowball
//! stemmer of its own script: Russian for a word with a Cyrillic letter, English for one with a
//! Latin letter, none for the rest (numbers, other scripts). The script decides, not the
//! transcript's language: a query has no language, Russian calls are full of English product
//! names, and an `auto` transcript may be either; a word's script is the same wherever it is.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// Longest word indexed, in characters. Longer runs are noise (a recogniser's loop, an id), and
/// PostgreSQL refuses a lexeme over 2 KiB.
const MAX_WORD_CHARS: usize = 64;

/// A word of a text: where it lies (bytes) and its stem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Its bytes in the text.
    pub range: Range<usize>,
    /// Its stem: lower-case letters and digits only.
    pub stem: String,
}

/// `text` in Unicode's composed form (NFC), so "й" typed as "и" plus a breve is one letter.
pub fn normalize(text: &str) -> Cow<'_, str> {
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => Cow::Borrowed(text),
        _ => Cow::Owned(text.nfc().collect()),
    }
}

/// The words of `text` (already [`normalize`]d) with their stems, in order.
pub fn words(text: &str) -> impl Iterator<Item = Word> + '_ {
    spans(text).filter_map(move |range| {
        let stem = stem(&text[range.clone()])?;
        Some(Word { range, stem })
    })
}

/// The stems of `text`'s words, in order.
pub fn stems(text: &str) -> Vec<String> {
    let text = normalize(text);
    words(&text).map(|w| w.stem).collect()
}

/// The stems of `text`'s words joined by spaces: what a segment's row holds.
pub fn stem_line(text: &str) -> String {
    stems(text).join(" ")
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// The byte ranges of the words of `text`.
fn spans(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        // Skip to the first letter or digit.
        let (start, _) = loop {
            let (i, c) = chars.next()?;
            if c.is_alphanumeric() {
                break (i, c);
            }
        };
        let mut end = text.len();
        while let Some(&(i, c)) = chars.peek() {
            if c.is_alphanumeric() {
                chars.next();
                continue;
            }
            // An apostrophe joins two letters ("don't"); anywhere else it ends the word.
            let joins = is_apostrophe(c)
                && text[i + c.len_utf8()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphanumeric);
            if joins {
                chars.next();
                continue;
            }
            end = i;
            break;
        }
        Some(start..end)
    })
}

fn russian() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::Russian))
}

fn english() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::English))
}

fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{052F}')
}

fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '\u{00C0}'..='\u{024F}')
}

/// The stem of one word; `None` for a word too long to index.
fn stem(word: &str) -> Option<String> {
    if word.chars().nth(MAX_WORD_CHARS).is_some() {
        return None;
    }
    let lower: String = word
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'ё' => 'е',
            // The English stemmer knows only the ASCII apostrophe ("client's" -> "client").
            '\u{2019}' => '\'',
            c => c,
        })
        .collect();
    let stemmed = if lower.chars().any(is_cyrillic) {
        russian().stem(&lower)
    } else if lower.chars().any(is_latin) {
        english().stem(&lower)
    } else {
        Cow::Borrowed(lower.as_str())
    };
    // What is left of an apostrophe ("don't" -> "dont"): the stems hold letters and digits
    // only, so neither FTS5 nor PostgreSQL splits or changes them.
    let stem: String = stemmed.chars().filter(|c| !is_apostrophe(*c)).collect();
    (!stem.is_empty()).then_some(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_word_forms_share_a_stem_and_yo_is_ye() {
        let forms = stems("цена цену цены ценой Цене");
        assert!(forms.iter().all(|s| s == &forms[0]), "{forms:?}");
        assert_eq!(stems("ЕЩЁ ещё еще"), stems("еще еще еще"));
        assert_eq!(stems("всё"), stems("все"));
    }

    #[test]
    fn english_word_forms_share_a_stem() {
        assert_eq!(stems("pricing Prices price"), ["price", "price", "price"]);
        assert_eq!(stems("client's clients"), ["client", "client"]);
        assert_eq!(stems("don't"), ["dont"]);
    }

    #[test]
    fn each_word_is_stemmed_by_its_own_script() {
        // An English product name in a Russian sentence, and numbers as they are.
        let s = stems("Тариф Pricing стоит 5000 рублей");
        assert_eq!(s.len(), 5, "{s:?}");
        assert_eq!((s[1].as_str(), s[3].as_str()), ("price", "5000"));
        assert_eq!(s[4], stems("рубль")[0]);
    }

    #[test]
    fn words_are_runs_of_letters_and_digits_with_their_places() {
        let text = "Ну, «цена» — 10%! e-mail";
        let words: Vec<(&str, String)> = words(text)
            .map(|w| (&text[w.range.clone()], w.stem))
            .collect();
        let places: Vec<&str> = words.iter().map(|w| w.0).collect();
        assert_eq!(places, ["Ну", "цена", "10", "e", "mail"]);
        assert_eq!(words[1].1, "цен");
        // A trailing or leading apostrophe is not part of the word.
        let places: Vec<Range<usize>> = super::words("'tis clients'").map(|w| w.range).collect();
        assert_eq!(places, [1..4, 5..12]);
    }

    #[test]
    fn decomposed_letters_are_composed_first() {
        // "й" as "и" + combining breve, as some keyboards and files send it.
        assert_eq!(stems("чаи\u{306}"), stems("чай"));
        assert_eq!(stems("чаи\u{306}").len(), 1);
    }

    #[test]
    fn overlong_runs_are_not_indexed() {
        let long = "a".repeat(MAX_WORD_CHARS + 1);
        assert_eq!(stems(&format!("{long} ok")), ["ok"]);
    }
}
