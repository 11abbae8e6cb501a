//! The server's token verification on arbitrary input: Gavel's own session tokens
//! (`Auth::verify_session`) and the identity provider's JWTs (`ExternalIdentity::verify`,
//! `looks_like_jwt`), plus the key readers (`keys::from_pem`, `keys::from_jwk`). Never a
//! panic, only typed errors (each with its wire code).
//!
//! The first byte chooses what the rest is:
//! - 0..=127: a raw token string;
//! - 128..=191: JWT claims (JSON), signed here with the configured HMAC secret (the issuer
//!   and audience filled in when absent, so the claim checks are reached), then verified;
//! - 192..=223: a PEM document; 224..: a JWK (JSON).
#![no_main]

use futures::executor::block_on;
use gavel_server::auth::{Auth, AuthError, Credential, Role};
use gavel_server::identity::{keys, ExternalIdentity, IdentitySettings};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;

const SESSION_SECRET: &[u8] = b"fuzz-session-secret-0123456789abcdef";
const IDP_SECRET: &str = "fuzz-identity-provider-secret-0123456789";
const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "gavel";
const NOW_MS: i64 = 1_800_000_000_000;

struct Verifiers {
    auth: Auth,
    identity: ExternalIdentity,
}

fn verifiers() -> &'static Verifiers {
    static V: OnceLock<Verifiers> = OnceLock::new();
    V.get_or_init(|| {
        let auth = Auth::new(SESSION_SECRET, None, 3600, 10).expect("a strong secret");
        let settings = IdentitySettings {
            hmac_secret: Some(IDP_SECRET.into()),
            public_key_file: None,
            jwks_urls: Vec::new(),
            issuers: vec![ISSUER.into()],
            audiences: vec![AUDIENCE.into()],
            leeway_secs: 5,
            name_claim: "name".into(),
            role_claim: "realm_access.roles".into(),
            admin_role: "gavel:admin".into(),
            jwks_min_refresh: Duration::from_secs(60),
        };
        // No JWKS URL: nothing is fetched, so the future completes without a runtime.
        let identity = block_on(ExternalIdentity::build(settings))
            .expect("valid settings")
            .expect("identity configured");
        Verifiers { auth, identity }
    })
}

/// Every refusal is typed and has a wire code.
fn refused(e: &AuthError) {
    let _ = (e.code(), e.to_string());
}

fn verify_all(token: &str) {
    let v = verifiers();
    match v.auth.verify_session(token, NOW_MS) {
        Ok(p) => {
            assert!(
                matches!(p.credential, Credential::Session { expires_at } if expires_at > NOW_MS)
            );
        }
        Err(e) => refused(&e),
    }
    let _ = gavel_server::identity::external::looks_like_jwt(token);
    match block_on(v.identity.verify(token, NOW_MS)) {
        Ok(p) => {
            assert!(p.id.starts_with("ext:"), "external id {:?}", p.id);
            assert!(!p.name.is_empty());
            assert!(!p.name.chars().any(char::is_control), "name {:?}", p.name);
            assert!(
                matches!(p.credential, Credential::External { expires_at } if expires_at > NOW_MS)
            );
            assert!(matches!(p.role, Role::Bidder | Role::Admin));
        }
        Err(e) => refused(&e),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode {
        0..=127 => verify_all(&text),
        128..=191 => {
            let Ok(Value::Object(mut claims)) = serde_json::from_str::<Value>(&text) else {
                return;
            };
            if mode & 1 == 0 {
                claims
                    .entry("iss")
                    .or_insert_with(|| Value::String(ISSUER.into()));
                claims
                    .entry("aud")
                    .or_insert_with(|| Value::String(AUDIENCE.into()));
            }
            let alg = match (mode >> 1) % 3 {
                0 => Algorithm::HS256,
                1 => Algorithm::HS384,
                _ => Algorithm::HS512,
            };
            let key = EncodingKey::from_secret(IDP_SECRET.as_bytes());
            if let Ok(token) = encode(&Header::new(alg), &claims, &key) {
                verify_all(&token);
            }
            // The same claims as a session token, signed with the session secret.
            let key = EncodingKey::from_secret(SESSION_SECRET);
            if let Ok(token) = encode(&Header::new(Algorithm::HS256), &claims, &key) {
                verify_all(&token);
            }
        }
        192..=223 => {
            if let Err(e) = keys::from_pem(&text, ISSUER) {
                let _ = e.to_string();
            }
        }
        _ => {
            if let Ok(jwk) = serde_json::from_str::<jsonwebtoken::jwk::Jwk>(&text) {
                if let Err(e) = keys::from_jwk(&jwk, ISSUER) {
                    let _ = e.to_string();
                }
            }
        }
    }
});
