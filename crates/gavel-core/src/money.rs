//! Money as integer minor units (cents), never floats.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest amount Gavel accepts: 2^53 − 1 minor units.
///
/// Amounts must stay exact wherever they travel, and the Redis engine's Lua scripts keep
/// numbers as IEEE doubles, which are exact for integers only up to 2^53 − 1.
pub const MAX_AMOUNT: i64 = (1 << 53) - 1;

/// A positive amount of money in minor units (cents for USD), in `1..=MAX_AMOUNT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Money(i64);

/// Why an integer is not a valid amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount must be positive (got {0})")]
    NotPositive(i64),
    #[error("amount {0} exceeds the maximum of {MAX_AMOUNT} minor units")]
    TooLarge(i64),
}

impl Money {
    /// Validates an amount in minor units.
    pub fn new(minor_units: i64) -> Result<Self, MoneyError> {
        if minor_units <= 0 {
            Err(MoneyError::NotPositive(minor_units))
        } else if minor_units > MAX_AMOUNT {
            Err(MoneyError::TooLarge(minor_units))
        } else {
            Ok(Money(minor_units))
        }
    }

    pub const fn minor_units(self) -> i64 {
        self.0
    }

    /// `self + other`, capped at `MAX_AMOUNT` so a bid near the cap can never overflow.
    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0).min(MAX_AMOUNT))
    }
}

impl TryFrom<i64> for Money {
    type Error = MoneyError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Money::new(v)
    }
}

impl From<Money> for i64 {
    fn from(m: Money) -> i64 {
        m.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("currency must be a three-letter ISO 4217 code such as USD (got {0:?})")]
pub struct CurrencyError(pub String);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        let b = code.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([b[0], b[1], b[2]]))
        } else {
            Err(CurrencyError(code.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_negative_amounts_are_rejected() {
        assert_eq!(Money::new(0), Err(MoneyError::NotPositive(0)));
        assert_eq!(Money::new(-5), Err(MoneyError::NotPositive(-5)));
    }

    #[test]
    fn amounts_above_two_to_the_53_are_rejected() {
        assert!(Money::new(MAX_AMOUNT).is_ok());
        assert_eq!(
            Money::new(MAX_AMOUNT + 1),
            Err(MoneyError::TooLarge(MAX_AMOUNT + 1))
        );
    }

    #[test]
    fn adding_saturates_at_the_cap() {
        let big = Money::new(MAX_AMOUNT - 1).unwrap();
        assert_eq!(big.saturating_add(big).minor_units(), MAX_AMOUNT);
    }

    #[test]
    fn money_deserializes_only_from_valid_integers() {
        assert!(serde_json::from_str::<Money>("100").is_ok());
        assert!(serde_json::from_str::<Money>("100.5").is_err());
        assert!(serde_json::from_str::<Money>("\"100\"").is_err());
        assert!(serde_json::from_str::<Money>("0").is_err());
    }

    #[test]
    fn currency_codes_are_three_upper_case_letters() {
        assert_eq!(Currency::parse("USD").unwrap().as_str(), "USD");
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("").is_err());
    }
}
