//! Finding the JSON object in a model's text answer (fenced, prefixed with prose, or bare).

use serde_json::Value;

/// The first complete JSON object in `text` that parses, if any.
pub fn extract_object(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(trimmed) {
        return Some(v);
    }
    // Try each `{` in turn: serde's streaming reader stops at the end of the first value.
    for (start, _) in text.match_indices('{') {
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        if let Some(Ok(v @ Value::Object(_))) = stream.next() {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_json_bare_fenced_or_after_prose() {
        for text in [
            r#"{"a": 1}"#,
            "```json\n{\"a\": 1}\n```",
            "Sure! Here is the score:\n{\"a\": 1}\nHope this helps.",
            "{not json} then {\"a\": 1}",
        ] {
            assert_eq!(
                extract_object(text),
                Some(serde_json::json!({"a": 1})),
                "{text}"
            );
        }
    }

    #[test]
    fn nothing_when_there_is_no_complete_object() {
        assert_eq!(extract_object("no json here"), None);
        assert_eq!(extract_object("{\"a\": 1, \"b\": [1, 2"), None);
    }
}
