//! Every error code Gavel sends, with its HTTP status: the one owner of both.
//!
//! An HTTP error body and a WebSocket `error` message carry the same codes; a WebSocket-only
//! code still has the status it would have over HTTP, so no caller ever maps a string back to
//! a status. `docs/protocol.md` lists each code with its meaning.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $status:literal;)+) => {
        /// A wire error code (`{"error": {"code": ...}}` over HTTP, `{"type": "error", "code": ...}`
        /// over WebSocket).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }

            /// The HTTP status that goes with the code.
            pub const fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)+
                }
            }
        }

        impl FromStr for ErrorCode {
            type Err = UnknownErrorCode;

            fn from_str(s: &str) -> Result<Self, UnknownErrorCode> {
                match s {
                    $($name => Ok(ErrorCode::$variant),)+
                    _ => Err(UnknownErrorCode(s.chars().take(40).collect())),
                }
            }
        }
    };
}

error_codes! {
    /// The body or frame is not JSON.
    BadJson => "bad_json", 400;
    /// The request itself is malformed (a path that is not UTF-8, a bad header).
    BadRequest => "bad_request", 400;
    /// The query string cannot be read (`limit=-1`, `before_seq=abc`).
    InvalidQuery => "invalid_query", 400;
    /// `GET /api/auctions?status=` is not a status.
    InvalidStatus => "invalid_status", 400;
    /// A page size out of range.
    InvalidLimit => "invalid_limit", 400;
    /// A display name that is empty, too long, reserved or unprintable.
    InvalidName => "invalid_name", 400;
    /// A known message with missing, unknown, duplicated or wrongly typed fields.
    InvalidMessage => "invalid_message", 422;
    /// A WebSocket message whose `type` is missing or unknown.
    UnknownType => "unknown_type", 422;
    /// An amount that is not an integer in `1..=2^53-1`.
    InvalidAmount => "invalid_amount", 422;
    /// A request id that is empty, too long or has odd characters.
    InvalidRequestId => "invalid_request_id", 422;
    /// A bid `kind` that is not `plain`, `max` or `buy_now`.
    InvalidKind => "invalid_kind", 422;
    /// A message that names a bidder: identity comes from the token only.
    IdentityField => "identity_field", 422;
    /// An auction that cannot be created as given (the message names the field).
    InvalidAuction => "invalid_auction", 422;
    /// A webhook endpoint that cannot be used as given: a URL that is not absolute
    /// `http`/`https`, or a secret that is not `whsec_` + base64 of 24 to 64 bytes.
    InvalidWebhook => "invalid_webhook", 422;
    /// No valid token (missing, forged, or signed for another server).
    Unauthorized => "unauthorized", 401;
    /// The token has expired: sign in again, or refresh it before it expires.
    TokenExpired => "token_expired", 401;
    /// The token was issued for, or is valid only from, a time still in the future.
    TokenNotYetValid => "token_not_yet_valid", 401;
    /// An external token from an issuer this server does not accept.
    BadIssuer => "bad_issuer", 401;
    /// An external token issued for another audience (service) than this server's.
    BadAudience => "bad_audience", 401;
    /// A token whose signature does not verify, that is unsigned (`alg: none`), or signed
    /// with an algorithm its issuer's key is not pinned to (HS256 with a public key).
    BadSignature => "bad_signature", 401;
    /// An external token naming a key (`kid`) its issuer does not publish, even after the
    /// JWKS was fetched again.
    UnknownKey => "unknown_key", 401;
    /// Signed in, but not allowed to do this (not an admin, or a wrong admin token).
    Forbidden => "forbidden", 403;
    /// The raw admin token may administer auctions but not bid.
    AdminCannotBid => "admin_cannot_bid", 403;
    /// A browser page from an origin not in `--allowed-origins` (WebSocket upgrade or CORS
    /// preflight).
    OriginNotAllowed => "origin_not_allowed", 403;
    /// Guest sign-in is switched off on this server.
    GuestSessionsDisabled => "guest_sessions_disabled", 403;
    /// No such auction or endpoint.
    NotFound => "not_found", 404;
    /// The route exists, but not with this method.
    MethodNotAllowed => "method_not_allowed", 405;
    /// The client took too long to send its request.
    RequestTimeout => "request_timeout", 408;
    /// An auction with that id exists already.
    AlreadyExists => "already_exists", 409;
    /// The webhook endpoint comes from `--webhook`: change the configuration instead.
    WebhookFromConfig => "webhook_from_config", 409;
    /// The auction has already ended (admin actions).
    Closed => "closed", 409;
    /// The request body is over the limit.
    BodyTooLarge => "body_too_large", 413;
    /// A WebSocket message over `max_message_bytes` (the connection closes with 1009).
    MessageTooLarge => "message_too_large", 413;
    /// Over a rate limit (bids per user, sign-ins or failed admin logins per address, bids in
    /// flight per connection).
    RateLimited => "rate_limited", 429;
    /// Over the per-address or total connection limit.
    TooManyConnections => "too_many_connections", 429;
    /// Over the per-connection subscription limit.
    TooManySubscriptions => "too_many_subscriptions", 429;
    /// The client could not keep up (the connection closes with 1008).
    TooSlow => "too_slow", 429;
    /// Nothing was decided; retrying is safe.
    Unavailable => "unavailable", 503;
    /// The request may have been decided; retry with the same `request_id` to learn how.
    OutcomeUnknown => "outcome_unknown", 503;
    /// A server fault (logged; the message says nothing more).
    Internal => "internal", 500;
}

/// A code this version of the protocol does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownErrorCode(pub String);

impl fmt::Display for UnknownErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown error code {:?}", self.0)
    }
}

impl std::error::Error for UnknownErrorCode {}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ErrorCode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an error code")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ErrorCode, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_reads_back_and_has_an_error_status() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} is listed twice");
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
    }

    #[test]
    fn an_unknown_code_is_refused() {
        assert_eq!(
            "oops".parse::<ErrorCode>(),
            Err(UnknownErrorCode("oops".into()))
        );
        assert!(serde_json::from_str::<ErrorCode>("\"oops\"").is_err());
    }

    #[test]
    fn the_two_failure_kinds_and_validation_have_their_statuses() {
        assert_eq!(ErrorCode::Unavailable.http_status(), 503);
        assert_eq!(ErrorCode::OutcomeUnknown.http_status(), 503);
        assert_eq!(ErrorCode::InvalidAmount.http_status(), 422);
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
        assert_eq!(ErrorCode::TokenExpired.http_status(), 401);
    }
}
