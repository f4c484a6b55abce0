//! Numbers as a recogniser writes them, read back into digits: "восемь девятьсот
//! шестнадцать сто двадцать три", "four one one one", "8-916-123-45-67", "(916) 123 45 67" and
//! mixtures of them. A run of such tokens becomes one digit string with the tokens it covers.

/// A token's reading as part of a number.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    /// 0-9.
    Unit(u32),
    /// 10-19.
    Teen(u32),
    /// 20, 30, ... 90.
    Ten(u32),
    /// 100, 200, ... 900.
    Hundred(u32),
    /// English "hundred" after a unit.
    TimesHundred,
    /// "double" / "triple": the next unit said so many times.
    Repeat(usize),
    /// "тысяча", "thousand", "million": the run is an amount, not an identifier.
    Magnitude,
}

fn spoken(word: &str) -> Option<Piece> {
    use Piece::*;
    const UNITS: [(&[&str], u32); 10] = [
        (&["ноль", "нуль", "zero", "oh", "o"], 0),
        (&["один", "одна", "одно", "one"], 1),
        (&["два", "две", "two"], 2),
        (&["три", "three"], 3),
        (&["четыре", "four"], 4),
        (&["пять", "five"], 5),
        (&["шесть", "six"], 6),
        (&["семь", "seven"], 7),
        (&["восемь", "eight"], 8),
        (&["девять", "nine"], 9),
    ];
    const TEENS: [(&[&str], u32); 10] = [
        (&["десять", "ten"], 10),
        (&["одиннадцать", "eleven"], 11),
        (&["двенадцать", "twelve"], 12),
        (&["тринадцать", "thirteen"], 13),
        (&["четырнадцать", "fourteen"], 14),
        (&["пятнадцать", "fifteen"], 15),
        (&["шестнадцать", "sixteen"], 16),
        (&["семнадцать", "seventeen"], 17),
        (&["восемнадцать", "eighteen"], 18),
        (&["девятнадцать", "nineteen"], 19),
    ];
    const TENS: [(&[&str], u32); 8] = [
        (&["двадцать", "twenty"], 20),
        (&["тридцать", "thirty"], 30),
        (&["сорок", "forty"], 40),
        (&["пятьдесят", "fifty"], 50),
        (&["шестьдесят", "sixty"], 60),
        (&["семьдесят", "seventy"], 70),
        (&["восемьдесят", "eighty"], 80),
        (&["девяносто", "ninety"], 90),
    ];
    const HUNDREDS: [(&str, u32); 9] = [
        ("сто", 100),
        ("двести", 200),
        ("триста", 300),
        ("четыреста", 400),
        ("пятьсот", 500),
        ("шестьсот", 600),
        ("семьсот", 700),
        ("восемьсот", 800),
        ("девятьсот", 900),
    ];
    let find = |table: &[(&[&str], u32)]| {
        table
            .iter()
            .find(|(words, _)| words.contains(&word))
            .map(|(_, v)| *v)
    };
    if let Some(v) = find(&UNITS) {
        return Some(Unit(v));
    }
    if let Some(v) = find(&TEENS) {
        return Some(Teen(v));
    }
    if let Some(v) = find(&TENS) {
        return Some(Ten(v));
    }
    if let Some((_, v)) = HUNDREDS.iter().find(|(w, _)| *w == word) {
        return Some(Hundred(*v));
    }
    match word {
        "hundred" => Some(TimesHundred),
        "double" => Some(Repeat(2)),
        "triple" => Some(Repeat(3)),
        w if [
            "тысяч",
            "миллион",
            "миллиард",
            "thousand",
            "million",
            "billion",
        ]
        .iter()
        .any(|m| w.starts_with(m)) =>
        {
            Some(Magnitude)
        }
        _ => None,
    }
}

/// A token written with digits: the digits, whether it began with `+`, and whether it reads
/// as an amount, a decimal or a date (a currency sign, `1,250`, `12.5`, `25.03.2024`).
fn written(token: &str) -> Option<(String, bool, bool)> {
    let t = token.trim_end_matches([',', '.', ';', ':', '!', '?', ')']);
    let t = t.trim_start_matches('(');
    if !t.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let plus = t.starts_with('+');
    let body = t.trim_start_matches('+');
    let mut digits = String::new();
    let mut amount = false;
    for c in body.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | '(' | ')' | '‑' | '–' => {}
            ',' | '.' => amount = true,
            '$' | '€' | '₽' | '£' | '%' => amount = true,
            _ => return None,
        }
    }
    Some((digits, plus, amount))
}

/// A maximal run of number tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// First token of the run.
    pub first: usize,
    /// Last token of the run (inclusive).
    pub last: usize,
    /// The digits the run says.
    pub digits: String,
    /// It began with `+` or "плюс"/"plus".
    pub plus: bool,
    /// It reads as an amount or a date (a magnitude word, a currency sign, a decimal point).
    pub amount: bool,
}

/// The value being spoken: up to hundreds, tens and units, flushed as one group of digits.
#[derive(Default)]
struct Group {
    hundreds: Option<u32>,
    tens: Option<u32>,
    units: Option<u32>,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.hundreds.is_none() && self.tens.is_none() && self.units.is_none()
    }

    fn flush(&mut self, out: &mut String) {
        if self.is_empty() {
            return;
        }
        let value = self.hundreds.unwrap_or(0) + self.tens.unwrap_or(0) + self.units.unwrap_or(0);
        if self.hundreds.is_some() {
            out.push_str(&format!("{value:03}"));
        } else if self.tens.is_some() {
            out.push_str(&format!("{value:02}"));
        } else {
            out.push_str(&value.to_string());
        }
        *self = Group::default();
    }

    fn push(&mut self, piece: Piece, out: &mut String) {
        match piece {
            Piece::Hundred(v) => {
                self.flush(out);
                self.hundreds = Some(v);
            }
            Piece::TimesHundred => match (self.hundreds, self.tens, self.units) {
                (None, None, Some(u)) => {
                    self.units = None;
                    self.hundreds = Some(u * 100);
                }
                _ => {
                    self.flush(out);
                    self.hundreds = Some(100);
                }
            },
            Piece::Ten(v) => {
                if self.tens.is_some() || self.units.is_some() {
                    self.flush(out);
                }
                self.tens = Some(v);
            }
            Piece::Teen(v) => {
                if self.tens.is_some() || self.units.is_some() {
                    self.flush(out);
                }
                self.tens = Some(v);
                self.units = Some(0);
            }
            Piece::Unit(v) => {
                // A zero after hundreds or tens is said on its own ("сто ноль" is not 100).
                if self.units.is_some() || (v == 0 && !self.is_empty()) {
                    self.flush(out);
                }
                self.units = Some(v);
                if v == 0 {
                    self.flush(out);
                }
            }
            Piece::Repeat(_) | Piece::Magnitude => {}
        }
    }
}

/// A token reduced to how it is compared: lower case, without the punctuation around it.
pub fn clean(token: &str) -> String {
    token
        .trim_matches(|c: char| !(c.is_alphanumeric() || c == '@' || c == '+' || c == '_'))
        .to_lowercase()
}

/// Every run of number tokens in `tokens`.
pub fn runs(tokens: &[String]) -> Vec<Run> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let mut run = Run {
            first: i,
            last: i,
            digits: String::new(),
            plus: false,
            amount: false,
        };
        let mut group = Group::default();
        let mut repeat = 1;
        let mut j = i;
        let mut any = false;
        while j < tokens.len() {
            let raw = tokens[j].as_str();
            let word = clean(raw);
            if let Some((digits, plus, amount)) = written(raw) {
                group.flush(&mut run.digits);
                run.plus |= plus && !any;
                run.amount |= amount;
                run.digits.push_str(&digits);
            } else if !any && (word == "плюс" || word == "plus") {
                run.plus = true;
            } else if let Some(piece) = spoken(&word) {
                // "o"/"oh" count only inside a run of digits.
                if !any && (word == "o" || word == "oh") {
                    break;
                }
                match piece {
                    Piece::Repeat(n) => repeat = n,
                    Piece::Magnitude => run.amount = true,
                    Piece::Unit(v) if repeat > 1 => {
                        group.flush(&mut run.digits);
                        for _ in 0..repeat {
                            run.digits.push_str(&v.to_string());
                        }
                        repeat = 1;
                    }
                    p => group.push(p, &mut run.digits),
                }
            } else if raw.chars().all(|c| matches!(c, '-' | '–' | '—')) && any {
                // A dash between groups ("сто двадцать три - сорок пять").
            } else {
                break;
            }
            any = true;
            run.last = j;
            j += 1;
        }
        group.flush(&mut run.digits);
        if any && !run.digits.is_empty() {
            i = run.last + 1;
            out.push(run);
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(text: &str) -> Vec<String> {
        let tokens: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        runs(&tokens).into_iter().map(|r| r.digits).collect()
    }

    #[test]
    fn spoken_russian_groups_read_as_digits() {
        assert_eq!(
            digits("восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь"),
            ["89161234567"]
        );
        assert_eq!(digits("ноль семь сто пять"), ["07105"]);
        assert_eq!(digits("сорок пять ноль восемь"), ["4508"]);
    }

    #[test]
    fn spoken_english_digits_and_doubles_read_as_digits() {
        assert_eq!(digits("four one one one, one one one one"), ["41111111"]);
        assert_eq!(digits("call five five five double two oh one"), ["5552201"]);
        assert_eq!(digits("four hundred fifteen"), ["415"]);
    }

    #[test]
    fn written_groups_join_and_amounts_are_marked() {
        let tokens: Vec<String> = "+7 (916) 123-45-67, и 1,250 долларов"
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let r = runs(&tokens);
        assert_eq!(r[0].digits, "79161234567");
        assert!(r[0].plus && !r[0].amount);
        assert!(r[1].amount);
        assert!(runs(&["сто".into(), "тысяч".into()])[0].amount);
    }
}
