use super::*;

fn builtin(lang: &str) -> Rubric {
    RubricSet::builtin()
        .get("sales-standard", lang)
        .expect("builtin scorecard")
        .rubric
        .clone()
}

#[test]
fn builtin_standards_have_the_same_criteria_in_both_languages() {
    let ids = |r: &Rubric| r.criteria().map(|(_, c)| c.id.clone()).collect::<Vec<_>>();
    let (en, ru) = (builtin("en"), builtin("ru"));
    assert_eq!(
        ids(&en),
        [
            "greeting",
            "needs_discovery",
            "presentation",
            "objection_handling",
            "closing"
        ]
    );
    assert_eq!(ids(&en), ids(&ru));
    let critical = |r: &Rubric| {
        r.criteria()
            .filter(|(_, c)| c.critical)
            .map(|(_, c)| c.id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(critical(&en), ["closing"]);
    assert_eq!(critical(&ru), ["closing"]);
}

#[test]
fn answers_map_to_levels_and_values() {
    let en = builtin("en");
    let (_, c) = en.criterion("closing").expect("closing");
    assert_eq!(c.level(Some(0)), Level::Absent);
    assert_eq!(c.level(Some(1)), Level::Weak);
    assert_eq!(c.level(Some(2)), Level::Strong);
    assert_eq!(c.level(None), Level::Na);
    assert_eq!(c.value(Some(1)), Some(0.5));
    assert!(!c.accepts(None), "closing is never not-applicable");
    assert!(!c.accepts(Some(3)));
    let (_, o) = en.criterion("objection_handling").expect("objections");
    assert!(o.accepts(None));
}

#[test]
fn a_reformatted_file_keeps_its_hash_and_a_changed_one_does_not() {
    let text = include_str!("../../rubrics/sales-standard.en.toml");
    let a = Rubric::parse(text, "a").expect("parses");
    let b = Rubric::parse(&text.replace(" = ", "   =   "), "b").expect("parses");
    assert_eq!(a.content_hash(), b.content_hash());
    let c = Rubric::parse(&text.replace("weight = 1.5", "weight = 2.0"), "c").expect("parses");
    assert_ne!(a.content_hash(), c.content_hash());
}

#[test]
fn invalid_scorecards_are_refused_with_the_reason() {
    let text = include_str!("../../rubrics/sales-standard.en.toml");
    let cases = [
        (
            text.replace(
                "id = \"presentation\"\ntitle = \"Presentation tied",
                "id = \"greeting\"\ntitle = \"Presentation tied",
            ),
            "appears twice",
        ),
        (
            text.replace("language = \"en\"", "language = \"de\""),
            "language",
        ),
        (text.replace("weight = 1.5", "weight = 0"), "weight"),
        (
            text.replace("scale_max = 2\ncritical", "scale_max = 0\ncritical"),
            "scale_max",
        ),
        ("id = 3".to_string(), "scorecard"),
    ];
    for (bad, expected) in cases {
        let err = Rubric::parse(&bad, "bad.toml").expect_err("must be refused");
        assert!(
            err.to_string().contains(expected),
            "{err} should mention {expected}"
        );
    }
}
