//! Conversation metrics against the ground truth of the shared call corpus: fed the true turns,
//! they must give the true talk times and interruption counts.

use callgrade::domain::Speaker;
use callgrade::transcript::metrics::{compute, MetricsConfig};
use callgrade::transcript::Segment;

pub fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/calls")
}

#[test]
fn true_turns_give_the_true_talk_times_and_interruptions() {
    let mut checked = 0;
    for entry in std::fs::read_dir(corpus_dir()).expect("../shared/testdata/calls") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let truth: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let segments: Vec<Segment> = truth["turns"]
            .as_array()
            .expect("turns")
            .iter()
            .map(|t| Segment {
                speaker: t["speaker"]
                    .as_str()
                    .expect("speaker")
                    .parse()
                    .expect("known speaker"),
                start: t["start_s"].as_f64().expect("start"),
                end: t["end_s"].as_f64().expect("end"),
                text: t["text"].as_str().expect("text").to_string(),
                confidence: 1.0,
                words: vec![],
            })
            .collect();
        let language = truth["language"].as_str().expect("language");
        let m = compute(
            &segments,
            truth["duration_s"].as_f64().expect("duration"),
            callgrade::domain::Language::of_code(language),
            &MetricsConfig::default(),
        );
        let name = path.display();
        assert_eq!(
            u64::from(m.interruptions),
            truth["interruptions"].as_u64().expect("interruptions"),
            "{name}"
        );
        for sp in [Speaker::Manager, Speaker::Client] {
            let want = truth["talk_seconds"][sp.as_str()].as_f64().expect("talk");
            let got = m
                .speakers
                .iter()
                .find(|s| s.speaker == sp)
                .expect("speaker")
                .talk_seconds;
            assert!(
                (got - want).abs() <= 0.01 * want,
                "{name} {sp}: {got} vs {want}"
            );
        }
        assert!(
            m.manager_questions > 0,
            "{name}: every scripted call has manager questions"
        );
        checked += 1;
    }
    assert!(checked >= 10, "checked {checked} calls");
}
