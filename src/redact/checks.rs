//! Check digits of the numbers we redact: a number that fails its check is most likely
//! something else (an order number, a price), so it is left alone unless the speaker named it.

fn digits(s: &str) -> Option<Vec<u32>> {
    s.chars().map(|c| c.to_digit(10)).collect()
}

/// Bank card numbers (13-19 digits): the Luhn check.
pub fn luhn(number: &str) -> bool {
    let Some(d) = digits(number) else {
        return false;
    };
    if !(13..=19).contains(&d.len()) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum % 10 == 0
}

fn weighted(d: &[u32], weights: &[u32]) -> u32 {
    d.iter().zip(weights).map(|(a, b)| a * b).sum::<u32>() % 11 % 10
}

/// ИНН: 10 digits (an organisation) or 12 (a person), with their check digits.
pub fn inn(number: &str) -> bool {
    const W10: [u32; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];
    const W11: [u32; 10] = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8];
    const W12: [u32; 11] = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8];
    match digits(number) {
        Some(d) if d.len() == 10 => weighted(&d, &W10) == d[9],
        Some(d) if d.len() == 12 => weighted(&d, &W11) == d[10] && weighted(&d, &W12) == d[11],
        _ => false,
    }
}

/// СНИЛС: 9 digits and a two-digit check number.
pub fn snils(number: &str) -> bool {
    let Some(d) = digits(number) else {
        return false;
    };
    if d.len() != 11 {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, x)| x * (9 - i as u32))
        .sum();
    let check = match sum {
        s if s < 100 => s,
        100 | 101 => 0,
        s => match s % 101 {
            100 => 0,
            r => r,
        },
    };
    check == d[9] * 10 + d[10]
}

/// ОГРН (13 digits) and ОГРНИП (15 digits).
pub fn ogrn(number: &str) -> bool {
    let Some(d) = digits(number) else {
        return false;
    };
    let (body, modulus) = match d.len() {
        13 => (12, 11u64),
        15 => (14, 13u64),
        _ => return false,
    };
    let Ok(value) = number[..body].parse::<u64>() else {
        return false;
    };
    (value % modulus % 10) as u32 == d[body]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_numbers_pass_and_one_digit_off_fails() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("5500000000000004"));
        assert!(!luhn("4111111111111112"));
        assert!(inn("7707083893"));
        assert!(!inn("7707083894"));
        assert!(inn("500100732259"));
        assert!(!inn("500100732258"));
        assert!(snils("11223344595"));
        assert!(!snils("11223344596"));
        assert!(ogrn("1027700132195"));
        assert!(!ogrn("1027700132196"));
        assert!(ogrn("304500116000157"));
    }
}
