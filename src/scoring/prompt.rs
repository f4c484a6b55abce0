//! Prompts: the templates in `prompts/`, rendered with the scorecard and a compact transcript.
//!
//! The transcript goes in as `[01:23] M: ...` / `C: ...` lines, one per segment: a fraction
//! of the tokens of the JSON document, and the form the model quotes from. Calls too long for
//! the model's context are split by time into parts that each fit; the parts are judged one by
//! one and merged (see [`super::merge`]), never truncated.

use minijinja::{context, Environment};
use serde::Serialize;

use crate::domain::Language;
use sha2::{Digest, Sha256};

use crate::domain::Speaker;
use crate::llm::estimate_tokens;
use crate::rubric::{Criterion, Rubric};
use crate::transcript::Segment;

const TEMPLATES: [(&str, &str); 5] = [
    ("en/system.j2", include_str!("../../prompts/en/system.j2")),
    ("en/user.j2", include_str!("../../prompts/en/user.j2")),
    ("ru/system.j2", include_str!("../../prompts/ru/system.j2")),
    ("ru/user.j2", include_str!("../../prompts/ru/user.j2")),
    ("repair.j2", include_str!("../../prompts/repair.j2")),
];

/// A failure to render a template (a bug in a template file).
#[derive(Debug, thiserror::Error)]
#[error("prompt template: {0}")]
pub struct PromptError(#[from] minijinja::Error);

/// The compiled templates.
pub struct Prompts {
    env: Environment<'static>,
    hash: String,
}

/// One line of the compact transcript.
#[derive(Debug, Clone)]
pub struct Line {
    /// Start, seconds.
    pub start: f64,
    /// The rendered line.
    pub text: String,
}

/// What the user prompt is rendered with.
pub struct CallContext<'a> {
    /// The scorecard.
    pub rubric: &'a Rubric,
    /// Its version.
    pub version: i64,
    /// The call's length, seconds.
    pub duration_s: f64,
    /// The day it took place, `YYYY-MM-DD`.
    pub started_on: Option<String>,
    /// The language to write rationales and coaching in.
    pub output_language: Language,
    /// The transcript's voices were separated from a mono recording and their roles are not
    /// known (`S1:`/`S2:` lines): the model is told so instead of being left to guess.
    pub roles_unknown: bool,
}

#[derive(Serialize)]
struct CriterionView<'a> {
    #[serde(flatten)]
    criterion: &'a Criterion,
    section: &'a str,
}

impl Default for Prompts {
    fn default() -> Self {
        Self::new()
    }
}

impl Prompts {
    /// Compiles the embedded templates.
    pub fn new() -> Self {
        let mut env = Environment::new();
        let mut hasher = Sha256::new();
        for (name, source) in TEMPLATES {
            hasher.update(name.as_bytes());
            hasher.update(source.as_bytes());
            // The templates are compiled in; the snapshot tests render every one of them.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!("prompt template {name}: {e}");
            }
        }
        Self {
            env,
            hash: hex::encode(hasher.finalize())[..16].to_string(),
        }
    }

    /// Short SHA-256 of every template, recorded with each score.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The prompts' folder for a scorecard in `language`.
    fn dir(language: &str) -> &'static str {
        Language::of_code(language).as_str()
    }

    /// The system prompt in the scorecard's language.
    pub fn system(&self, ctx: &CallContext<'_>) -> Result<String, PromptError> {
        let t = self
            .env
            .get_template(&format!("{}/system.j2", Self::dir(&ctx.rubric.language)))?;
        let output_language = match ctx.output_language {
            Language::Ru => "русский",
            _ => "English",
        };
        let roles_unknown = ctx.roles_unknown;
        Ok(t.render(context! { output_language, roles_unknown })?)
    }

    /// The user prompt for part `part` (1-based) of `parts`, holding `lines`.
    pub fn user(
        &self,
        ctx: &CallContext<'_>,
        lines: &[Line],
        part: usize,
        parts: usize,
    ) -> Result<String, PromptError> {
        let t = self
            .env
            .get_template(&format!("{}/user.j2", Self::dir(&ctx.rubric.language)))?;
        let criteria: Vec<_> = ctx
            .rubric
            .criteria()
            .map(|(s, c)| CriterionView {
                criterion: c,
                section: &s.title,
            })
            .collect();
        let transcript = lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        Ok(t.render(context! {
            rubric => ctx.rubric,
            version => ctx.version,
            criteria => criteria,
            any_na => ctx.rubric.criteria().any(|(_, c)| c.na_allowed),
            duration => clock(ctx.duration_s),
            started_on => ctx.started_on,
            parts => parts,
            part => part,
            part_from => lines.first().map(|l| clock(l.start)).unwrap_or_default(),
            part_to => lines.last().map(|l| clock(l.start)).unwrap_or_default(),
            transcript => transcript,
        })?)
    }

    /// The follow-up message asking for a corrected answer.
    pub fn repair(
        &self,
        rubric: &Rubric,
        problems: &str,
        truncated: bool,
    ) -> Result<String, PromptError> {
        let ids = rubric
            .criteria()
            .map(|(_, c)| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let t = self.env.get_template("repair.j2")?;
        Ok(t.render(context! { problems => problems, truncated => truncated, ids => ids })?)
    }
}

/// `mm:ss` (or `h:mm:ss`).
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).floor() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// The transcript as prompt lines. What speakers said is made inert first ([`inert`]), so no
/// line can end the transcript early or pass itself off as another speaker's line.
pub fn lines(segments: &[Segment]) -> Vec<Line> {
    segments
        .iter()
        .filter(|s| !s.text.trim().is_empty())
        .map(|s| {
            let who = match s.speaker {
                Speaker::Manager => "M",
                Speaker::Client => "C",
                Speaker::Unknown => "?",
                Speaker::Speaker1 => "S1",
                Speaker::Speaker2 => "S2",
                Speaker::Speaker3 => "S3",
                Speaker::Speaker4 => "S4",
            };
            let said = inert(&s.text);
            Line {
                start: s.start,
                text: format!("[{}] {who}: {}", clock(s.start), said.trim()),
            }
        })
        .collect()
}

/// What a speaker said, made safe to put between the transcript's fences:
/// - every line break (including U+2028/U+2029, CR, form feeds) becomes a space, so a speaker's
///   words stay on their own line and cannot start a new `[mm:ss] M:` line;
/// - invisible format characters (zero-width spaces and joiners, bidi overrides) are dropped;
/// - the fence words in any case, spelled with look-alike letters (Cyrillic, Greek, full-width)
///   or split by invisible characters, become `transcript-start` / `transcript-end`;
/// - a time-stamped speaker label inside the text, `[01:02] C:`, loses its brackets.
pub fn inert(text: &str) -> String {
    let flat: String = text
        .chars()
        .filter(|&c| !is_invisible(c))
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    let defenced = defence(&flat);
    fake_label()
        .replace_all(&defenced, "($1) $2:")
        .trim()
        .to_string()
}

/// Format characters that render as nothing (Unicode category Cf, the common ones).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
}

/// The Latin capital a letter looks like, for the letters of the fence words.
fn skeleton(c: char) -> char {
    let c = match c {
        // Full-width Latin.
        '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
            char::from_u32(u32::from(c) - 0xFF21 + 0x41).unwrap_or(c)
        }
        // Cyrillic look-alikes.
        'А' | 'а' => 'A',
        'В' | 'в' => 'B',
        'Е' | 'е' | 'Ё' | 'ё' => 'E',
        'К' | 'к' => 'K',
        'М' | 'м' => 'M',
        'Н' | 'н' => 'H',
        'О' | 'о' => 'O',
        'Р' | 'р' => 'P',
        'С' | 'с' => 'C',
        'Т' | 'т' => 'T',
        'Х' | 'х' => 'X',
        'У' | 'у' => 'Y',
        'І' | 'і' => 'I',
        'Ѕ' | 'ѕ' => 'S',
        'Ј' | 'ј' => 'J',
        'Ԁ' | 'ԁ' => 'D',
        'Ԛ' | 'ԛ' => 'Q',
        'Ԝ' | 'ԝ' => 'W',
        'п' => 'N',
        // Greek look-alikes.
        'Α' | 'α' => 'A',
        'Β' | 'β' => 'B',
        'Ε' | 'ε' => 'E',
        'Ι' | 'ι' => 'I',
        'Κ' | 'κ' => 'K',
        'Μ' => 'M',
        'Ν' | 'ν' => 'N',
        'Ο' | 'ο' => 'O',
        'Ρ' | 'ρ' => 'P',
        'Τ' | 'τ' => 'T',
        'Χ' | 'χ' => 'X',
        'Υ' | 'υ' => 'Y',
        'Ζ' => 'Z',
        'Η' => 'H',
        other => other,
    };
    c.to_ascii_uppercase()
}

/// Replaces every spelling of the fence phrases in `text` (see [`inert`]).
fn defence(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let shape: String = chars.iter().map(|&c| skeleton(c)).collect();
    // Every char maps to one char, so positions in `shape` are positions in `chars`.
    let shape: Vec<char> = shape.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    'scan: while i < chars.len() {
        for (word, replacement) in [
            ("START", "transcript-start"),
            ("END", "transcript-end"),
            ("BEGIN", "transcript-start"),
        ] {
            if let Some(len) = fence_at(&shape[i..], word) {
                out.push_str(replacement);
                i += len;
                continue 'scan;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The length of `TRANSCRIPT <word>` at the start of `shape` (any separators between the two
/// words), if it is there.
fn fence_at(shape: &[char], word: &str) -> Option<usize> {
    let first: Vec<char> = "TRANSCRIPT".chars().collect();
    if shape.len() < first.len() || shape[..first.len()] != first[..] {
        return None;
    }
    let mut j = first.len();
    while j < shape.len() && !shape[j].is_alphanumeric() {
        j += 1;
    }
    let word: Vec<char> = word.chars().collect();
    (shape.len() >= j + word.len() && shape[j..j + word.len()] == word[..])
        .then_some(j + word.len())
}

/// `[mm:ss] X:` or `[h:mm:ss] X:` inside a line: a speaker label someone said aloud.
fn fake_label() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"\[\s*(\d{1,2}(?::\d{2}){1,2})\s*\]\s*([MCmcМСмс?])\s*:")
            .unwrap_or_else(|_| regex::Regex::new("$^").expect("empty pattern"))
    })
}

/// Splits `lines` into consecutive parts of at most `budget` estimated tokens each (a line
/// longer than the budget gets a part of its own).
pub fn split(lines: Vec<Line>, budget: u64) -> Vec<Vec<Line>> {
    let mut parts: Vec<Vec<Line>> = vec![];
    let mut current: Vec<Line> = vec![];
    let mut used = 0u64;
    for line in lines {
        let cost = estimate_tokens(&line.text) + 1;
        if !current.is_empty() && used + cost > budget {
            parts.push(std::mem::take(&mut current));
            used = 0;
        }
        used += cost;
        current.push(line);
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests;
