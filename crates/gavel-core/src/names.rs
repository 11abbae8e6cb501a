//! The one owner of each core enum's wire and storage name.
//!
//! `named_enum!` gives an enum `as_str`, `FromStr`, `Display` and a serde form that is the
//! same name, so a JSON body, an SQL column, a Redis field and a log line all spell a
//! variant the way its enum does, and nothing else keeps a copy of the mapping.

use std::fmt;

/// A name that is not one of an enum's variants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being parsed ("status", "close reason", ...).
    pub what: &'static str,
    /// The name given (at most 40 characters of it).
    pub got: String,
    /// Every valid name.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be one of {}, not {:?}",
            self.what,
            self.expected.join(", "),
            self.got
        )
    }
}

impl std::error::Error for UnknownName {}

/// Implements the names of a field-less enum: `ALL`, `NAMES`, `as_str`, `FromStr`,
/// `Display`, `Serialize` and `Deserialize` (as the name).
macro_rules! named_enum {
    ($name:ident, $what:literal, { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every variant's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($s),+];

            /// The wire and storage name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::names::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err($crate::names::UnknownName {
                        what: $what,
                        got: s.chars().take(40).collect(),
                        expected: $name::NAMES,
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "a {} name ({})", $what, $name::NAMES.join(", "))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(Visitor)
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    use crate::{BidKind, CloseReason, EntryKind, Status};
    use std::str::FromStr;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + FromStr + serde::Serialize,
        T: serde::de::DeserializeOwned + std::fmt::Display,
        <T as FromStr>::Err: std::fmt::Debug,
    {
        for v in all {
            let name = v.to_string();
            assert_eq!(T::from_str(&name).unwrap(), *v);
            assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<T>(&format!("\"{name}\"")).unwrap(),
                *v
            );
        }
    }

    #[test]
    fn every_name_reads_back_as_its_variant_in_text_and_json() {
        round_trips(Status::ALL);
        round_trips(CloseReason::ALL);
        round_trips(EntryKind::ALL);
        round_trips(BidKind::ALL);
    }

    #[test]
    fn the_names_are_the_documented_snake_case_ones() {
        assert_eq!(Status::NAMES, ["scheduled", "open", "closed"]);
        assert_eq!(
            CloseReason::NAMES,
            ["ended", "buy_now", "ended_early", "cancelled"]
        );
        assert_eq!(EntryKind::NAMES, ["bid", "auto", "buy_now"]);
        assert_eq!(BidKind::NAMES, ["plain", "max", "buy_now"]);
    }

    #[test]
    fn a_rejection_serializes_under_its_own_code() {
        use crate::{Money, Rejection};
        let m = Money::new(100).unwrap();
        for r in [
            Rejection::Outbid { min_bid: m },
            Rejection::Stale { seq: 3 },
            Rejection::AlreadyLeading,
            Rejection::NotOpen,
            Rejection::Closed,
            Rejection::BuyNowUnavailable,
            Rejection::BuyNowPrice { price: m },
            Rejection::MaxNotRaised { current_max: m },
        ] {
            let json = serde_json::to_value(r).unwrap();
            assert_eq!(json["code"], r.code(), "{json}");
            assert_eq!(crate::outcome_code(&Err(r)), r.code());
        }
        assert_eq!(crate::outcome_code(&Ok(())), "accepted");
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_valid_ones_listed() {
        let e = BidKind::from_str("sneaky").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bid kind must be one of plain, max, buy_now, not \"sneaky\""
        );
        assert!(
            Status::from_str("Open").is_err(),
            "names are case-sensitive"
        );
        assert!(serde_json::from_str::<CloseReason>("\"lost\"").is_err());
        assert!(serde_json::from_str::<EntryKind>("3").is_err());
    }
}
