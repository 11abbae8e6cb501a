//! Verifies an external identity provider's JWT and maps its claims to a principal.
//!
//! The order of checks: the header (its `alg` must be a signature algorithm, never `none`),
//! the unverified `iss` only to choose the keys (an unknown issuer is `bad_issuer`; none at all
//! is `unauthorized`, as a Gavel session token from a rotated secret would be), the key
//! by issuer **and** `kid` (`unknown_key`; an unknown `kid` refreshes that issuer's JWKS at
//! most once a minute), the signature with the key's pinned algorithms (`bad_signature`),
//! then the claims: `aud` (`bad_audience`), `exp` (`token_expired`), `nbf`/`iat`
//! (`token_not_yet_valid`), each with `--jwt-leeway-secs`, against the authority's clock.

use super::jwks::Jwks;
use super::keys::{self, VerifyKey};
use crate::auth::{AuthError, Credential, Principal, Role};
use base64::Engine as _;
use jsonwebtoken::Validation;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// What `gavel serve` was told about external identity.
#[derive(Clone, Debug, Default)]
pub struct IdentitySettings {
    pub hmac_secret: Option<String>,
    pub public_key_file: Option<std::path::PathBuf>,
    pub jwks_urls: Vec<String>,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub leeway_secs: u64,
    pub name_claim: String,
    pub role_claim: String,
    pub admin_role: String,
    pub jwks_min_refresh: Duration,
}

impl IdentitySettings {
    /// Whether any source of external keys is configured.
    pub fn enabled(&self) -> bool {
        self.hmac_secret.as_deref().is_some_and(|s| !s.is_empty())
            || self.public_key_file.is_some()
            || !self.jwks_urls.is_empty()
    }
}

pub struct ExternalIdentity {
    settings: IdentitySettings,
    /// `--jwt-hmac-secret` and `--jwt-public-key`: the first issuer's.
    fixed: Vec<VerifyKey>,
    /// One per `--jwks-url`, the n-th for the n-th issuer.
    jwks: Vec<Arc<Jwks>>,
}

/// The start-up refusal: external identity configured incompletely or with unusable keys.
#[derive(Debug, thiserror::Error)]
#[error("external identity: {0}")]
pub struct SetupError(pub String);

impl ExternalIdentity {
    /// `None` when no external key source is configured (then issuer and audience must not
    /// be either: they would be silently unused).
    pub async fn build(settings: IdentitySettings) -> Result<Option<Self>, SetupError> {
        if !settings.enabled() {
            if !settings.issuers.is_empty() || !settings.audiences.is_empty() {
                return Err(SetupError(
                    "--jwt-issuer/--jwt-audience are set but no key is: give \
                     --jwt-hmac-secret, --jwt-public-key or --jwks-url"
                        .into(),
                ));
            }
            return Ok(None);
        }
        if settings.issuers.is_empty() || settings.audiences.is_empty() {
            return Err(SetupError(
                "accepting external tokens (--jwt-hmac-secret, --jwt-public-key or \
                 --jwks-url) needs both --jwt-issuer (GAVEL_JWT_ISSUER) and --jwt-audience \
                 (GAVEL_JWT_AUDIENCE): without them a token issued for another service or by \
                 another provider would be accepted"
                    .into(),
            ));
        }
        if settings.jwks_urls.len() > settings.issuers.len() {
            return Err(SetupError(format!(
                "{} --jwks-url values but {} --jwt-issuer values: the n-th JWKS URL holds the \
                 keys of the n-th issuer",
                settings.jwks_urls.len(),
                settings.issuers.len()
            )));
        }
        let first = settings.issuers[0].clone();
        let mut fixed = Vec::new();
        if let Some(secret) = settings.hmac_secret.as_deref().filter(|s| !s.is_empty()) {
            fixed.push(keys::hmac(secret.as_bytes(), &first).map_err(|e| SetupError(e.0))?);
        }
        if let Some(path) = &settings.public_key_file {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| SetupError(format!("--jwt-public-key {}: {e}", path.display())))?;
            fixed
                .extend(keys::from_pem(&pem, &first).map_err(|e| {
                    SetupError(format!("--jwt-public-key {}: {e}", path.display()))
                })?);
        }
        let jwks: Vec<Arc<Jwks>> = settings
            .jwks_urls
            .iter()
            .zip(&settings.issuers)
            .map(|(url, iss)| {
                Arc::new(Jwks::new(
                    url.clone(),
                    iss.clone(),
                    settings.jwks_min_refresh,
                ))
            })
            .collect();
        for j in &jwks {
            // A provider down at start is not fatal: its keys come with the next fetch.
            let _ = j.fetch().await;
        }
        tracing::info!(
            issuers = ?settings.issuers,
            audiences = ?settings.audiences,
            fixed_keys = fixed.len(),
            jwks = jwks.len(),
            "external identity on"
        );
        Ok(Some(ExternalIdentity {
            settings,
            fixed,
            jwks,
        }))
    }

    /// The JWKS documents (the server refreshes them periodically).
    pub fn jwks(&self) -> &[Arc<Jwks>] {
        &self.jwks
    }

    /// Keys of issuer `index` that may verify a token with `kid`.
    fn candidates(&self, index: usize, kid: Option<&str>) -> Vec<VerifyKey> {
        let mut all: Vec<VerifyKey> = if index == 0 {
            self.fixed.clone()
        } else {
            Vec::new()
        };
        if let Some(j) = self.jwks.get(index) {
            all.extend(j.keys().iter().cloned());
        }
        match kid {
            // A key with that id; else the keys without one (a PEM or HMAC key).
            Some(kid) => {
                let exact: Vec<VerifyKey> = all
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .cloned()
                    .collect();
                if exact.is_empty() {
                    all.into_iter().filter(|k| k.kid.is_none()).collect()
                } else {
                    exact
                }
            }
            None => all,
        }
    }

    /// Verifies `token` at the authority's time `now_ms`.
    pub async fn verify(&self, token: &str, now_ms: i64) -> Result<Principal, AuthError> {
        let header = read_header(token)?;
        let unverified = read_payload(token)?;
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            // No issuer at all: what one of Gavel's own session tokens looks like when its
            // signature does not verify (a secret since rotated): "sign in again".
            .ok_or(AuthError::Invalid)?;
        let index = self
            .settings
            .issuers
            .iter()
            .position(|i| i == iss)
            .ok_or_else(|| {
                AuthError::BadIssuer(format!("tokens issued by {iss:?} are not accepted"))
            })?;
        let kid = header.kid.as_deref();
        let mut keys = self.candidates(index, kid);
        let knows_kid = |keys: &[VerifyKey]| {
            kid.is_none_or(|kid| keys.iter().any(|k| k.kid.as_deref() == Some(kid)))
        };
        if !knows_kid(&keys) || keys.is_empty() {
            if let Some(j) = self.jwks.get(index) {
                j.refresh_for_unknown_kid().await;
                keys = self.candidates(index, kid);
            }
        }
        if keys.is_empty() {
            return Err(AuthError::UnknownKey(match kid {
                Some(kid) => format!("no key {kid:?} for issuer {iss:?}"),
                None => format!("no key for issuer {iss:?}"),
            }));
        }
        let alg = header.alg;
        let fitting: Vec<&VerifyKey> = keys
            .iter()
            .filter(|k| k.algorithms.contains(&alg))
            .collect();
        if fitting.is_empty() {
            return Err(AuthError::BadSignature(format!(
                "the algorithm {alg:?} is not accepted for this issuer's key"
            )));
        }
        let claims = fitting
            .iter()
            .find_map(|k| verify_with(token, k).transpose())
            .transpose()?
            .ok_or_else(|| AuthError::BadSignature("the signature does not verify".into()))?;
        self.check_claims(&claims, now_ms)?;
        self.principal(index, &claims)
    }

    fn check_claims(&self, c: &Value, now_ms: i64) -> Result<(), AuthError> {
        let audiences: Vec<&str> = match c.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences
            .iter()
            .any(|a| self.settings.audiences.iter().any(|mine| mine == a))
        {
            return Err(AuthError::BadAudience(format!(
                "the token is for {audiences:?}, not for {:?}",
                self.settings.audiences
            )));
        }
        let now = now_ms.div_euclid(1000);
        let leeway = self.settings.leeway_secs as i64;
        let time = |name: &str| -> Result<Option<i64>, AuthError> {
            match c.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(|t| Some(t.floor() as i64))
                    .ok_or_else(|| AuthError::Malformed(format!("{name} is not a number"))),
            }
        };
        let exp = time("exp")?
            .ok_or_else(|| AuthError::Malformed("the token has no expiry (exp)".into()))?;
        if now >= exp.saturating_add(leeway) {
            return Err(AuthError::Expired);
        }
        for name in ["nbf", "iat"] {
            if time(name)?.is_some_and(|t| t > now.saturating_add(leeway)) {
                return Err(AuthError::NotYetValid);
            }
        }
        Ok(())
    }

    fn principal(&self, index: usize, c: &Value) -> Result<Principal, AuthError> {
        let sub = c
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control))
            .ok_or_else(|| AuthError::Malformed("the token names no subject (sub)".into()))?;
        let admin = match claim(c, &self.settings.role_claim) {
            Some(Value::String(r)) => r == &self.settings.admin_role,
            Some(Value::Array(rs)) => rs
                .iter()
                .any(|r| r.as_str() == Some(&self.settings.admin_role)),
            _ => false,
        };
        let role = if admin { Role::Admin } else { Role::Bidder };
        let name = [self.settings.name_claim.as_str(), "preferred_username"]
            .iter()
            .filter_map(|n| claim(c, n)?.as_str())
            .find_map(|n| usable_name(n, role))
            .unwrap_or_else(|| sub.chars().take(gavel_core::text::MAX_NAME_CHARS).collect());
        let exp = c.get("exp").and_then(Value::as_f64).unwrap_or(0.0) as i64;
        Ok(Principal {
            id: super::external_id(index, sub),
            name,
            role,
            credential: Credential::External {
                expires_at: exp
                    .saturating_add(self.settings.leeway_secs as i64)
                    .saturating_mul(1000),
            },
        })
    }
}

/// A display name from a claim: the rules for guests' names, except that a reserved name
/// ("Admin", "Gavel") is kept for an admin, and an over-long one is cut.
fn usable_name(raw: &str, role: Role) -> Option<String> {
    use gavel_core::text::{display_name, NameError, MAX_NAME_CHARS};
    let cut: String = raw.trim().chars().take(MAX_NAME_CHARS).collect();
    match display_name(&cut) {
        Ok(n) => Some(n),
        Err(NameError::Reserved(n)) if role == Role::Admin => Some(n),
        Err(_) => None,
    }
}

/// A claim by name; a name with dots that is not itself a claim is a path into nested
/// objects (`realm_access.roles`). A URL-like namespaced claim (Auth0) is found as a whole.
pub fn claim<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(v) = c.get(name) {
        return Some(v);
    }
    if !name.contains('.') {
        return None;
    }
    name.split('.').try_fold(c, |v, part| v.get(part))
}

fn b64(part: &str) -> Result<Vec<u8>, AuthError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed("a token part is not base64url".into()))
}

/// Whether `token` has the shape of a JWT (three parts, a JSON object header).
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && b64(parts[0])
            .ok()
            .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
            .is_some_and(|h| h.is_object())
}

fn read_header(token: &str) -> Result<jsonwebtoken::Header, AuthError> {
    let first = token.split('.').next().unwrap_or_default();
    let raw: Value = serde_json::from_slice(&b64(first)?)
        .map_err(|_| AuthError::Malformed("the token header is not JSON".into()))?;
    let alg = raw.get("alg").and_then(Value::as_str).unwrap_or_default();
    if alg.eq_ignore_ascii_case("none") || alg.is_empty() {
        return Err(AuthError::BadSignature(
            "unsigned tokens (alg none) are never accepted".into(),
        ));
    }
    jsonwebtoken::decode_header(token)
        .map_err(|_| AuthError::BadSignature(format!("the algorithm {alg:?} is not accepted")))
}

fn read_payload(token: &str) -> Result<Value, AuthError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(AuthError::Malformed("a JWT has three parts".into()));
    }
    let v: Value = serde_json::from_slice(&b64(parts[1])?)
        .map_err(|_| AuthError::Malformed("the token payload is not JSON".into()))?;
    if !v.is_object() {
        return Err(AuthError::Malformed(
            "the token payload is not an object".into(),
        ));
    }
    Ok(v)
}

/// The claims if `key` verifies the signature; `None` if it does not.
fn verify_with(token: &str, key: &VerifyKey) -> Result<Option<Value>, AuthError> {
    let mut v = Validation::new(key.algorithms[0]);
    v.algorithms = key.algorithms.clone();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    match jsonwebtoken::decode::<Value>(token, &key.key, &v) {
        Ok(data) => Ok(Some(data.claims)),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
            | jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_)
            | jsonwebtoken::errors::ErrorKind::InvalidEddsaKey => Ok(None),
            _ => Err(AuthError::Malformed(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_found_whole_first_then_by_path() {
        let c = json!({
            "role": "gavel:admin",
            "realm_access": {"roles": ["a", "b"]},
            "https://shop.example/roles": ["gavel:admin"],
        });
        assert_eq!(claim(&c, "role"), Some(&json!("gavel:admin")));
        assert_eq!(claim(&c, "realm_access.roles"), Some(&json!(["a", "b"])));
        assert_eq!(
            claim(&c, "https://shop.example/roles"),
            Some(&json!(["gavel:admin"]))
        );
        assert_eq!(claim(&c, "realm_access.missing"), None);
        assert_eq!(claim(&c, "nothing"), None);
    }

    #[test]
    fn names_from_claims_follow_the_display_name_rules() {
        assert_eq!(usable_name("  Alice  ", Role::Bidder), Some("Alice".into()));
        assert_eq!(
            usable_name(&"x".repeat(60), Role::Bidder).unwrap().len(),
            40
        );
        assert_eq!(usable_name("Admin", Role::Bidder), None);
        assert_eq!(usable_name("Admin", Role::Admin), Some("Admin".into()));
        assert_eq!(usable_name("a\u{0}b", Role::Bidder), None);
    }

    #[test]
    fn only_three_part_tokens_with_a_json_header_look_like_jwts() {
        assert!(looks_like_jwt("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
        assert!(!looks_like_jwt("an-admin-token-0123456789"));
        assert!(!looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("eyJhbGciOiJIUzI1NiJ9.e30"));
    }
}
