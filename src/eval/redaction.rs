//! `callgrade eval redaction [FILE]`: how much personal data the redaction finds, and how much
//! it takes that is not personal data, on a labelled set of utterances.
//!
//! The set (by default the one compiled in, `tests/redaction/labelled.jsonl`, written by
//! `scripts/redaction-set.py`) holds one utterance per line with its personal data marked by
//! kind and exact text, plus look-alikes (prices, dates, order numbers, quantities) that must
//! stay. A true span is **found** when a find of the same kind covers all its words and
//! reaches at most two words beyond it on either side (a digit group left visible is a leak,
//! not a find). A find that matches no true span is a **false positive**.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use super::write_json;
use crate::redact::detect::find;
use crate::redact::Kind;

/// The labelled set the tests and the default run use.
pub const BUILTIN: &str = include_str!("../../tests/redaction/labelled.jsonl");

/// How many words a find may reach past its true span on either side.
const SLACK: usize = 2;

/// Options of `callgrade eval redaction`.
#[derive(Debug, Args)]
pub struct EvalRedactionArgs {
    /// A labelled set in the JSON-lines format of `tests/redaction/labelled.jsonl` (default:
    /// that set, compiled in).
    pub file: Option<PathBuf>,
    /// Also write the figures as JSON to this file (`-`: standard output).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One labelled utterance.
#[derive(Debug, Deserialize)]
pub struct Utterance {
    /// `ru` or `en`.
    pub lang: String,
    /// `written`, `spoken` or `look-alike`.
    pub form: String,
    /// What the recogniser wrote.
    pub text: String,
    /// The personal data in it.
    pub spans: Vec<TrueSpan>,
}

/// Personal data marked in an utterance.
#[derive(Debug, Deserialize)]
pub struct TrueSpan {
    /// Its kind.
    pub kind: Kind,
    /// Its exact text in the utterance.
    pub text: String,
}

/// One kind's figures.
#[derive(Debug, Default, Clone, Serialize)]
pub struct KindFigures {
    /// True spans.
    pub spans: usize,
    /// True spans found.
    pub found: usize,
    /// Finds of this kind that match no true span.
    pub false_positives: usize,
}

impl KindFigures {
    /// Found / spans.
    pub fn recall(&self) -> f64 {
        self.found as f64 / self.spans.max(1) as f64
    }

    /// Right finds / all finds.
    pub fn precision(&self) -> f64 {
        let finds = self.found + self.false_positives;
        if finds == 0 {
            1.0
        } else {
            self.found as f64 / finds as f64
        }
    }
}

/// The whole set's figures.
#[derive(Debug, Default, Serialize)]
pub struct RedactionFigures {
    /// Utterances read.
    pub utterances: usize,
    /// Look-alike utterances with any find.
    pub look_alikes_touched: usize,
    /// Look-alike utterances.
    pub look_alikes: usize,
    /// Per kind.
    pub kinds: BTreeMap<String, KindFigures>,
    /// The spans missed and the false positives, for reading.
    pub misses: Vec<String>,
}

/// The words of `text` that `part` covers (the first occurrence).
fn token_range(text: &str, part: &str) -> Option<(usize, usize)> {
    let at = text.find(part)?;
    let end = at + part.len();
    let mut first = None;
    let mut last = None;
    let mut pos = 0;
    for (i, token) in text.split_whitespace().enumerate() {
        let start = pos + text[pos..].find(token)?;
        let stop = start + token.len();
        pos = stop;
        if stop > at && start < end {
            first.get_or_insert(i);
            last = Some(i);
        }
    }
    Some((first?, last?))
}

/// Reads a labelled set.
pub fn parse(text: &str) -> anyhow::Result<Vec<Utterance>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}", i + 1)))
        .collect()
}

/// The figures of `set`.
pub fn measure(set: &[Utterance]) -> anyhow::Result<RedactionFigures> {
    let mut figures = RedactionFigures {
        utterances: set.len(),
        ..Default::default()
    };
    for kind in Kind::ALL {
        figures
            .kinds
            .insert(kind.to_string(), KindFigures::default());
    }
    for u in set {
        let tokens: Vec<String> = u.text.split_whitespace().map(str::to_string).collect();
        let finds = find(&tokens);
        let mut used = vec![false; finds.len()];
        for span in &u.spans {
            let (first, last) = token_range(&u.text, &span.text)
                .with_context(|| format!("{:?} is not in {:?}", span.text, u.text))?;
            let entry = figures.kinds.entry(span.kind.to_string()).or_default();
            entry.spans += 1;
            let hit = finds.iter().position(|f| {
                f.kind == span.kind
                    && f.first <= first
                    && f.last >= last
                    && f.first + SLACK >= first
                    && f.last <= last + SLACK
            });
            match hit {
                Some(i) => {
                    entry.found += 1;
                    used[i] = true;
                }
                None => figures.misses.push(format!(
                    "missed {} in [{}] {:?} (found {:?})",
                    span.kind, u.lang, u.text, finds
                )),
            }
        }
        if u.spans.is_empty() {
            figures.look_alikes += 1;
            if !finds.is_empty() {
                figures.look_alikes_touched += 1;
            }
        }
        for (f, used) in finds.iter().zip(used) {
            if !used {
                figures
                    .kinds
                    .entry(f.kind.to_string())
                    .or_default()
                    .false_positives += 1;
                figures.misses.push(format!(
                    "false {} at words {}..={} in [{}] {:?}",
                    f.kind, f.first, f.last, u.lang, u.text
                ));
            }
        }
    }
    Ok(figures)
}

/// The targets of issue 15: recall for cards, phones and e-mails, for the rest, and precision.
pub fn target_recall(kind: Kind) -> f64 {
    match kind {
        Kind::Card | Kind::Phone | Kind::Email => 0.98,
        _ => 0.95,
    }
}

/// Precision every kind must reach.
pub const TARGET_PRECISION: f64 = 0.95;

/// Runs `callgrade eval redaction`.
pub fn run(args: EvalRedactionArgs) -> anyhow::Result<()> {
    let text = match &args.file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => BUILTIN.to_string(),
    };
    let set = parse(&text)?;
    let started = std::time::Instant::now();
    let figures = measure(&set)?;
    let elapsed = started.elapsed();
    println!("| kind | spans | found | false positives | recall | precision | target recall |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for kind in Kind::ALL {
        let f = &figures.kinds[kind.as_str()];
        println!(
            "| {kind} | {} | {} | {} | {:.3} | {:.3} | {:.2} |",
            f.spans,
            f.found,
            f.false_positives,
            f.recall(),
            f.precision(),
            target_recall(*kind)
        );
    }
    println!(
        "{} utterances; {} of {} look-alikes touched; {:.1} µs per utterance",
        figures.utterances,
        figures.look_alikes_touched,
        figures.look_alikes,
        elapsed.as_secs_f64() * 1e6 / figures.utterances.max(1) as f64
    );
    for line in &figures.misses {
        eprintln!("{line}");
    }
    if let Some(path) = &args.json {
        write_json(path, &figures)?;
    }
    Ok(())
}
