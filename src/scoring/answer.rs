//! The model's answer: the JSON Schema it is asked for, and parsing and validating what comes
//! back into typed structs. Nothing that fails validation is stored.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::degenerate;
use crate::rubric::Rubric;

/// Longest rationale or coaching text kept, in characters.
pub const MAX_TEXT: usize = 400;
/// Longest quote kept.
pub const MAX_QUOTE: usize = 300;
/// Quotes kept per criterion.
pub const MAX_QUOTES: usize = 3;
/// Strengths, improvements and next steps kept.
pub const MAX_POINTS: usize = 3;

/// A validated answer for one part of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// One judgement per criterion, in scorecard order.
    pub criteria: Vec<CriterionAnswer>,
    /// What went well.
    pub strengths: Vec<Point>,
    /// What to improve.
    pub improvements: Vec<Point>,
    /// Next steps for the deal.
    pub next_steps: Vec<Step>,
    /// What was dropped as not an answer (see [`degenerate`]), each as "where why".
    pub dropped: Vec<String>,
}

impl Answer {
    /// Whether anything written is left: a criterion's rationale or a coaching point. Levels
    /// alone, with every word around them degenerate, are not trusted.
    pub fn usable(&self) -> bool {
        self.criteria.iter().any(|c| !c.rationale.is_empty())
            || !self.strengths.is_empty()
            || !self.improvements.is_empty()
    }
}

/// One criterion's judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct CriterionAnswer {
    /// Criterion id.
    pub id: String,
    /// The answer; `None` = not applicable.
    pub answer: Option<u8>,
    /// Why.
    pub rationale: String,
    /// Quotes offered as evidence.
    pub quotes: Vec<String>,
    /// What of this criterion's text was dropped as not an answer, and why.
    pub dropped: Vec<String>,
}

/// A coaching point.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Point {
    /// The point.
    pub text: String,
    /// The moment it refers to.
    #[serde(default)]
    pub quote: Option<String>,
    /// A better phrasing (improvements).
    #[serde(default)]
    pub better_phrasing: Option<String>,
}

/// A next step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Step {
    /// What to do.
    pub action: String,
    /// Who.
    #[serde(default)]
    pub owner: Option<String>,
    /// Days after the call.
    #[serde(default)]
    pub due_in_days: Option<f64>,
}

/// The JSON Schema of the answer for `rubric`. String lengths and list sizes are bounded so a
/// small model cannot run on until the token limit cuts it off: filled to every bound, the
/// answer is about 2,220 characters. Russian averages 1.15 characters a token with SmolLM2's
/// tokenizer, but a greedy tiny model fills every field to its bound, and at ~2,850 characters
/// two of the four Russian demo calls ran past 3,000 tokens twice and failed; at one token a
/// character this answer still fits with its JSON in the 3,000 `llm.max_tokens` the demo and
/// tests give the local model, whose context (8,192) also holds a ~4,600-token Russian prompt.
/// Capable models write well inside these bounds.
pub fn schema(rubric: &Rubric) -> Value {
    let text = |max: usize| json!({"type": "string", "minLength": 1, "maxLength": max});
    let mut props = Map::new();
    let mut ids = vec![];
    for (_, c) in rubric.criteria() {
        let mut values: Vec<Value> = (0..=c.max()).map(|v| json!(v)).collect();
        if c.na_allowed {
            values.push(Value::Null);
        }
        props.insert(
            c.id.clone(),
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["answer", "rationale", "quotes"],
                "properties": {
                    "answer": {"enum": values},
                    "rationale": text(90),
                    "quotes": {"type": "array", "maxItems": 1, "items": text(90)},
                },
            }),
        );
        ids.push(json!(c.id));
    }
    let point = |with_phrasing: bool| {
        let mut p = json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["text", "quote"],
            "properties": {"text": text(80), "quote": text(70)},
        });
        if with_phrasing {
            p["required"] = json!(["text", "quote", "better_phrasing"]);
            p["properties"]["better_phrasing"] = text(80);
        }
        json!({"type": "array", "minItems": 1, "maxItems": 3, "items": p})
    };
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["criteria", "strengths", "improvements", "next_steps"],
        "properties": {
            "criteria": {
                "type": "object",
                "additionalProperties": false,
                "required": ids,
                "properties": props,
            },
            "strengths": point(false),
            "improvements": point(true),
            "next_steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["action", "owner", "due_in_days"],
                    "properties": {
                        "action": text(60),
                        "owner": {"enum": ["manager", "client", "both"]},
                        "due_in_days": {"type": "integer", "minimum": 0, "maximum": 90},
                    },
                },
            },
        },
    })
}

/// Parses and validates `value` against `rubric`. The error lists every problem, for the
/// repair request and, if that fails too, the job's failure reason.
pub fn parse(value: &Value, rubric: &Rubric) -> Result<Answer, String> {
    let mut problems = vec![];
    let criteria_obj = value.get("criteria").and_then(Value::as_object);
    if criteria_obj.is_none() {
        problems.push("\"criteria\" is missing or not an object".to_string());
    }
    let mut criteria = vec![];
    let mut dropped = vec![];
    for (_, c) in rubric.criteria() {
        let Some(entry) = criteria_obj.and_then(|o| o.get(&c.id)) else {
            if criteria_obj.is_some() {
                problems.push(format!("criterion {} is missing", c.id));
            }
            continue;
        };
        let answer = match entry.get("answer") {
            Some(Value::Null) | None if c.na_allowed => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && (0.0..=f64::from(c.max())).contains(&f) => {
                    Some(f as u8)
                }
                _ => {
                    problems.push(format!(
                        "criterion {}: answer {n} is outside 0..{}",
                        c.id,
                        c.max()
                    ));
                    continue;
                }
            },
            Some(Value::String(s)) if s.trim().parse::<u8>().is_ok_and(|v| v <= c.max()) => {
                s.trim().parse::<u8>().ok()
            }
            other => {
                problems.push(format!(
                    "criterion {}: answer {} is not a number 0..{}{}",
                    c.id,
                    other
                        .map(Value::to_string)
                        .unwrap_or_else(|| "(none)".into()),
                    c.max(),
                    if c.na_allowed { " or null" } else { "" }
                ));
                continue;
            }
        };
        let mut own_drops = vec![];
        let names = ["rationale", c.id.as_str(), c.title.as_str()];
        let rationale = entry
            .get("rationale")
            .and_then(Value::as_str)
            .map(|s| cap(s, MAX_TEXT))
            .unwrap_or_default();
        let rationale = keep(
            rationale,
            &names,
            &format!("criterion {}: rationale", c.id),
            &mut own_drops,
        );
        if rationale.is_empty() && own_drops.is_empty() {
            problems.push(format!("criterion {}: rationale is empty", c.id));
        }
        let quotes = entry
            .get("quotes")
            .and_then(Value::as_array)
            .map(|qs| {
                qs.iter()
                    .filter_map(Value::as_str)
                    .map(|q| cap(q, MAX_QUOTE))
                    .filter_map(|q| {
                        let place = format!("criterion {}: quote", c.id);
                        Some(keep(
                            q,
                            &["quote", "quotes", c.id.as_str()],
                            &place,
                            &mut own_drops,
                        ))
                        .filter(|q| !q.is_empty())
                    })
                    .take(MAX_QUOTES)
                    .collect()
            })
            .unwrap_or_default();
        dropped.extend(own_drops.iter().cloned());
        criteria.push(CriterionAnswer {
            id: c.id.clone(),
            answer,
            rationale,
            quotes,
            dropped: own_drops,
        });
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let mut points = |key: &str| -> Vec<Point> {
        let items = value.get(key).and_then(Value::as_array);
        let mut kept = vec![];
        for (n, p) in items
            .into_iter()
            .flatten()
            .filter_map(|i| serde_json::from_value::<Point>(i.clone()).ok())
            .enumerate()
        {
            let place = |field: &str| format!("{key} {}: {field}", n + 1);
            let text = keep(
                cap(&p.text, MAX_TEXT),
                &["text", key],
                &place("text"),
                &mut dropped,
            );
            if text.is_empty() {
                continue;
            }
            let mut optional = |v: Option<String>, max: usize, field: &str| {
                v.map(|v| keep(cap(&v, max), &[field], &place(field), &mut dropped))
                    .filter(|v| !v.is_empty())
            };
            let quote = optional(p.quote, MAX_QUOTE, "quote");
            let better_phrasing = optional(p.better_phrasing, MAX_TEXT, "better_phrasing");
            kept.push(Point {
                text,
                quote,
                better_phrasing,
            });
        }
        kept.truncate(MAX_POINTS);
        kept
    };
    let strengths = points("strengths");
    let improvements = points("improvements");
    let next_steps = value
        .get("next_steps")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| serde_json::from_value::<Step>(i.clone()).ok())
                .enumerate()
                .filter_map(|(n, s)| {
                    let place = format!("next_steps {}: action", n + 1);
                    let action = keep(cap(&s.action, MAX_TEXT), &["action"], &place, &mut dropped);
                    (!action.is_empty()).then_some(Step { action, ..s })
                })
                .map(|s| Step {
                    action: s.action,
                    owner: s
                        .owner
                        .filter(|o| matches!(o.as_str(), "manager" | "client" | "both")),
                    due_in_days: s
                        .due_in_days
                        .filter(|d| d.is_finite() && (0.0..=365.0).contains(d)),
                })
                .take(MAX_POINTS)
                .collect()
        })
        .unwrap_or_default();
    Ok(Answer {
        criteria,
        strengths,
        improvements,
        next_steps,
        dropped,
    })
}

/// `text`, or nothing when it is degenerate (the drop noted in `dropped` as "place why").
fn keep(text: String, names: &[&str], place: &str, dropped: &mut Vec<String>) -> String {
    match degenerate::check(&text, names) {
        None => text,
        Some(why) => {
            // Where and why only: the text itself is not kept anywhere.
            dropped.push(format!("{place} {}", why.describe()));
            String::new()
        }
    }
}

/// Trims and caps `s` at `max` characters.
fn cap(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Merges the answers for the parts of a long call: a criterion takes its best answer over
/// the parts (each part is judged only on what happens in it, so a behaviour done in any part
/// counts), with that part's rationale and quotes; coaching points are pooled; next steps
/// come from the last part that gave any, since the close is where they are agreed.
pub fn merge(parts: Vec<Answer>) -> Option<Answer> {
    let mut parts = parts.into_iter();
    let mut merged = parts.next()?;
    for part in parts {
        for (m, p) in merged.criteria.iter_mut().zip(part.criteria) {
            let better = match (m.answer, p.answer) {
                (None, Some(_)) => true,
                (Some(a), Some(b)) => b > a,
                _ => false,
            };
            if better {
                *m = p;
            }
        }
        merged.strengths.extend(part.strengths);
        merged.improvements.extend(part.improvements);
        merged.dropped.extend(part.dropped);
        if !part.next_steps.is_empty() {
            merged.next_steps = part.next_steps;
        }
    }
    merged.strengths.truncate(MAX_POINTS);
    merged.improvements.truncate(MAX_POINTS);
    Some(merged)
}

#[cfg(test)]
mod tests;
