//! Identifier newtypes, validated once at the edge.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Validation failure for an identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be 1 to {max} characters of A-Z a-z 0-9 - _ . :, not only dots (got {got:?})")]
pub struct IdError {
    pub what: &'static str,
    pub max: usize,
    pub got: String,
}

/// Ids end up in URL paths and file-like keys, where `.` and `..` mean "here" and "up":
/// an id made only of dots is refused.
fn valid_id(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        && !s.bytes().all(|b| b == b'.')
}

/// An identifier is copied into every decision, reply, record and update it appears in, so
/// it is a shared string: a copy is a reference count, never an allocation.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: impl AsRef<str>) -> Result<Self, IdError> {
                let s = s.as_ref();
                if valid_id(s, $max) {
                    Ok(Self(Arc::from(s)))
                } else {
                    Err(IdError { what: $what, max: $max, got: s.chars().take(80).collect() })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// An auction's id (server-generated, or chosen by the admin who creates it).
    AuctionId, "auction id", 64
);
string_id!(
    /// A bidder's id, taken from the authenticated session, never from a message.
    BidderId, "bidder id", 64
);
string_id!(
    /// A client-chosen idempotency key: the same (bidder, request id) is decided once.
    RequestId, "request_id", 64
);

/// A bidder as shown to others: the id plus a display name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bidder {
    pub id: BidderId,
    /// Shared: a bidder's name is copied into every state and history entry they lead.
    pub name: Arc<str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_longer_than_64_characters_is_rejected() {
        assert!(RequestId::parse("a".repeat(64)).is_ok());
        assert!(RequestId::parse("a".repeat(65)).is_err());
    }

    #[test]
    fn ids_reject_empty_and_odd_characters() {
        assert!(AuctionId::parse("").is_err());
        assert!(AuctionId::parse("a b").is_err());
        assert!(AuctionId::parse("a/b").is_err());
        assert!(AuctionId::parse("auction-1_x.y:z").is_ok());
        assert!(AuctionId::parse(".").is_err());
        assert!(AuctionId::parse("..").is_err());
        assert!(RequestId::parse("...").is_err());
        assert!(AuctionId::parse(".a.").is_ok());
    }
}
