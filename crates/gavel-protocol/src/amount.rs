//! Amounts arrive as raw JSON so each kind of bad amount gets its own clear answer.

use serde_json::Value;

/// The largest accepted amount: 2^53 − 1 minor units (exact in Lua's doubles).
pub const MAX_AMOUNT: i64 = (1 << 53) - 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AmountError {
    Missing,
    NotAnInteger(String),
    NotPositive(i64),
    TooLarge(String),
}

impl AmountError {
    /// Wire error code.
    pub fn code(&self) -> crate::ErrorCode {
        crate::ErrorCode::InvalidAmount
    }
}

impl std::fmt::Display for AmountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AmountError::Missing => write!(
                f,
                "amount is required (integer minor units, e.g. 11000 for $110.00)"
            ),
            AmountError::NotAnInteger(v) => write!(
                f,
                "amount must be an integer number of minor units (cents), not {v}"
            ),
            AmountError::NotPositive(v) => write!(f, "amount must be positive, got {v}"),
            AmountError::TooLarge(v) => write!(
                f,
                "amount {v} exceeds the maximum of {MAX_AMOUNT} minor units"
            ),
        }
    }
}

impl std::error::Error for AmountError {}

/// Parses a JSON amount: an integer in `1..=MAX_AMOUNT`. Floats (even `110.0`), strings,
/// booleans and nulls are refused.
pub fn parse_amount(v: Option<&Value>) -> Result<i64, AmountError> {
    let v = v.ok_or(AmountError::Missing)?;
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i <= 0 {
                    Err(AmountError::NotPositive(i))
                } else if i > MAX_AMOUNT {
                    Err(AmountError::TooLarge(i.to_string()))
                } else {
                    Ok(i)
                }
            } else if n.is_u64() {
                Err(AmountError::TooLarge(n.to_string()))
            } else {
                Err(AmountError::NotAnInteger(format!("the number {n}")))
            }
        }
        Value::Null => Err(AmountError::Missing),
        Value::String(s) => Err(AmountError::NotAnInteger(format!(
            "the string {:?}",
            s.chars().take(40).collect::<String>()
        ))),
        Value::Bool(_) => Err(AmountError::NotAnInteger("a boolean".into())),
        Value::Array(_) | Value::Object(_) => {
            Err(AmountError::NotAnInteger("an array or object".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_in_range_are_accepted() {
        assert_eq!(parse_amount(Some(&json!(11000))), Ok(11000));
        assert_eq!(parse_amount(Some(&json!(MAX_AMOUNT))), Ok(MAX_AMOUNT));
    }

    #[test]
    fn floats_strings_and_out_of_range_amounts_are_refused() {
        assert!(matches!(
            parse_amount(Some(&json!(110.5))),
            Err(AmountError::NotAnInteger(_))
        ));
        assert!(matches!(
            parse_amount(Some(&json!(110.0))),
            Err(AmountError::NotAnInteger(_))
        ));
        assert!(matches!(
            parse_amount(Some(&json!("110"))),
            Err(AmountError::NotAnInteger(_))
        ));
        assert_eq!(
            parse_amount(Some(&json!(0))),
            Err(AmountError::NotPositive(0))
        );
        assert_eq!(
            parse_amount(Some(&json!(-5))),
            Err(AmountError::NotPositive(-5))
        );
        assert!(matches!(
            parse_amount(Some(&json!(MAX_AMOUNT + 1))),
            Err(AmountError::TooLarge(_))
        ));
        assert!(matches!(
            parse_amount(Some(&json!(u64::MAX))),
            Err(AmountError::TooLarge(_))
        ));
        assert_eq!(parse_amount(None), Err(AmountError::Missing));
        assert_eq!(parse_amount(Some(&Value::Null)), Err(AmountError::Missing));
    }
}
