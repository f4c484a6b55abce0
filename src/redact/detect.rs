//! Finding personal data in a run of words: e-mail addresses (written or spoken), and numbers
//! (written, spoken, or broken into groups) classified by their length, check digits and the
//! words around them.

use super::checks;
use super::numbers::{clean, runs, Run};
use super::Kind;

/// Personal data found in a token list: tokens `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// What it is.
    pub kind: Kind,
    /// First token.
    pub first: usize,
    /// Last token (inclusive).
    pub last: usize,
}

/// What the words before a number say it is. `None` in a table = no opinion.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hint {
    Is(Kind),
    /// An order, invoice or contract number, a price, a date: not personal data.
    Not,
}

/// Words (prefixes of the lower-cased word) that name what the number after them is.
const BEFORE: &[(&str, Hint)] = &[
    ("телефон", Hint::Is(Kind::Phone)),
    ("мобильн", Hint::Is(Kind::Phone)),
    ("сотов", Hint::Is(Kind::Phone)),
    ("позвон", Hint::Is(Kind::Phone)),
    ("перезвон", Hint::Is(Kind::Phone)),
    ("звонит", Hint::Is(Kind::Phone)),
    ("набер", Hint::Is(Kind::Phone)),
    ("ватсап", Hint::Is(Kind::Phone)),
    ("whatsapp", Hint::Is(Kind::Phone)),
    ("телеграм", Hint::Is(Kind::Phone)),
    ("phone", Hint::Is(Kind::Phone)),
    ("mobile", Hint::Is(Kind::Phone)),
    ("cell", Hint::Is(Kind::Phone)),
    ("call", Hint::Is(Kind::Phone)),
    ("reach", Hint::Is(Kind::Phone)),
    ("dial", Hint::Is(Kind::Phone)),
    ("text", Hint::Is(Kind::Phone)),
    ("карт", Hint::Is(Kind::Card)),
    ("card", Hint::Is(Kind::Card)),
    ("visa", Hint::Is(Kind::Card)),
    ("виза", Hint::Is(Kind::Card)),
    ("mastercard", Hint::Is(Kind::Card)),
    ("мастеркард", Hint::Is(Kind::Card)),
    ("паспорт", Hint::Is(Kind::Passport)),
    ("серия", Hint::Is(Kind::Passport)),
    ("серии", Hint::Is(Kind::Passport)),
    ("passport", Hint::Is(Kind::Passport)),
    ("инн", Hint::Is(Kind::Inn)),
    ("налогоплательщ", Hint::Is(Kind::Inn)),
    ("taxpayer", Hint::Is(Kind::Inn)),
    ("tax", Hint::Is(Kind::Inn)),
    ("inn", Hint::Is(Kind::Inn)),
    ("снилс", Hint::Is(Kind::Snils)),
    ("snils", Hint::Is(Kind::Snils)),
    ("огрн", Hint::Is(Kind::Ogrn)),
    ("ogrn", Hint::Is(Kind::Ogrn)),
    ("заказ", Hint::Not),
    ("order", Hint::Not),
    ("счет", Hint::Not),
    ("счёт", Hint::Not),
    ("invoice", Hint::Not),
    ("договор", Hint::Not),
    ("contract", Hint::Not),
    ("артикул", Hint::Not),
    ("sku", Hint::Not),
    ("трек", Hint::Not),
    ("tracking", Hint::Not),
    ("заявк", Hint::Not),
    ("обращени", Hint::Not),
    ("case", Hint::Not),
    ("ticket", Hint::Not),
    ("тикет", Hint::Not),
    ("накладн", Hint::Not),
    ("reference", Hint::Not),
    ("ref", Hint::Not),
    ("лицензи", Hint::Not),
    ("license", Hint::Not),
    ("licence", Hint::Not),
    ("serial", Hint::Not),
    ("серийн", Hint::Not),
    ("модел", Hint::Not),
    ("model", Hint::Not),
    ("цен", Hint::Not),
    ("стоим", Hint::Not),
    ("price", Hint::Not),
    ("cost", Hint::Not),
    ("budget", Hint::Not),
    ("бюджет", Hint::Not),
    ("total", Hint::Not),
    ("итого", Hint::Not),
];

/// Words that begin like a naming word above but name a person, not a number ("заказчик" is
/// the customer, not the order).
const NOT_NAMING: &[&str] = &["заказчик"];

/// Words after a number that make it an amount, a quantity or a date.
const AFTER_NOT: &[&str] = &[
    "руб",
    "₽",
    "доллар",
    "dollar",
    "bucks",
    "usd",
    "евро",
    "euro",
    "eur",
    "процент",
    "percent",
    "штук",
    "units",
    "unit",
    "лиценз",
    "licen",
    "seat",
    "мест",
    "пользовател",
    "user",
    "минут",
    "minute",
    "час",
    "hour",
    "дн",
    "day",
    "месяц",
    "month",
    "год",
    "лет",
    "year",
    "недел",
    "week",
    "копе",
    "cent",
    "тонн",
    "кг",
    "килограм",
    "метр",
    "meter",
    "gb",
    "гб",
];

/// How many words before a number are read for a hint.
const WINDOW: usize = 6;

fn starts(word: &str, stems: &[&str]) -> bool {
    stems.iter().any(|s| word.starts_with(s))
}

/// The nearest hint before `run`, or `Hint::Not` when an amount word follows it.
fn hint(words: &[String], run: &Run) -> Option<Hint> {
    if let Some(next) = words.get(run.last + 1) {
        if starts(next, AFTER_NOT) {
            return Some(Hint::Not);
        }
    }
    let from = run.first.saturating_sub(WINDOW);
    words[from..run.first].iter().rev().find_map(|w| {
        if starts(w, NOT_NAMING) {
            return None;
        }
        BEFORE
            .iter()
            .find(|(stem, _)| w.starts_with(stem))
            .map(|(_, h)| *h)
    })
}

fn phone_shaped(run: &Run) -> bool {
    let d = run.digits.as_bytes();
    let n = d.len();
    (run.plus && (10..=15).contains(&n))
        || (n == 11 && (d[0] == b'7' || d[0] == b'8') && matches!(d[1], b'3' | b'4' | b'8' | b'9'))
        || (n == 10 && d[0] == b'9')
}

/// What a number run is, if it is personal data.
fn classify(words: &[String], run: &Run) -> Option<Kind> {
    if run.amount {
        return None;
    }
    let d = run.digits.as_str();
    let n = d.len();
    match hint(words, run) {
        Some(Hint::Not) => None,
        // Named by the speaker: the length must fit; the check digits may be misheard.
        Some(Hint::Is(kind)) => {
            let fits = match kind {
                Kind::Card => (13..=19).contains(&n),
                Kind::Phone => (7..=15).contains(&n),
                Kind::Passport => n == 9 || n == 10,
                Kind::Inn => n == 10 || n == 12,
                Kind::Snils => n == 11,
                Kind::Ogrn => n == 13 || n == 15,
                Kind::Email => false,
            };
            if fits {
                Some(kind)
            } else {
                unnamed(run)
            }
        }
        None => unnamed(run),
    }
}

/// A number nobody named: only its shape and check digits decide.
fn unnamed(run: &Run) -> Option<Kind> {
    let d = run.digits.as_str();
    if checks::luhn(d) && d.len() >= 15 {
        Some(Kind::Card)
    } else if phone_shaped(run) {
        Some(Kind::Phone)
    } else if checks::snils(d) {
        Some(Kind::Snils)
    } else if checks::ogrn(d) {
        Some(Kind::Ogrn)
    } else if checks::inn(d) {
        Some(Kind::Inn)
    } else {
        None
    }
}

const AT: &[&str] = &["@", "at", "собака", "собачка", "эт"];
const DOT: &[&str] = &[".", "dot", "точка", "дот"];
const JOIN: &[&str] = &[
    "underscore",
    "подчеркивание",
    "подчёркивание",
    "dash",
    "hyphen",
    "дефис",
    "тире",
];
const TLD: &[&str] = &[
    "com",
    "ru",
    "net",
    "org",
    "io",
    "info",
    "biz",
    "su",
    "рф",
    "ру",
    "ком",
    "нет",
    "орг",
    "de",
    "uk",
    "co",
    "ua",
    "kz",
    "by",
    "me",
    "ai",
    "dev",
    "app",
    "edu",
    "gov",
    "us",
    "eu",
    "онлайн",
];
/// Words that are never the name before a spoken "at" ("look at ...", "meet me at ...").
const NOT_LOCAL: &[&str] = &[
    "look",
    "looking",
    "me",
    "us",
    "him",
    "her",
    "them",
    "it",
    "is",
    "are",
    "was",
    "be",
    "arrive",
    "arrived",
    "meet",
    "stay",
    "work",
    "works",
    "worked",
    "available",
    "here",
    "there",
    "and",
    "or",
    "email",
    "e-mail",
    "mail",
    "address",
    "почта",
    "почту",
    "адрес",
    "и",
    "а",
    "у",
    "меня",
    "нас",
    "вас",
    "есть",
    "это",
    "моя",
    "мой",
];

fn name_like(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}

fn written_email(word: &str) -> bool {
    let Some((local, domain)) = word.split_once('@') else {
        return false;
    };
    name_like(local)
        && !local.is_empty()
        && domain.contains('.')
        && domain.split('.').all(|p| !p.is_empty() && name_like(p))
}

/// A spoken or split address around an "at" word at `at`: its first and last tokens.
fn spoken_email(words: &[String], at: usize) -> Option<(usize, usize)> {
    // The domain: name (dot name)+, the last part a known top-level domain, or one token that
    // already holds the dots ("mail.ru").
    let mut j = at + 1;
    let first = words.get(j)?;
    let mut last = None;
    if first.contains('.') && first.split('.').all(|p| !p.is_empty()) {
        last = Some(j);
    } else if name_like(first) {
        while j + 2 < words.len() + 1 && words.get(j + 1).is_some_and(|w| DOT.contains(&w.as_str()))
        {
            let Some(part) = words.get(j + 2) else { break };
            if !name_like(part) {
                break;
            }
            j += 2;
            if TLD.contains(&part.as_str()) {
                last = Some(j);
            }
        }
    }
    let last = last?;
    // The name before: name ((dot|underscore|dash) name)*.
    let mut start = at.checked_sub(1)?;
    if !name_like(&words[start]) || NOT_LOCAL.contains(&words[start].as_str()) {
        return None;
    }
    while start >= 2
        && (DOT.contains(&words[start - 1].as_str()) || JOIN.contains(&words[start - 1].as_str()))
        && name_like(&words[start - 2])
        && !NOT_LOCAL.contains(&words[start - 2].as_str())
    {
        start -= 2;
    }
    Some((start, last))
}

/// Every piece of personal data in `tokens` (words as the recogniser wrote them), in order.
pub fn find(tokens: &[String]) -> Vec<Found> {
    let words: Vec<String> = tokens.iter().map(|t| clean(t)).collect();
    let mut found = Vec::new();
    let mut taken = vec![false; tokens.len()];
    for (i, w) in words.iter().enumerate() {
        if taken[i] {
            continue;
        }
        let span = if written_email(w) {
            Some((i, i))
        } else if AT.contains(&w.as_str()) {
            spoken_email(&words, i)
        } else {
            None
        };
        if let Some((first, last)) = span {
            if (first..=last).all(|k| !taken[k]) {
                taken[first..=last].iter_mut().for_each(|t| *t = true);
                found.push(Found {
                    kind: Kind::Email,
                    first,
                    last,
                });
            }
        }
    }
    // Numbers, over the tokens no address took.
    let masked: Vec<String> = tokens
        .iter()
        .zip(&taken)
        .map(|(t, &x)| if x { String::new() } else { t.clone() })
        .collect();
    let all = runs(&masked);
    let mut k = 0;
    while k < all.len() {
        let run = &all[k];
        // Series and number said apart: "серия 45 08 номер 123456".
        if let Some(next) = all.get(k + 1) {
            let bridge = &words[run.last + 1..next.first];
            let joined = run.digits.len() + next.digits.len();
            if run.digits.len() == 4
                && next.digits.len() == 6
                && bridge.len() <= 1
                && bridge
                    .iter()
                    // "№" and other punctuation clean to nothing.
                    .all(|w| ["номер", "number", "no", ""].contains(&w.as_str()))
                && matches!(hint(&words, run), Some(Hint::Is(Kind::Passport)))
                && joined == 10
            {
                found.push(Found {
                    kind: Kind::Passport,
                    first: run.first,
                    last: next.last,
                });
                k += 2;
                continue;
            }
        }
        if let Some(kind) = classify(&words, run) {
            found.push(Found {
                kind,
                first: run.first,
                last: run.last,
            });
        }
        k += 1;
    }
    found.sort_by_key(|f| f.first);
    found
}
