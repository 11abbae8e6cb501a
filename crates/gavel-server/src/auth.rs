//! Sessions: HS256-signed tokens, and the admin token.
//!
//! The bidder's identity always comes from here, never from a message field.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    name: String,
    role: Role,
    iat: i64,
    exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing token")]
    Missing,
    #[error("invalid or expired token")]
    Invalid,
    #[error("cannot read or create the token secret: {0}")]
    Secret(String),
}

/// Signs and verifies session tokens.
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    admin_token: Option<String>,
    ttl_secs: i64,
}

impl Auth {
    pub fn new(secret: &[u8], admin_token: Option<String>, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        Auth {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            admin_token: admin_token.filter(|t| !t.is_empty()),
            ttl_secs: ttl_secs as i64,
        }
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

    /// Issues a token; returns it with its expiry (UTC ms).
    pub fn issue(&self, p: &Principal, now_ms: i64) -> (String, i64) {
        let iat = now_ms / 1000;
        let exp = iat + self.ttl_secs;
        let claims = Claims {
            sub: p.id.clone(),
            name: p.name.clone(),
            role: p.role,
            iat,
            exp,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail");
        (token, exp * 1000)
    }

    /// Whether `candidate` is the admin token (compared in constant time).
    pub fn is_admin_token(&self, candidate: &str) -> bool {
        self.admin_token
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), candidate.as_bytes()))
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if self.is_admin_token(token) {
            return Ok(Principal {
                id: "admin".into(),
                name: "Admin".into(),
                role: Role::Admin,
            });
        }
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| AuthError::Invalid)?;
        Ok(Principal {
            id: data.claims.sub,
            name: data.claims.name,
            role: data.claims.role,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
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

    fn auth() -> Auth {
        Auth::new(b"test-secret", Some("admin-secret".into()), 3600)
    }

    #[test]
    fn an_issued_token_verifies_as_its_user() {
        let a = auth();
        let p = Principal {
            id: "u-1".into(),
            name: "Alice".into(),
            role: Role::Bidder,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let (token, _) = a.issue(&p, now);
        assert_eq!(a.verify(&token).unwrap(), p);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = Auth::new(b"other-secret", None, 3600);
        let p = Principal {
            id: "u-1".into(),
            name: "Mallory".into(),
            role: Role::Admin,
        };
        let (forged, _) = other.issue(&p, 1_900_000_000_000);
        assert!(matches!(auth().verify(&forged), Err(AuthError::Invalid)));
        assert!(matches!(auth().verify("garbage"), Err(AuthError::Invalid)));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let a = Auth::new(b"s", None, 1);
        let p = Principal {
            id: "u".into(),
            name: "n".into(),
            role: Role::Bidder,
        };
        let (token, _) = a.issue(&p, 1_000_000_000_000);
        assert!(a.verify(&token).is_err());
    }

    #[test]
    fn the_admin_token_is_an_admin() {
        assert_eq!(auth().verify("admin-secret").unwrap().role, Role::Admin);
        assert!(auth().verify("admin-secre").is_err());
    }
}
