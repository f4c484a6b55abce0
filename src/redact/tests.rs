use super::*;
use crate::domain::{CallId, Speaker};
use crate::transcript::{Processing, Segment, Transcript, Word};

fn finds(text: &str) -> Vec<(Kind, String)> {
    let tokens: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    detect::find(&tokens)
        .into_iter()
        .map(|f| (f.kind, tokens[f.first..=f.last].join(" ")))
        .collect()
}

#[test]
fn a_spoken_russian_phone_number_is_found_whole() {
    assert_eq!(
        finds("запишите восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь спасибо"),
        [(
            Kind::Phone,
            "восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь".into()
        )]
    );
}

#[test]
fn spoken_and_written_addresses_are_found() {
    assert_eq!(
        finds("пишите на иван собака мейл точка ру пожалуйста"),
        [(Kind::Email, "иван собака мейл точка ру".into())]
    );
    assert_eq!(
        finds("it's john dot smith at example dot com thanks"),
        [(Kind::Email, "john dot smith at example dot com".into())]
    );
    assert_eq!(
        finds("Send it to j.smith@acme.io, please."),
        [(Kind::Email, "j.smith@acme.io,".into())]
    );
    assert!(finds("let's look at the example dot com page").is_empty());
}

#[test]
fn a_card_passes_luhn_and_a_number_named_as_an_order_stays() {
    assert_eq!(
        finds("Спишите с карты 4111 1111 1111 1111 сегодня"),
        [(Kind::Card, "4111 1111 1111 1111".into())]
    );
    assert!(finds("Order 4111111111111111 is ready.").is_empty());
    assert!(finds("Номер заказа 4567891234.").is_empty());
    assert!(finds("Стоимость 120 000 рублей в месяц, скидка 15%").is_empty());
}

#[test]
fn russian_identifiers_are_told_apart_by_words_and_check_digits() {
    assert_eq!(finds("ИНН 7707083893"), [(Kind::Inn, "7707083893".into())]);
    assert_eq!(
        finds("реквизиты 7707083893"),
        [(Kind::Inn, "7707083893".into())]
    );
    assert!(finds("реквизиты 7707083894").is_empty());
    assert_eq!(
        finds("СНИЛС 112-233-445 95"),
        [(Kind::Snils, "112-233-445 95".into())]
    );
    assert_eq!(
        finds("ОГРН 1027700132195."),
        [(Kind::Ogrn, "1027700132195.".into())]
    );
    assert_eq!(
        finds("Серия 4508 номер 123456"),
        [(Kind::Passport, "4508 номер 123456".into())]
    );
}

fn word(text: &str, start: f64) -> Word {
    Word {
        text: text.into(),
        start,
        end: start + 0.4,
        probability: 0.9,
    }
}

fn transcript(segments: Vec<Segment>) -> Transcript {
    let metrics = crate::transcript::metrics::compute(
        &segments,
        30.0,
        crate::domain::Language::Ru,
        &Default::default(),
    );
    Transcript {
        call_id: CallId::new(),
        language: "ru".into(),
        model: "test".into(),
        duration_s: 30.0,
        speakers: vec![Speaker::Manager, Speaker::Client],
        segments,
        metrics,
        processing: Processing::default(),
        warnings: vec![],
        created_at: 0,
    }
}

#[test]
fn a_number_split_across_two_segments_becomes_one_placeholder_with_its_times() {
    let first = ["мой", "телефон", "8", "916"];
    let second = ["123-45-67.", "Жду", "звонка."];
    let segment = |words: &[&str], start: f64| Segment {
        speaker: Speaker::Client,
        start,
        end: start + words.len() as f64 * 0.5,
        text: words.join(" "),
        confidence: 0.9,
        words: words
            .iter()
            .enumerate()
            .map(|(i, w)| word(w, start + i as f64 * 0.5))
            .collect(),
    };
    let t = transcript(vec![segment(&first, 1.0), segment(&second, 3.0)]);
    let (redacted, spans) = redact(&t, Kind::ALL);
    assert_eq!(redacted.segments[0].text, "мой телефон [телефон].");
    assert_eq!(redacted.segments[1].text, "Жду звонка.");
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].kind, Kind::Phone);
    assert!((spans[0].start - 2.0).abs() < 1e-9);
    assert!((spans[0].end - 3.4).abs() < 1e-9);
    // The placeholder keeps the first replaced word's start.
    assert!((redacted.segments[0].words[2].start - 2.0).abs() < 1e-9);
    // Kinds not asked for stay.
    let (kept, none) = redact(&t, &[Kind::Email]);
    assert_eq!(kept, t);
    assert!(none.is_empty());
}

#[test]
fn the_labelled_set_meets_the_recall_and_precision_targets() {
    use crate::eval::redaction::{measure, parse, target_recall, BUILTIN, TARGET_PRECISION};
    let figures = measure(&parse(BUILTIN).expect("set parses")).expect("measured");
    let spans: usize = figures.kinds.values().map(|k| k.spans).sum();
    assert!(spans >= 300, "the set holds {spans} spans");
    for kind in Kind::ALL {
        let f = &figures.kinds[kind.as_str()];
        assert!(f.spans > 0, "{kind}: no spans in the set");
        assert!(
            f.recall() >= target_recall(*kind) && f.precision() >= TARGET_PRECISION,
            "{kind}: recall {:.3}, precision {:.3}\n{}",
            f.recall(),
            f.precision(),
            figures.misses.join("\n")
        );
    }
}

#[test]
fn placeholders_are_told_apart_from_what_was_said() {
    assert_eq!(
        pieces("звоните [телефон], [x] или [email]."),
        [
            ("звоните ".to_string(), false),
            ("[телефон]".to_string(), true),
            (", [x] или ".to_string(), false),
            ("[email]".to_string(), true),
            (".".to_string(), false),
        ]
    );
    assert_eq!(pieces("no brackets"), [("no brackets".to_string(), false)]);
}
