//! The UI's two languages: every text of the pages in `i18n/en.toml` and `i18n/ru.toml` (the
//! same keys in both; a test checks), and numbers and dates written the way each reads them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Russian.
    Ru,
}

/// One language's texts, by key.
pub type Texts = BTreeMap<String, String>;

impl Lang {
    /// Both, in the order the switch shows them.
    pub const ALL: [Lang; 2] = [Lang::Ru, Lang::En];

    /// `en` or `ru`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    /// The language of a code (`ru`, `ru-RU`, `EN`...), if it is one of ours.
    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first of our languages in an `Accept-Language` header, by preference (`q`).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut ranked: Vec<(f32, usize, Lang)> = header
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.split(';');
                let lang = Lang::from_code(pieces.next()?)?;
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, i, lang))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked.first().map(|r| r.2)
    }

    /// Every text of the UI in this language.
    pub fn texts(self) -> &'static Texts {
        static EN: OnceLock<Texts> = OnceLock::new();
        static RU: OnceLock<Texts> = OnceLock::new();
        let (cell, source) = match self {
            Lang::En => (&EN, include_str!("i18n/en.toml")),
            Lang::Ru => (&RU, include_str!("i18n/ru.toml")),
        };
        // The files are embedded and checked by a test: a parse error cannot reach a release.
        cell.get_or_init(|| toml::from_str(source).unwrap_or_default())
    }

    /// One text; the key itself where it is missing (a test keeps that from happening).
    pub fn t(self, key: &str) -> &'static str {
        self.texts().get(key).map(String::as_str).unwrap_or("?")
    }

    /// One text, or `fallback` where there is none (names that come from data, e.g. job kinds).
    pub fn t_or<'a>(self, key: &str, fallback: &'a str) -> &'a str {
        self.texts()
            .get(key)
            .map(String::as_str)
            .unwrap_or(fallback)
    }

    /// A number with `decimals` places, in this language's form (`72.5` / `72,5`).
    pub fn number(self, value: f64, decimals: usize) -> String {
        let s = format!("{value:.decimals$}");
        match self {
            Lang::En => s,
            Lang::Ru => s.replace('.', ","),
        }
    }
}

/// A length as `m:ss`, or `h:mm:ss` from an hour.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_every_text() {
        let en = Lang::En.texts();
        let ru = Lang::Ru.texts();
        assert!(en.len() > 20, "en.toml parsed: {} texts", en.len());
        let only_en: Vec<_> = en.keys().filter(|k| !ru.contains_key(*k)).collect();
        let only_ru: Vec<_> = ru.keys().filter(|k| !en.contains_key(*k)).collect();
        assert!(
            only_en.is_empty() && only_ru.is_empty(),
            "missing in ru: {only_en:?}; missing in en: {only_ru:?}"
        );
        for (k, v) in ru {
            assert!(!v.trim().is_empty(), "ru {k} is empty");
        }
    }

    #[test]
    fn accept_language_is_ranked_by_preference() {
        assert_eq!(
            Lang::from_accept_language("de-DE,ru;q=0.8,en;q=0.9"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("ru-RU,ru;q=0.9,en-US;q=0.8"),
            Some(Lang::Ru)
        );
        assert_eq!(Lang::from_accept_language("de,fr"), None);
        assert_eq!(Lang::from_accept_language("en;q=0,ru"), Some(Lang::Ru));
    }

    #[test]
    fn numbers_and_lengths_read_as_each_language_writes_them() {
        assert_eq!(Lang::Ru.number(72.46, 1), "72,5");
        assert_eq!(Lang::En.number(72.46, 1), "72.5");
        assert_eq!(duration(65_400), "1:05");
        assert_eq!(duration(3_725_000), "1:02:05");
    }
}
