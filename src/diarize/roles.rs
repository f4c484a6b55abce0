//! Which of two separated voices is the manager: a documented rule with a confidence.
//!
//! The rule reads the first turns of each speaker (what whisper heard) for the phrases a
//! salesperson opens with and a customer does not: introducing oneself and the company ("меня
//! зовут", "компания", "calling from", "my name is"), answering a line ("слушаю вас", "thank
//! you for calling", "how can I help"), and the ones a customer uses ("алло" as a whole first
//! turn, "я оставлял заявку", "I saw your ad"). Each phrase found adds its weight to the
//! speaker; so do talking clearly the most and asking clearly the most questions over the
//! whole call (0.75 each: how a salesperson runs a call, for when the opening was misheard);
//! an inbound call adds a small prior to the first speaker (the manager answers; an outbound
//! call's answering "алло" is counted as a phrase). When the CRM knows the call's manager by
//! name, introducing oneself by it (or calling for the other by it) counts too. When one
//! speaker leads by at least [`CONFIDENT`] the roles are set; otherwise the speakers stay
//! `speaker_1` and `speaker_2`, the scorecard says the roles are unknown, and QA sets them on
//! the call page.

use crate::domain::Direction;

/// The lead one speaker needs over the other for the roles to be set.
pub const CONFIDENT: f32 = 1.0;

/// Turns of each speaker read (their opening).
const OPENING_TURNS: usize = 4;

/// A speaker's words in one turn, in time order.
#[derive(Debug, Clone)]
pub struct Said<'a> {
    /// 0 for `speaker_1` (the first to speak), 1 for `speaker_2`, and so on.
    pub speaker: usize,
    /// What was said.
    pub text: &'a str,
}

/// The rule's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Roles {
    /// The manager (0 for the first voice) when the rule is confident, else `None`.
    pub manager: Option<usize>,
    /// How far the likeliest manager leads the next voice, in cue weights ([`CONFIDENT`] or more sets roles).
    pub confidence: f32,
    /// The cues that decided it, for the logs and the transcript's processing notes.
    pub evidence: Vec<String>,
}

/// (phrase, weight): positive for a manager's cue, negative for a client's. Matched on
/// lower-cased text with `ё` as `е`, at word starts.
const CUES: &[(&str, f32)] = &[
    // Introducing oneself and the company.
    ("меня зовут", 1.5),
    ("компания", 1.0),
    ("компании", 0.5),
    ("вас беспокоит", 1.5),
    ("беспокою вас", 1.5),
    ("звоню вам", 1.0),
    ("звоню по вашей заявке", 1.5),
    ("вы оставляли заявку", 1.5),
    ("вы оставили заявку", 1.5),
    ("удобно говорить", 1.0),
    ("удобно поговорить", 1.0),
    ("слушаю вас", 1.0),
    ("чем могу помочь", 1.5),
    ("my name is", 1.5),
    ("calling from", 1.5),
    ("i'm calling from", 0.5),
    ("this is", 0.5),
    ("thank you for calling", 1.5),
    ("thanks for calling", 1.5),
    ("how can i help", 1.5),
    ("how may i help", 1.5),
    ("you left a request", 1.5),
    ("we help", 1.0),
    ("we offer", 1.0),
    ("our company", 1.0),
    ("мы помогаем", 1.0),
    ("мы предлагаем", 1.0),
    ("наша компания", 1.0),
    ("у меня предложение", 1.0),
    ("предложение по", 0.5),
    ("you requested", 1.0),
    ("is now a good time", 1.0),
    ("good time to talk", 1.0),
    // A customer's openings.
    ("я оставлял заявку", -1.5),
    ("я оставляла заявку", -1.5),
    ("хотел узнать", -0.5),
    ("хотела узнать", -0.5),
    ("i saw your", -1.0),
    ("i'm interested in", -0.5),
    ("who is this", -1.0),
    ("who's calling", -1.0),
    ("yes speaking", -1.0),
    ("кто это", -1.0),
    ("кто говорит", -1.0),
    ("да это я", -1.0),
    ("откуда у вас мой номер", -1.5),
    ("откуда у вас мой телефон", -1.5),
    ("where did you get my number", -1.5),
];

/// Self-introductions with a company: "this is Jake Miller from CloudPay", "I'm Anna with
/// Acme", "это Максим из МедиаРоста", and a caller's "Алло, Елена? Это Максим" (whoever names
/// the other and then themselves placed the call). Matched on normalised text.
fn introductions() -> &'static [(regex::Regex, f32, &'static str)] {
    static PATTERNS: std::sync::OnceLock<Vec<(regex::Regex, f32, &'static str)>> =
        std::sync::OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            (
                r"\bthis is \w+( \w+)? (from|with|at) ",
                2.0,
                "this is NAME from COMPANY",
            ),
            (
                r"\b(i'm|i am) \w+( \w+)? (from|with) ",
                2.0,
                "I'm NAME from COMPANY",
            ),
            (r"\bэто \w+( \w+)? из ", 2.0, "это ИМЯ из КОМПАНИИ"),
            (
                r"^(алло|здравствуйте|добрый день|добрый вечер|доброе утро)( \w+){0,2} это \w+",
                1.0,
                "АЛЛО ИМЯ, это ИМЯ",
            ),
            (
                r"^(hello|hi|good morning|good afternoon)( \w+)? this is \w+",
                1.0,
                "HELLO NAME, this is NAME",
            ),
        ]
        .into_iter()
        .filter_map(|(p, w, name)| regex::Regex::new(p).ok().map(|r| (r, w, name)))
        .collect()
    })
}

/// How one introduces oneself by name (`{}` is the name), in normalised text.
const INTRODUCTIONS: &[&str] = &[
    "меня зовут {}",
    "я {}",
    "{} слушает",
    "{} слушаю",
    "{} на связи",
    "my name is {}",
    "i'm {}",
    "i am {}",
    "{} speaking",
    "{} here",
];

/// "Это Анна." introduces; "Это Анна?" asks whether the manager is on the line, so it is said
/// to them.
const THIS_IS: &[&str] = &["это {}", "this is {}"];

/// Calling for someone by name: said to the other person, so a cue for the voice that hears
/// it. Only forms a manager does not use of themselves: "Добрый день, Анна, компания Ромашка"
/// and "Anna, hi" are how managers answer, so greetings with the name are no cue either way.
const CALLS_FOR: &[&str] = &["алло {}", "is this {}"];

/// The forms of a manager's name the rule listens for: each word of the CRM name (first name
/// and surname, normalised), two letters or more.
fn name_forms(name: &str) -> Vec<String> {
    normalise(name)
        .split(' ')
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_string)
        .collect()
}

/// Whether `text` holds one of `templates` filled with one of `names`, as whole words (a name
/// is not matched inside a longer one: "ян" is not "яна").
fn says_name(text: &str, templates: &[&str], names: &[String]) -> Option<String> {
    let padded = format!(" {text} ");
    names.iter().find_map(|n| {
        templates
            .iter()
            .map(|t| t.replace("{}", n))
            .find(|phrase| padded.contains(&format!(" {phrase} ")))
    })
}

/// What a turn says with the manager's name in it.
enum NameCue {
    /// Introduces oneself by it ("Анна на связи").
    Introduces(String),
    /// Calls for the one who bears it ("Алло, Анна?", "Это Анна?").
    CallsFor(String),
}

/// The first name cue of a turn, read sentence by sentence: "This is Anna. Is now a good
/// time?" still introduces, as the question is another sentence.
fn name_cue(turn: &str, names: &[String]) -> Option<NameCue> {
    if names.is_empty() {
        return None;
    }
    turn.split_inclusive(['.', '!', '?']).find_map(|sentence| {
        let asks = sentence.trim_end().ends_with('?');
        let text = normalise(sentence);
        let this_is = says_name(&text, THIS_IS, names);
        says_name(&text, INTRODUCTIONS, names)
            .or(this_is.clone().filter(|_| !asks))
            .map(NameCue::Introduces)
            .or_else(|| {
                says_name(&text, CALLS_FOR, names)
                    .or(this_is.filter(|_| asks))
                    .map(NameCue::CallsFor)
            })
    })
}

/// Applies the rule to a call's turns (`said`, in time order) among `voices` voices.
/// `manager_name` is the call's manager as the CRM names them (managers.csv), when known: a
/// voice introducing itself by that name is the manager (+2), and a voice calling for someone
/// by it ("Алло, Анна?", "это Анна?") is talking to the manager (+1 to the others).
pub fn decide(
    said: &[Said<'_>],
    voices: usize,
    direction: Option<Direction>,
    manager_name: Option<&str>,
) -> Roles {
    let voices = voices.max(2);
    let mut score = vec![0f32; voices];
    let mut evidence = Vec::new();
    let mut seen = vec![0usize; voices];
    let names = manager_name.map(name_forms).unwrap_or_default();
    for turn in said {
        let s = turn.speaker.min(voices - 1);
        if seen[s] >= OPENING_TURNS {
            continue;
        }
        seen[s] += 1;
        let text = normalise(turn.text);
        match name_cue(turn.text, &names) {
            Some(NameCue::Introduces(phrase)) => {
                score[s] += 2.0;
                evidence.push(format!(
                    "speaker_{} introduced themselves by the CRM manager's name: {phrase:?} (+2)",
                    s + 1
                ));
            }
            Some(NameCue::CallsFor(phrase)) => {
                for (other, v) in score.iter_mut().enumerate() {
                    if other != s {
                        *v += 1.0;
                    }
                }
                evidence.push(format!(
                    "speaker_{} spoke to the CRM manager by name: {phrase:?} (+1 to the other voice)",
                    s + 1
                ));
            }
            None => {}
        }
        // "Алло?" / "Hello?" as a whole turn: answering the phone.
        if seen[s] == 1
            && matches!(
                text.trim(),
                "алло" | "да алло" | "алло да" | "hello" | "hello yes"
            )
        {
            score[s] -= 1.0;
            evidence.push(format!(
                "speaker_{} answered the phone: {:?}",
                s + 1,
                turn.text.trim()
            ));
        }
        for &(phrase, weight) in CUES {
            if contains_words(&text, phrase) {
                score[s] += weight;
                evidence.push(format!("speaker_{} said {phrase:?} ({weight:+})", s + 1));
            }
        }
        for (pattern, weight, name) in introductions() {
            if pattern.is_match(&text) {
                score[s] += weight;
                evidence.push(format!(
                    "speaker_{} introduced themselves: {name} ({weight:+})",
                    s + 1
                ));
            }
        }
    }
    // How a salesperson runs a call: they talk more and ask the questions. Each counts only
    // when it is clear (a third more words; three more questions), and neither alone sets the
    // roles.
    let mut words = vec![0usize; voices];
    let mut questions = vec![0usize; voices];
    for turn in said {
        let s = turn.speaker.min(voices - 1);
        words[s] += turn.text.split_whitespace().count();
        questions[s] += turn.text.matches('?').count();
    }
    let most = |v: &[usize]| {
        let mut ranked: Vec<usize> = (0..v.len()).collect();
        ranked.sort_by(|&a, &b| v[b].cmp(&v[a]));
        (ranked[0], v[ranked[0]], v[ranked[1]])
    };
    let (talker, top, next) = most(&words);
    if top * 3 > next * 4 && top >= 20 {
        // Half as much again as the other counts as much as a phrase: a salesperson's call (a
        // customer who talks that much more usually also answers the phone or says why they
        // called, which count against them).
        let weight = if top * 2 >= next * 3 { 1.0 } else { 0.75 };
        score[talker] += weight;
        evidence.push(format!(
            "speaker_{} talks most ({top} words against {next}) ({weight:+})",
            talker + 1
        ));
    }
    let (asker, top, next) = most(&questions);
    if top >= next + 3 {
        score[asker] += 0.75;
        evidence.push(format!(
            "speaker_{} asks most ({top} questions against {next}) (+0.75)",
            asker + 1
        ));
    }
    // The direction's prior: who speaks first.
    match direction {
        Some(Direction::Inbound) => {
            score[0] += 0.25;
            evidence.push("inbound call: the first speaker is likelier the manager (+0.25)".into());
        }
        // On an outbound call the one who answers often speaks first, but says "алло" or
        // "hello" when they do, which the phrases above already count.
        Some(Direction::Outbound) | None => {}
    }
    let mut ranked: Vec<usize> = (0..voices).collect();
    ranked.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let confidence = score[ranked[0]] - score[ranked[1]];
    Roles {
        manager: (confidence >= CONFIDENT).then_some(ranked[0]),
        confidence,
        evidence,
    }
}

/// Lower case, `ё` as `е`, punctuation as spaces, single spaces.
fn normalise(text: &str) -> String {
    let lowered: String = text
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'ё' => 'е',
            '\'' | '’' => '\'',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect();
    lowered.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `phrase` occurs in `text` starting at a word boundary (so "компания" matches
/// "компания" but not "субкомпания"; endings after the phrase are allowed).
fn contains_words(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase)
        .any(|(i, _)| i == 0 || text[..i].ends_with(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(turns: &[(usize, &'static str)]) -> Vec<Said<'static>> {
        turns
            .iter()
            .map(|&(speaker, text)| Said { speaker, text })
            .collect()
    }

    #[test]
    fn the_one_who_introduces_the_company_is_the_manager() {
        let r = decide(
            &said(&[
                (0, "Алло?"),
                (
                    1,
                    "Добрый день! Меня зовут Андрей, компания ТехноСклад. Удобно говорить?",
                ),
                (0, "Да, слушаю."),
            ]),
            2,
            Some(Direction::Outbound),
            None,
        );
        assert_eq!(r.manager, Some(1));
        assert!(r.confidence >= CONFIDENT);
    }

    #[test]
    fn an_inbound_greeting_makes_the_first_speaker_the_manager() {
        let r = decide(
            &said(&[
                (
                    0,
                    "Thank you for calling Northwind, my name is Sarah. How can I help?",
                ),
                (1, "Hi, I saw your ad about the CRM."),
            ]),
            2,
            Some(Direction::Inbound),
            None,
        );
        assert_eq!(r.manager, Some(0));
    }

    #[test]
    fn a_caller_introducing_themselves_with_the_company_is_the_manager() {
        // The manager speaks first on these outbound calls; the direction's prior points the
        // other way, the introductions outweigh it.
        for (first, second) in [
            ("Hi, is this Sarah Collins?", "Yes, speaking."),
            (
                "Good afternoon, Tom, this is Emily Carter from BrightDesk.",
                "Oh, hi. Yes, I remember.",
            ),
            (
                "Алло, Елена? Это Максим, МедиаРост. У меня предложение по рекламе.",
                "Здравствуйте. А откуда у вас мой номер?",
            ),
        ] {
            let turns = [
                (0, first),
                (1, second),
                (
                    0,
                    "Hi Sarah, this is Jake Miller from CloudPay. We help restaurants.",
                ),
            ];
            let r = decide(
                &said(&turns[..if first.starts_with("Hi,") { 3 } else { 2 }]),
                2,
                Some(Direction::Outbound),
                None,
            );
            assert_eq!(r.manager, Some(0), "{first}: {r:?}");
        }
    }

    #[test]
    fn who_talks_and_asks_most_decides_when_the_opening_was_misheard() {
        let mut turns = vec![
            (
                0,
                "So afternoon, Tom, did you memory cargo from Brightness?",
            ),
            (1, "Oh, hi. Yes, I remember."),
        ];
        for _ in 0..4 {
            turns.push((
                0,
                "Are you using any help desk software for your five agents right now?",
            ));
            turns.push((1, "No."));
        }
        let r = decide(&said(&turns), 2, Some(Direction::Outbound), None);
        assert_eq!(r.manager, Some(0), "{r:?}");
        // One of the two alone is not enough.
        let r = decide(
            &said(&[(0, "Yes? Why? When? Where?"), (1, "Fine.")]),
            2,
            None,
            None,
        );
        assert_eq!(r.manager, None, "{r:?}");
    }

    #[test]
    fn without_cues_the_roles_stay_unknown() {
        let r = decide(
            &said(&[(0, "Да."), (1, "Хорошо, договорились.")]),
            2,
            None,
            None,
        );
        assert_eq!(r.manager, None);
        assert!(r.confidence < CONFIDENT);
        // The direction alone is not enough either.
        let r = decide(
            &said(&[(0, "Yes."), (1, "Fine.")]),
            2,
            Some(Direction::Inbound),
            None,
        );
        assert_eq!(r.manager, None);
    }

    #[test]
    fn phrases_match_at_word_starts_only() {
        assert!(contains_words("наша компания лучшая", "компания"));
        assert!(!contains_words("субкомпания", "компания"));
        assert_eq!(normalise("Алло?! Ёлки"), "алло елки");
    }

    #[test]
    fn the_crm_manager_s_own_name_names_the_manager() {
        // Nothing else in these openings says who sells: the name alone decides.
        let turns = [
            (0, "Да?"),
            (1, "Анна на связи, по вашему вопросу."),
            (0, "Да."),
        ];
        assert_eq!(decide(&said(&turns), 2, None, None).manager, None);
        let r = decide(&said(&turns), 2, None, Some("Анна Петрова"));
        assert_eq!(r.manager, Some(1), "{r:?}");
        assert!(r.evidence.iter().any(|e| e.contains("CRM manager's name")));
        // The surname counts as well; English too.
        let r = decide(
            &said(&[(0, "Yes?"), (1, "Hi, Jake Miller speaking.")]),
            2,
            None,
            Some("Jake Miller"),
        );
        assert_eq!(r.manager, Some(1), "{r:?}");
        // A question in another sentence of the turn does not make the introduction a question.
        let r = decide(
            &said(&[
                (1, "This is Anna. Can I help you with anything?"),
                (0, "Yes."),
            ]),
            2,
            None,
            Some("Anna"),
        );
        assert_eq!(r.manager, Some(1), "{r:?}");
        // Another manager's name is no cue.
        let r = decide(&said(&turns), 2, None, Some("Ольга Смирнова"));
        assert_eq!(r.manager, None, "{r:?}");
    }

    #[test]
    fn calling_for_the_crm_manager_by_name_names_the_other_voice() {
        // The caller asks for the manager and greets them: the one greeted is the manager.
        let turns = [
            (0, "Алло, Анна? Я по поводу доставки."),
            (1, "Да, конечно."),
        ];
        let r = decide(&said(&turns), 2, None, Some("Анна"));
        assert_eq!(r.manager, Some(1), "{r:?}");
        // A manager answering with a greeting and their name is not calling for themselves.
        let turns = [
            (0, "Добрый день, Анна, компания Ромашка."),
            (1, "Здравствуйте, я по поводу доставки."),
        ];
        let r = decide(&said(&turns), 2, Some(Direction::Inbound), Some("Анна"));
        assert_eq!(r.manager, Some(0), "{r:?}");
        // "Это Анна?" asks; it does not introduce.
        let r = decide(
            &said(&[(0, "Алло, это Анна?"), (1, "Да.")]),
            2,
            None,
            Some("Анна"),
        );
        assert_ne!(r.manager, Some(0), "{r:?}");
    }

    #[test]
    fn a_name_matches_as_a_whole_word_only() {
        let names = name_forms("Ян Ковальский");
        assert_eq!(
            says_name("это ян", THIS_IS, &names).as_deref(),
            Some("это ян")
        );
        assert_eq!(says_name("это яна", THIS_IS, &names), None);
        assert_eq!(says_name("это янтарь", THIS_IS, &names), None);
        // One-letter words of a name are not listened for.
        assert!(name_forms("J. Smith")
            .iter()
            .all(|n| n.chars().count() >= 2));
    }
}
