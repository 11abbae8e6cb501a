//! Identity from the marketplace: JWTs issued by the operator's identity provider,
//! accepted alongside Gavel's own session tokens (see `docs/security.md`).
//!
//! - [`keys`]: verification keys pinned to their algorithms (HMAC secret, PEM, JWK).
//! - [`jwks`]: one issuer's JWKS document, cached and refreshed.
//! - [`external`]: verifies a token and maps its claims to a [`crate::auth::Principal`].

pub mod external;
pub mod jwks;
pub mod keys;

pub use external::{ExternalIdentity, IdentitySettings};

/// The marker appended to a guest's display name when external identity is on, so a guest
/// can never pass for one of the marketplace's users (whose names come from their tokens).
pub const GUEST_SUFFIX: &str = " (guest)";

/// The prefix of the user id of an external user of the first `--jwt-issuer` (`ext:` +
/// `sub`); the n-th issuer's users get `ext<n>:` (n from 2). Guest ids are `u-<uuid>` and
/// the admin token's is `admin`, so no external id can be taken for either.
pub fn external_id(issuer_index: usize, sub: &str) -> String {
    if issuer_index == 0 {
        format!("ext:{sub}")
    } else {
        format!("ext{}:{sub}", issuer_index + 1)
    }
}
