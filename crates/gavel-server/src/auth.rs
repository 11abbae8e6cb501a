//! Sessions: HS256-signed tokens, and the admin token.
//!
//! The bidder's identity always comes from here, never from a message field.

use gavel_protocol::ErrorCode;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Bidder,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Bidder => "bidder",
            Role::Admin => "admin",
        }
    }
}

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub credential: Credential,
}

/// What the user presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A signed session token, valid until `expires_at` (server UTC ms).
    Session { expires_at: i64 },
    /// An external identity provider's token, valid until `expires_at` (server UTC ms). It
    /// is renewed by its provider, never by Gavel.
    External { expires_at: i64 },
    /// The raw `--admin-token`: it administers auctions, but it is one secret shared by
    /// every operator, not a user, so it may not bid.
    AdminToken,
}

impl Principal {
    /// When the credential stops being valid (server UTC ms); `None` for the admin token.
    pub fn expires_at(&self) -> Option<i64> {
        match self.credential {
            Credential::Session { expires_at } | Credential::External { expires_at } => {
                Some(expires_at)
            }
            Credential::AdminToken => None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    name: String,
    role: Role,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing token")]
    Missing,
    #[error("invalid token")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (issued or valid from a time in the future)")]
    NotYetValid,
    #[error("bad issuer: {0}")]
    BadIssuer(String),
    #[error("bad audience: {0}")]
    BadAudience(String),
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("unknown key: {0}")]
    UnknownKey(String),
    #[error("invalid token: {0}")]
    Malformed(String),
    #[error("too many failed sign-ins from this address; try again in a minute")]
    RateLimited,
    #[error("cannot read or create the token secret: {0}")]
    Secret(String),
    #[error("{0}")]
    Weak(String),
}

impl AuthError {
    /// The wire error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Missing | AuthError::Invalid | AuthError::Malformed(_) => {
                ErrorCode::Unauthorized
            }
            AuthError::BadIssuer(_) => ErrorCode::BadIssuer,
            AuthError::BadAudience(_) => ErrorCode::BadAudience,
            AuthError::BadSignature(_) => ErrorCode::BadSignature,
            AuthError::UnknownKey(_) => ErrorCode::UnknownKey,
            AuthError::Expired => ErrorCode::TokenExpired,
            AuthError::NotYetValid => ErrorCode::TokenNotYetValid,
            AuthError::RateLimited => ErrorCode::RateLimited,
            AuthError::Secret(_) | AuthError::Weak(_) => ErrorCode::Internal,
        }
    }
}

/// Shortest accepted `--admin-token`, in bytes.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 16;
/// Shortest accepted JWT secret, in bytes (HS256 wants at least its 32-byte output).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// Clock skew tolerated on `iat` and `nbf` (tokens issued by a node whose clock runs ahead).
const LEEWAY_SECS: i64 = 5;

/// Signs and verifies session tokens, and compares the admin token.
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    admin_token: Option<String>,
    ttl_secs: i64,
    failures: AuthFailures,
}

impl Auth {
    /// Refuses an admin token or secret too short to resist guessing.
    pub fn new(
        secret: &[u8],
        admin_token: Option<String>,
        ttl_secs: u64,
        failures_per_minute: u32,
    ) -> Result<Self, AuthError> {
        let admin_token = admin_token.filter(|t| !t.is_empty());
        if let Some(t) = &admin_token {
            if t.len() < MIN_ADMIN_TOKEN_BYTES {
                return Err(AuthError::Weak(format!(
                    "--admin-token (GAVEL_ADMIN_TOKEN) is {} bytes; it must be at least \
                     {MIN_ADMIN_TOKEN_BYTES} (generate one with `openssl rand -hex 32`)",
                    t.len()
                )));
            }
        }
        if secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(AuthError::Weak(format!(
                "the JWT secret (--jwt-secret, GAVEL_JWT_SECRET or <data-dir>/jwt-secret) is {} \
                 bytes; it must be at least {MIN_JWT_SECRET_BYTES} (generate one with \
                 `openssl rand -hex 32`)",
                secret.len()
            )));
        }
        // Times are checked by `verify` against the authority's clock, not the system's.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        Ok(Auth {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            admin_token,
            ttl_secs: ttl_secs as i64,
            failures: AuthFailures::new(failures_per_minute),
        })
    }

    /// The configured secret, or the one stored in `data_dir/jwt-secret` (created with
    /// 32 random bytes on first start, readable by the owner only).
    pub fn load_secret(configured: Option<&str>, data_dir: &Path) -> Result<Vec<u8>, AuthError> {
        if let Some(s) = configured.filter(|s| !s.is_empty()) {
            return Ok(s.as_bytes().to_vec());
        }
        let path = data_dir.join("jwt-secret");
        match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => return Ok(s.trim().as_bytes().to_vec()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(AuthError::Secret(e.to_string())),
        }
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        write_private(&path, &secret).map_err(|e| AuthError::Secret(e.to_string()))?;
        Ok(secret.into_bytes())
    }

    /// Issues a token for `p` at `now_ms`; returns it with its expiry (UTC ms).
    pub fn issue(&self, p: &Principal, now_ms: i64) -> (String, i64) {
        let iat = now_ms.div_euclid(1000);
        let exp = iat + self.ttl_secs;
        let claims = Claims {
            sub: p.id.clone(),
            name: p.name.clone(),
            role: p.role,
            iat,
            exp,
            nbf: None,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail");
        (token, exp * 1000)
    }

    /// Whether `candidate` is the admin token (compared in constant time).
    fn is_admin_token(&self, candidate: &str) -> bool {
        self.admin_token
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), candidate.as_bytes()))
    }

    /// Verifies a signed session token at the authority's time `now_ms`.
    pub fn verify_session(&self, token: &str, now_ms: i64) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let c = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| AuthError::Invalid)?
            .claims;
        let now = now_ms.div_euclid(1000);
        if c.iat > now + LEEWAY_SECS || c.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
            return Err(AuthError::NotYetValid);
        }
        let expires_at = c.exp.saturating_mul(1000);
        if now_ms >= expires_at {
            return Err(AuthError::Expired);
        }
        Ok(Principal {
            id: c.sub,
            name: c.name,
            role: c.role,
            credential: Credential::Session { expires_at },
        })
    }

    /// Authenticates a bearer token from `ip`: a session token, or else the admin token.
    /// Failed admin-token guesses are counted per address; past the limit the address gets
    /// `RateLimited` without the token being compared at all (a valid session token still
    /// works: its signature cannot be guessed).
    pub fn authenticate(
        &self,
        token: &str,
        ip: IpAddr,
        now_ms: i64,
    ) -> Result<Principal, AuthError> {
        match self.verify_session(token, now_ms) {
            Err(AuthError::Invalid) => {}
            other => return other,
        }
        self.admin(token, ip)
    }

    /// The admin token's principal, if `token` is it (a wrong one counts against `ip`).
    pub fn admin(&self, token: &str, ip: IpAddr) -> Result<Principal, AuthError> {
        self.check_admin_token(token, ip)?;
        Ok(Principal {
            id: "admin".into(),
            name: "Admin".into(),
            role: Role::Admin,
            credential: Credential::AdminToken,
        })
    }

    /// Checks an admin token presented from `ip` (bearer, WebSocket `auth`, or a sign-in
    /// asking for the admin role), counting a wrong one against the address.
    pub fn check_admin_token(&self, candidate: &str, ip: IpAddr) -> Result<(), AuthError> {
        if !self.failures.may_try(ip) {
            metrics::counter!("gavel_auth_failures_refused_total").increment(1);
            return Err(AuthError::RateLimited);
        }
        if self.is_admin_token(candidate) {
            return Ok(());
        }
        metrics::counter!("gavel_auth_failures_total").increment(1);
        self.failures.failed(ip);
        Err(AuthError::Invalid)
    }

    /// Forgets addresses whose failures are older than the current minute.
    pub fn housekeeping(&self) {
        self.failures.purge();
    }
}

/// Failed admin-token attempts per address, in fixed one-minute windows. (Only failures
/// count: an operator using the admin token as a bearer on every request is never limited.)
struct AuthFailures {
    per_minute: u32,
    /// Address -> (minute, failures in it).
    by_ip: Mutex<HashMap<IpAddr, (u64, u32)>>,
    started: Instant,
}

impl AuthFailures {
    fn new(per_minute: u32) -> Self {
        AuthFailures {
            per_minute,
            by_ip: Mutex::default(),
            started: Instant::now(),
        }
    }

    fn minute(&self) -> u64 {
        self.started.elapsed().as_secs() / 60
    }

    /// Whether `ip` may try once more (0 per minute: unlimited).
    fn may_try(&self, ip: IpAddr) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let minute = self.minute();
        self.by_ip
            .lock()
            .get(&ip)
            .is_none_or(|&(m, n)| m != minute || n < self.per_minute)
    }

    fn failed(&self, ip: IpAddr) {
        if self.per_minute == 0 {
            return;
        }
        let minute = self.minute();
        let mut by_ip = self.by_ip.lock();
        let entry = by_ip.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    fn purge(&self) {
        let minute = self.minute();
        let mut by_ip = self.by_ip.lock();
        by_ip.retain(|_, (m, _)| *m == minute);
        by_ip.shrink_to_fit();
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret";
    const ADMIN: &str = "admin-secret-1234";
    const NOW: i64 = 1_900_000_000_000;

    fn auth() -> Auth {
        Auth::new(SECRET, Some(ADMIN.into()), 3600, 3).unwrap()
    }

    fn alice() -> Principal {
        Principal {
            id: "u-1".into(),
            name: "Alice".into(),
            role: Role::Bidder,
            credential: Credential::Session {
                expires_at: NOW + 3_600_000,
            },
        }
    }

    fn ip() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    fn signed(claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    #[test]
    fn an_issued_token_verifies_as_its_user_until_it_expires() {
        let a = auth();
        let (token, expires_at) = a.issue(&alice(), NOW);
        assert_eq!(expires_at, NOW + 3_600_000);
        assert_eq!(a.verify_session(&token, NOW).unwrap(), alice());
        assert_eq!(a.authenticate(&token, ip(), NOW).unwrap(), alice());
        assert!(matches!(
            a.verify_session(&token, expires_at),
            Err(AuthError::Expired)
        ));
        assert!(a.verify_session(&token, expires_at - 1).is_ok());
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = Auth::new(b"other-secret-other-secret-other-secret", None, 3600, 0).unwrap();
        let mut p = alice();
        p.role = Role::Admin;
        let (forged, _) = other.issue(&p, NOW);
        assert!(matches!(
            auth().verify_session(&forged, NOW),
            Err(AuthError::Invalid)
        ));
        assert!(matches!(
            auth().verify_session("garbage", NOW),
            Err(AuthError::Invalid)
        ));
    }

    #[test]
    fn a_token_issued_or_valid_from_the_future_is_refused() {
        let now_s = NOW / 1000;
        let base =
            serde_json::json!({"sub": "u-1", "name": "A", "role": "bidder", "exp": now_s + 7200});
        let mut future_iat = base.clone();
        future_iat["iat"] = (now_s + 3600).into();
        let mut future_nbf = base.clone();
        future_nbf["iat"] = now_s.into();
        future_nbf["nbf"] = (now_s + 3600).into();
        let mut skewed = base.clone();
        skewed["iat"] = (now_s + LEEWAY_SECS).into();
        let a = auth();
        assert!(matches!(
            a.verify_session(&signed(future_iat), NOW),
            Err(AuthError::NotYetValid)
        ));
        assert!(matches!(
            a.verify_session(&signed(future_nbf), NOW),
            Err(AuthError::NotYetValid)
        ));
        assert!(
            a.verify_session(&signed(skewed), NOW).is_ok(),
            "within the leeway"
        );
    }

    #[test]
    fn the_admin_token_is_an_admin_that_never_expires() {
        let p = auth().authenticate(ADMIN, ip(), NOW).unwrap();
        assert_eq!(
            (p.role, p.credential),
            (Role::Admin, Credential::AdminToken)
        );
        assert_eq!(p.expires_at(), None);
        assert!(matches!(
            auth().authenticate("admin-secret-123", ip(), NOW),
            Err(AuthError::Invalid)
        ));
    }

    #[test]
    fn wrong_admin_tokens_are_limited_per_address_and_sessions_still_work() {
        let a = auth();
        for _ in 0..3 {
            assert!(matches!(
                a.authenticate("guess", ip(), NOW),
                Err(AuthError::Invalid)
            ));
        }
        // Past the limit even the right token is not compared.
        assert!(matches!(
            a.authenticate(ADMIN, ip(), NOW),
            Err(AuthError::RateLimited)
        ));
        assert!(matches!(
            a.check_admin_token(ADMIN, ip()),
            Err(AuthError::RateLimited)
        ));
        let (token, _) = a.issue(&alice(), NOW);
        assert_eq!(a.authenticate(&token, ip(), NOW).unwrap(), alice());
        let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(a.authenticate(ADMIN, elsewhere, NOW).is_ok());
        // The right token does not count as a failure.
        for _ in 0..10 {
            assert!(a.authenticate(ADMIN, elsewhere, NOW).is_ok());
        }
    }

    #[test]
    fn short_admin_tokens_and_secrets_are_refused_with_how_to_make_one() {
        let e = Auth::new(SECRET, Some("s3cret".into()), 3600, 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("at least 16"), "{e}");
        assert!(e.to_string().contains("openssl rand -hex 32"), "{e}");
        let e = Auth::new(b"short", None, 3600, 0).err().unwrap();
        assert!(e.to_string().contains("at least 32"), "{e}");
        assert!(e.to_string().contains("openssl rand -hex 32"), "{e}");
        assert!(Auth::new(SECRET, Some("x".repeat(16)), 3600, 0).is_ok());
    }
}
