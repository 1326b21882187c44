//! MSISDNs: telephone numbers of subscribers, normalised to E.164 (`+` and up to
//! 15 digits) so that one person has one spelling in every table.

use std::fmt;

/// An E.164 number with its `+`, e.g. `+491701234567`. Only [`normalise_msisdn`]
/// and the store make one, so every `Msisdn` is valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Msisdn(String);

impl Msisdn {
    /// The number with its `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A number read back from the database, which only holds normalised ones.
    pub(super) fn from_db(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a number is not a valid MSISDN. The message names the number and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid number {input:?}: {why}")]
pub struct NumberError {
    /// The number as given.
    pub input: String,
    /// Which rule it breaks.
    pub why: NumberProblem,
}

/// The rule a number breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberProblem {
    /// Nothing but separators.
    #[error("it has no digits")]
    Empty,
    /// A character that is neither a digit nor a separator.
    #[error(
        "{0:?} is not allowed (only digits, a leading + and spaces, dashes, dots, parentheses)"
    )]
    BadCharacter(char),
    /// Fewer digits than any E.164 number has.
    #[error("{0} digits is too short for an international number (at least 7)")]
    TooShort(usize),
    /// More than 15 digits.
    #[error("{0} digits is too long (E.164 allows at most 15)")]
    TooLong(usize),
    /// A national number (`0…`) with no default country code configured.
    #[error(
        "it is a national number and no default country code is configured (numbers.default_country_code); write it as +<country code>…"
    )]
    NoCountryCode,
    /// A country code starting with 0.
    #[error("country codes do not start with 0")]
    ZeroCountryCode,
    /// Digits without `+`, `00` or a national `0`.
    #[error(
        "write it as +<country code><number>, 00<country code><number> or a national number starting with 0"
    )]
    NoPrefix,
    /// The configured default country code is not 1 to 3 digits.
    #[error("the default country code {0:?} is not 1 to 3 digits")]
    BadDefaultCountryCode(String),
}

/// The shortest international number we accept (country code included): Niue and
/// some Pacific numbering plans have 4-digit subscriber numbers after a 3-digit code.
const MIN_DIGITS: usize = 7;
/// E.164's maximum.
const MAX_DIGITS: usize = 15;

/// Normalises a number as a person writes it to E.164.
///
/// `+CC…` is kept; `00CC…` becomes `+CC…`; a national `0…` drops its trunk `0`
/// and gets `+<default_country_code>` (which may be written with or without `+`).
/// Spaces, dashes, dots and parentheses are ignored. Anything else, fewer than 7
/// or more than 15 digits, or a national number with no default country code is
/// refused with the reason.
pub fn normalise_msisdn(
    input: &str,
    default_country_code: Option<&str>,
) -> Result<Msisdn, NumberError> {
    let err = |why| NumberError {
        input: input.to_owned(),
        why,
    };
    let trimmed = input.trim();
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            other => return Err(err(NumberProblem::BadCharacter(other))),
        }
    }
    if digits.is_empty() {
        return Err(err(NumberProblem::Empty));
    }
    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if let Some(national) = digits.strip_prefix('0') {
        let cc = default_country_code.ok_or_else(|| err(NumberProblem::NoCountryCode))?;
        let cc = cc.trim().trim_start_matches('+');
        if cc.is_empty()
            || cc.len() > 3
            || cc.starts_with('0')
            || !cc.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err(NumberProblem::BadDefaultCountryCode(cc.to_owned())));
        }
        format!("{cc}{national}")
    } else {
        return Err(err(NumberProblem::NoPrefix));
    };
    if international.starts_with('0') {
        return Err(err(NumberProblem::ZeroCountryCode));
    }
    let n = international.len();
    if n < MIN_DIGITS {
        return Err(err(NumberProblem::TooShort(n)));
    }
    if n > MAX_DIGITS {
        return Err(err(NumberProblem::TooLong(n)));
    }
    Ok(Msisdn(format!("+{international}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, cc: Option<&str>) -> String {
        normalise_msisdn(input, cc).unwrap().to_string()
    }

    fn why(input: &str, cc: Option<&str>) -> NumberProblem {
        normalise_msisdn(input, cc).unwrap_err().why
    }

    #[test]
    fn accepts_the_usual_spellings() {
        assert_eq!(ok("+491701234567", None), "+491701234567");
        assert_eq!(ok("+49 (170) 123-45.67", None), "+491701234567");
        assert_eq!(ok("00491701234567", None), "+491701234567");
        assert_eq!(ok("0170 1234567", Some("49")), "+491701234567");
        assert_eq!(ok("0170 1234567", Some("+49")), "+491701234567");
        assert_eq!(ok(" +6831234 ", None), "+6831234");
        assert_eq!(ok("+123456789012345", None), "+123456789012345");
    }

    #[test]
    fn refuses_with_the_reason() {
        assert_eq!(why("+49170abc", None), NumberProblem::BadCharacter('a'));
        assert_eq!(why("+49+170", None), NumberProblem::BadCharacter('+'));
        assert_eq!(why(" - ", None), NumberProblem::Empty);
        assert_eq!(why("+491", None), NumberProblem::TooShort(3));
        assert_eq!(why("+1234567890123456", None), NumberProblem::TooLong(16));
        assert_eq!(why("01701234567", None), NumberProblem::NoCountryCode);
        assert_eq!(why("491701234567", Some("49")), NumberProblem::NoPrefix);
        assert_eq!(why("+0491701234", None), NumberProblem::ZeroCountryCode);
        assert_eq!(why("000491701234", None), NumberProblem::ZeroCountryCode);
        assert_eq!(
            why("0170123456", Some("4x")),
            NumberProblem::BadDefaultCountryCode("4x".into())
        );
        let e = normalise_msisdn("01701234567", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid number \"01701234567\": it is a national number and no default country code is configured (numbers.default_country_code); write it as +<country code>…"
        );
    }
}
