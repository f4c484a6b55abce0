//! A hit's snippet: its segment's text in pieces, the words whose stem the query holds marked,
//! so a page can escape every piece and wrap the marked ones (no HTML is built here).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::terms::{normalize, words};

/// A piece of a snippet: a matched word, or the text between matched words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Piece {
    /// The text, as said (plain text: escape it to show it).
    pub text: String,
    /// Whether this is a word of the query.
    pub hit: bool,
}

/// Longest snippet, in characters; a longer segment is cut around its first match.
const MAX_CHARS: usize = 300;
/// Characters of context kept before the first match when a segment is cut.
const CONTEXT_BEFORE: usize = 80;
/// Marks where a cut segment goes on.
const ELLIPSIS: &str = "…";

/// `text` split into pieces, its words whose stem is one of `terms` marked as hits. A text
/// longer than [`MAX_CHARS`] is cut at word boundaries around its first hit.
pub fn snippet(text: &str, terms: &[String]) -> Vec<Piece> {
    let text = normalize(text);
    let text = text.trim();
    let spans: Vec<(std::ops::Range<usize>, bool)> = words(text)
        .map(|w| {
            let hit = terms.contains(&w.stem);
            (w.range, hit)
        })
        .collect();
    let (from, to) = window(text, &spans);
    let mut pieces: Vec<Piece> = Vec::new();
    let mut push = |s: &str, hit: bool| {
        if s.is_empty() {
            return;
        }
        match pieces.last_mut() {
            Some(last) if !last.hit && !hit => last.text.push_str(s),
            _ => pieces.push(Piece {
                text: s.to_string(),
                hit,
            }),
        }
    };
    if from > 0 {
        push(ELLIPSIS, false);
    }
    let mut at = from;
    for (range, hit) in spans.iter().filter(|(r, _)| r.start >= from && r.end <= to) {
        if *hit {
            push(&text[at..range.start], false);
            push(&text[range.clone()], true);
            at = range.end;
        }
    }
    push(&text[at..to], false);
    if to < text.len() {
        push(ELLIPSIS, false);
    }
    pieces
}

/// The byte range of `text` to show: all of it when short; else from a word shortly before the
/// first hit to the last word that fits in [`MAX_CHARS`].
fn window(text: &str, spans: &[(std::ops::Range<usize>, bool)]) -> (usize, usize) {
    let chars = |a: usize, b: usize| text[a..b].chars().count();
    if chars(0, text.len()) <= MAX_CHARS {
        return (0, text.len());
    }
    let first_hit = spans.iter().position(|(_, hit)| *hit).unwrap_or(0);
    let Some((hit_range, _)) = spans.get(first_hit) else {
        return (0, text.len());
    };
    // The earliest word that starts at most CONTEXT_BEFORE characters before the hit.
    let start = spans[..=first_hit]
        .iter()
        .find(|(r, _)| chars(r.start, hit_range.start) <= CONTEXT_BEFORE)
        .map_or(hit_range.start, |(r, _)| r.start);
    let start = if first_hit == 0 || spans[0].0.start == start {
        0
    } else {
        start
    };
    // The last word that ends within MAX_CHARS of the start (the hit itself at least).
    let end = spans[first_hit..]
        .iter()
        .take_while(|(r, _)| chars(start, r.end) <= MAX_CHARS)
        .last()
        .map_or(hit_range.end, |(r, _)| r.end);
    let end = if spans.last().is_some_and(|(r, _)| r.end == end) {
        text.len()
    } else {
        end
    };
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Query;

    fn marked(pieces: &[Piece]) -> String {
        pieces
            .iter()
            .map(|p| {
                if p.hit {
                    format!("[{}]", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    #[test]
    fn words_of_the_query_are_marked_in_any_form() {
        let q = Query::parse("цену").expect("query");
        let pieces = q.snippet("Какая цена? Цены выросли, а ценой мы недовольны.");
        assert_eq!(
            marked(&pieces),
            "Какая [цена]? [Цены] выросли, а [ценой] мы недовольны."
        );
        let q = Query::parse("ещё pricing").expect("query");
        assert_eq!(
            marked(&q.snippet("А еще — our pricing, the prices.")),
            "А [еще] — our [pricing], the [prices]."
        );
    }

    #[test]
    fn the_text_is_kept_whole_and_unescaped() {
        let q = Query::parse("script").expect("query");
        let text = "<script>alert(1)</script> & more";
        let pieces = q.snippet(text);
        let joined: String = pieces.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(joined, text);
        assert_eq!(marked(&pieces), "<[script]>alert(1)</[script]> & more");
    }

    #[test]
    fn a_long_segment_is_cut_around_its_first_hit() {
        let before = "слово ".repeat(100);
        let after = " другое".repeat(100);
        let text = format!("{before}наша цена{after}");
        let q = Query::parse("цена").expect("query");
        let pieces = q.snippet(&text);
        let shown = marked(&pieces);
        assert!(shown.starts_with("…слово"), "{shown}");
        assert!(shown.ends_with("другое…"), "{shown}");
        assert!(shown.contains("наша [цена] другое"), "{shown}");
        let len = shown.chars().count();
        assert!((200..=310).contains(&len), "{len}: {shown}");
        let before_hit = shown.split('[').next().map_or(0, |s| s.chars().count());
        assert!(before_hit <= CONTEXT_BEFORE + 2, "{before_hit}");
        // A short one is shown whole.
        assert_eq!(marked(&q.snippet("цена")), "[цена]");
    }
}
