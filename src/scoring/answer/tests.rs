use serde_json::json;

use super::*;
use crate::rubric::RubricSet;

fn rubric() -> Rubric {
    RubricSet::builtin()
        .get("sales-standard", "en")
        .expect("builtin")
        .rubric
        .clone()
}

fn good() -> Value {
    let c =
        |a: Value| json!({"answer": a, "rationale": "Because.", "quotes": ["hello there friend"]});
    json!({
        "criteria": {
            "greeting": c(json!(2)), "needs_discovery": c(json!(1)), "presentation": c(json!(2)),
            "objection_handling": c(Value::Null), "closing": c(json!(0)),
        },
        "strengths": [{"text": "Warm opening", "quote": "hello there friend"}],
        "improvements": [{"text": "Ask more", "quote": "ok", "better_phrasing": "What matters most to you?"}],
        "next_steps": [{"action": "Send the proposal", "owner": "manager", "due_in_days": 2}],
    })
}

#[test]
fn a_good_answer_parses_in_scorecard_order() {
    let a = parse(&good(), &rubric()).expect("valid");
    let ids: Vec<_> = a.criteria.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "greeting",
            "needs_discovery",
            "presentation",
            "objection_handling",
            "closing"
        ]
    );
    assert_eq!(
        a.criteria[3].answer, None,
        "objections may be not applicable"
    );
    assert_eq!(a.next_steps[0].due_in_days, Some(2.0));
}

#[test]
fn missing_criteria_out_of_range_answers_and_bad_na_are_refused() {
    let mut v = good();
    v["criteria"]
        .as_object_mut()
        .expect("object")
        .remove("closing");
    v["criteria"]["greeting"]["answer"] = json!(7);
    v["criteria"]["presentation"]["answer"] = Value::Null;
    let err = parse(&v, &rubric()).expect_err("invalid");
    assert!(err.contains("closing is missing"), "{err}");
    assert!(err.contains("greeting: answer 7"), "{err}");
    assert!(err.contains("presentation: answer null"), "{err}");
}

/// Text that reads like language: words of pseudo-random letters (no loop for the degenerate
/// checks to find).
fn prose(chars: usize) -> String {
    let mut x = 7u64;
    let mut out = String::new();
    while out.chars().count() < chars {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = 2 + (x >> 60) as usize % 8;
        for i in 0..len {
            out.push(char::from(b'a' + ((x >> (i * 5 + 3)) % 26) as u8));
        }
        out.push(' ');
    }
    out
}

#[test]
fn long_texts_are_capped_not_refused() {
    let mut v = good();
    v["criteria"]["greeting"]["rationale"] = json!(prose(5000));
    let a = parse(&v, &rubric()).expect("valid");
    assert_eq!(a.criteria[0].rationale.chars().count(), MAX_TEXT);
    assert!(a.dropped.is_empty(), "{:?}", a.dropped);
}

#[test]
fn degenerate_texts_are_dropped_with_where_and_why_and_real_ones_kept() {
    let mut v = good();
    v["criteria"]["greeting"]["rationale"] = json!("x".repeat(5000));
    v["criteria"]["closing"]["quotes"] = json!(["1.1.1.1.1.1", "hello there friend"]);
    v["strengths"] = json!([{"text": "text", "quote": "hello there friend"},
                            {"text": "Warm opening", "quote": "ok ok ok ok ok"}]);
    v["next_steps"] = json!([{"action": "action action action", "owner": "manager"},
                             {"action": "Send the proposal", "owner": "manager"}]);
    let a = parse(&v, &rubric()).expect("parsed, with drops");
    assert_eq!(a.criteria[0].rationale, "");
    assert_eq!(
        a.criteria[0].dropped,
        ["criterion greeting: rationale repeats one fragment over and over"]
    );
    assert_eq!(a.criteria[4].quotes, ["hello there friend"]);
    assert_eq!(
        a.strengths.len(),
        1,
        "the point whose text is a field name goes whole"
    );
    assert_eq!(a.strengths[0].text, "Warm opening");
    assert_eq!(a.strengths[0].quote, None, "its looping quote goes");
    assert_eq!(a.next_steps.len(), 1);
    assert_eq!(a.dropped.len(), 5, "{:?}", a.dropped);
    assert!(a.usable());
}

#[test]
fn the_schema_requires_every_criterion_and_bounds_every_string() {
    let s = schema(&rubric());
    let required = s["properties"]["criteria"]["required"]
        .as_array()
        .expect("array");
    assert_eq!(required.len(), 5);
    assert_eq!(
        s["properties"]["criteria"]["properties"]["objection_handling"]["properties"]["answer"]
            ["enum"],
        json!([0, 1, 2, null])
    );
    assert_eq!(
        s["properties"]["criteria"]["properties"]["closing"]["properties"]["answer"]["enum"],
        json!([0, 1, 2])
    );
    let text = s.to_string();
    assert_eq!(
        text.matches("\"type\":\"string\"").count(),
        text.matches("maxLength").count()
    );
}

#[test]
fn parts_merge_to_the_best_answer_per_criterion_and_the_last_next_steps() {
    let r = rubric();
    let mut first = parse(&good(), &r).expect("valid");
    let mut second = first.clone();
    first.criteria[4].answer = Some(0);
    second.criteria[4].answer = Some(2);
    second.criteria[4].rationale = "Agreed a demo on Thursday.".into();
    second.criteria[0].answer = Some(0);
    second.next_steps[0].action = "Hold the demo".into();
    let m = merge(vec![first, second]).expect("merged");
    assert_eq!(m.criteria[4].answer, Some(2));
    assert_eq!(m.criteria[4].rationale, "Agreed a demo on Thursday.");
    assert_eq!(
        m.criteria[0].answer,
        Some(2),
        "the greeting happened in part one"
    );
    assert_eq!(m.next_steps[0].action, "Hold the demo");
    assert_eq!(m.strengths.len(), 2);
}
