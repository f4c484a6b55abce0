//! The vocabulary: CTranslate2's `vocabulary.txt` holds GPT-2 byte-level tokens as printable
//! strings; whisper.cpp wants the raw bytes. GPT-2 maps every byte to a printable character
//! (`bytes_to_unicode`); this module inverts that map.

use std::collections::HashMap;

use super::ModelError;

/// Ordinary (non-special) tokens whisper.cpp reads from the file; it derives the special ones
/// (end of text, languages, tasks, timestamps) from the vocabulary size.
pub const TEXT_TOKENS: usize = 50_257;

/// GPT-2's printable character for each byte, inverted: character -> byte.
fn byte_decoder() -> HashMap<char, u8> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let mut map = HashMap::with_capacity(256);
    let mut next = 256u32;
    for b in 0u32..256 {
        let c = if printable(b) {
            b
        } else {
            let c = next;
            next += 1;
            c
        };
        if let (Some(ch), Ok(byte)) = (char::from_u32(c), u8::try_from(b)) {
            map.insert(ch, byte);
        }
    }
    map
}

/// The first [`TEXT_TOKENS`] tokens of `vocabulary.txt`, as raw bytes.
pub fn tokens_from_vocabulary(text: &str) -> Result<Vec<Vec<u8>>, ModelError> {
    let decoder = byte_decoder();
    let lines: Vec<&str> = text.lines().take(TEXT_TOKENS).collect();
    if lines.len() < TEXT_TOKENS {
        return Err(ModelError::Format(format!(
            "vocabulary.txt has {} tokens, whisper needs at least {TEXT_TOKENS}",
            lines.len()
        )));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            line.chars()
                .map(|c| {
                    decoder.get(&c).copied().ok_or_else(|| {
                        ModelError::Format(format!(
                            "vocabulary.txt line {}: {c:?} is not a GPT-2 byte character",
                            i + 1
                        ))
                    })
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_characters_map_back_to_their_bytes() {
        let d = byte_decoder();
        assert_eq!(d.len(), 256);
        assert_eq!(d[&'Ġ'], b' '); // GPT-2 writes a leading space as 'Ġ'
        assert_eq!(d[&'Ċ'], b'\n');
        assert_eq!(d[&'a'], b'a');
        // "привет" is UTF-8 bytes D0 BF D1 80 ...; GPT-2 shows D0 as 'Ð' and BF as '¿'.
        assert_eq!(d[&'Ð'], 0xD0);
        assert_eq!(d[&'¿'], 0xBF);
    }

    #[test]
    fn a_short_vocabulary_is_refused() {
        assert!(tokens_from_vocabulary("a\nb\n").is_err());
    }

    #[test]
    fn tokens_decode_to_raw_bytes() {
        let mut text = String::from("ĠHello\nÐ¿\n");
        for i in 2..TEXT_TOKENS {
            text.push_str(&format!("t{i}\n"));
        }
        let tokens = tokens_from_vocabulary(&text).expect("decodes");
        assert_eq!(tokens.len(), TEXT_TOKENS);
        assert_eq!(tokens[0], b" Hello");
        assert_eq!(tokens[1], vec![0xD0, 0xBF]);
    }
}
