//! What a failed call tells its readers: the failure in plain words, without the internals that
//! the job's own error keeps for admins (issue 14, item 13). Managers read a call's failure
//! reason; they have no business learning the LLM server's address, a database host or which
//! worker machine ran the job.

use std::sync::OnceLock;

use regex::Regex;

/// `message` with URLs, IP addresses (with their ports), `host:port` pairs and the given names
/// (this worker's id, this machine's host name) replaced by neutral words.
pub fn public_reason(message: &str, names: &[&str]) -> String {
    static PATTERNS: OnceLock<[(Regex, &'static str); 3]> = OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        let re = |p: &str| Regex::new(p).unwrap_or_else(|_| Regex::new("$^").expect("empty"));
        [
            (re(r#"(?i)\b[a-z][a-z0-9+.-]*://[^\s)"'>]+"#), "[server]"),
            (
                re(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b|\[[0-9a-fA-F:]+\](?::\d+)?"),
                "[server]",
            ),
            (
                re(r"(?i)\b[a-z0-9-]*[a-z][a-z0-9.-]*:\d{2,5}\b"),
                "[server]",
            ),
        ]
    });
    let mut text = message.to_string();
    for name in names.iter().filter(|n| n.len() >= 3) {
        text = text.replace(name, "[worker]");
    }
    for (pattern, word) in patterns {
        text = pattern.replace_all(&text, *word).into_owned();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::public_reason;

    #[test]
    fn addresses_hosts_and_worker_ids_are_replaced() {
        let worker = "gpu-box-7-4242-1a2b3c4d";
        let cases = [
            (
                "scoring failed: the LLM server is unavailable after 4 retries: error sending request for url (http://10.0.3.7:8080/v1/chat/completions)",
                "scoring failed: the LLM server is unavailable after 4 retries: error sending request for url ([server])",
            ),
            ("connection refused by 192.168.1.20:5432", "connection refused by [server]"),
            ("db.internal.example:5432 timed out", "[server] timed out"),
            ("lease lost by gpu-box-7-4242-1a2b3c4d", "lease lost by [worker]"),
            ("the model produced no usable text (qwen2.5:7b)", "the model produced no usable text (qwen2.5:7b)"),
            ("decoding failed: not an MP3 at 00:12", "decoding failed: not an MP3 at 00:12"),
        ];
        for (raw, shown) in cases {
            assert_eq!(public_reason(raw, &[worker, "gpu-box-7"]), shown, "{raw}");
        }
    }
}
