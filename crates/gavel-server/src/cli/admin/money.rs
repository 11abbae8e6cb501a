//! Amounts typed by an operator (`12.50` in the auction's currency) to integer minor units
//! and back, exactly: decimal digits are read as digits, never through a float.

/// Digits after the decimal point of `currency`'s minor unit (ISO 4217): 0 for the yen and
/// a few others, 3 for the Gulf dinars and a few others, 4 for the Chilean and Uruguayan
/// units of account, 2 otherwise.
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// Why an amount was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("{0:?} is not an amount: write digits with at most one decimal point, e.g. 12.50 (no sign, no thousands separators, no exponent)")]
    Syntax(String),
    #[error("{amount:?} has more decimals than {currency} has ({digits})")]
    TooPrecise {
        amount: String,
        currency: String,
        digits: u32,
    },
    #[error("{0:?} is too large")]
    TooLarge(String),
    #[error("{0:?} must be more than zero")]
    NotPositive(String),
}

/// `raw` (e.g. `12.5`) in `currency` as integer minor units (`1250` for USD). Refuses a
/// sign, an exponent, separators, more decimals than the currency has, zero and overflow.
pub fn parse_amount(raw: &str, currency: &str) -> Result<i64, AmountError> {
    let digits = minor_digits(currency);
    let s = raw.trim();
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(AmountError::Syntax(raw.to_string()));
    }
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > digits as usize {
        return Err(AmountError::TooPrecise {
            amount: raw.to_string(),
            currency: currency.to_string(),
            digits,
        });
    }
    let too_large = || AmountError::TooLarge(raw.to_string());
    let mut minor: i64 = 0;
    for b in whole.bytes() {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(b - b'0')))
            .ok_or_else(too_large)?;
    }
    for i in 0..digits as usize {
        let d = frac_trimmed.as_bytes().get(i).map_or(0, |b| b - b'0');
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(d)))
            .ok_or_else(too_large)?;
    }
    if minor <= 0 {
        return Err(AmountError::NotPositive(raw.to_string()));
    }
    Ok(minor)
}

/// `minor` units of `currency` written as a decimal (`1250`, USD → `12.50`).
pub fn format_amount(minor: i64, currency: &str) -> String {
    let digits = minor_digits(currency);
    if digits == 0 {
        return minor.to_string();
    }
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale = 10u64.pow(digits);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = digits as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_become_exact_minor_units() {
        assert_eq!(parse_amount("12.50", "USD"), Ok(1250));
        assert_eq!(parse_amount("12.5", "USD"), Ok(1250));
        assert_eq!(parse_amount("12", "USD"), Ok(1200));
        assert_eq!(parse_amount("0.01", "EUR"), Ok(1));
        assert_eq!(parse_amount(".5", "EUR"), Ok(50));
        assert_eq!(parse_amount("12.", "EUR"), Ok(1200));
        assert_eq!(parse_amount("1500", "JPY"), Ok(1500));
        assert_eq!(parse_amount("1.234", "KWD"), Ok(1234));
        assert_eq!(parse_amount("12.500", "USD"), Ok(1250));
        // 0.1 + 0.2 style values stay exact.
        assert_eq!(parse_amount("0.29", "USD"), Ok(29));
        assert_eq!(parse_amount("1.15", "USD"), Ok(115));
        assert_eq!(parse_amount("92233720368547758.07", "USD"), Ok(i64::MAX));
    }

    #[test]
    fn malformed_or_imprecise_amounts_are_refused() {
        for bad in [
            "", ".", "-5", "+5", "1e3", "1,000", "12.5.0", "abc", "1 000", "0x10",
        ] {
            assert_eq!(
                parse_amount(bad, "USD"),
                Err(AmountError::Syntax(bad.to_string())),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_amount("12.345", "USD"),
            Err(AmountError::TooPrecise { digits: 2, .. })
        ));
        assert!(matches!(
            parse_amount("1.5", "JPY"),
            Err(AmountError::TooPrecise { digits: 0, .. })
        ));
        assert!(matches!(
            parse_amount("92233720368547758.08", "USD"),
            Err(AmountError::TooLarge(_))
        ));
        assert!(matches!(
            parse_amount("0.00", "USD"),
            Err(AmountError::NotPositive(_))
        ));
    }

    #[test]
    fn minor_units_print_as_decimals() {
        assert_eq!(format_amount(1250, "USD"), "12.50");
        assert_eq!(format_amount(5, "USD"), "0.05");
        assert_eq!(format_amount(1500, "JPY"), "1500");
        assert_eq!(format_amount(1234, "KWD"), "1.234");
        assert_eq!(format_amount(-5, "USD"), "-0.05");
    }
}
