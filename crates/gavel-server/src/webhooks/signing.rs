//! Standard Webhooks 1.0 signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
//! where the key is the base64-decoded part of the `whsec_…` secret and the timestamp is
//! in Unix seconds. The exact bytes sent are the bytes signed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The prefix every secret carries.
pub const PREFIX: &str = "whsec_";

/// Why a configured secret cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a webhook secret must start with whsec_")]
    Prefix,
    #[error("a webhook secret must be whsec_ followed by base64")]
    Base64,
    #[error("a webhook secret must hold 24 to 64 bytes (after base64 decoding)")]
    Length,
}

/// A decoded signing key. Never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>`. The spec asks for 24 to 64 bytes of key.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let b64 = s.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError::Base64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Secret(key))
    }

    /// A new random secret (32 bytes), as `whsec_…`.
    pub fn generate() -> String {
        let key: [u8; 32] = rand::random();
        format!("{PREFIX}{}", STANDARD.encode(key))
    }

    /// The `webhook-signature` header value for one message.
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(self.mac(msg_id, timestamp_secs, body))
        )
    }

    fn mac(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `header` (a space-separated list of `v1,<base64>`) holds a valid signature
    /// of the message: what a receiver does (constant-time comparison).
    pub fn verify(&self, msg_id: &str, timestamp_secs: i64, body: &[u8], header: &str) -> bool {
        header.split(' ').any(|sig| {
            let Some(b64) = sig.strip_prefix("v1,") else {
                return false;
            };
            let Ok(given) = STANDARD.decode(b64) else {
                return false;
            };
            let mut mac =
                Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
            mac.update(msg_id.as_bytes());
            mac.update(b".");
            mac.update(timestamp_secs.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(&given).is_ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signing_matches_the_standard_webhooks_test_vector() {
        let secret = Secret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(MSG_ID, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
    }

    #[test]
    fn verification_accepts_the_vector_and_refuses_any_change() {
        let secret = Secret::parse(SECRET).unwrap();
        assert!(secret.verify(MSG_ID, TIMESTAMP, BODY.as_bytes(), SIGNATURE));
        // One of several signatures (rotation) is enough.
        let listed = format!("v1,AAAA {SIGNATURE}");
        assert!(secret.verify(MSG_ID, TIMESTAMP, BODY.as_bytes(), &listed));
        assert!(!secret.verify(MSG_ID, TIMESTAMP + 1, BODY.as_bytes(), SIGNATURE));
        assert!(!secret.verify("msg_other", TIMESTAMP, BODY.as_bytes(), SIGNATURE));
        assert!(!secret.verify(MSG_ID, TIMESTAMP, br#"{"test": 2432232315}"#, SIGNATURE));
        assert!(!secret.verify(MSG_ID, TIMESTAMP, BODY.as_bytes(), "v2,garbage"));
        let other = Secret::parse(&Secret::generate()).unwrap();
        assert!(!other.verify(MSG_ID, TIMESTAMP, BODY.as_bytes(), SIGNATURE));
    }

    #[test]
    fn secrets_need_the_prefix_base64_and_a_sane_length() {
        assert_eq!(
            Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::Prefix
        );
        assert_eq!(
            Secret::parse("whsec_not base64!").unwrap_err(),
            SecretError::Base64
        );
        assert_eq!(
            Secret::parse("whsec_c2hvcnQ=").unwrap_err(),
            SecretError::Length
        );
        let generated = Secret::generate();
        assert!(generated.starts_with(PREFIX));
        assert!(Secret::parse(&generated).is_ok());
        assert_ne!(generated, Secret::generate());
        assert_eq!(
            format!("{:?}", Secret::parse(SECRET).unwrap()),
            "Secret(<redacted>)"
        );
    }
}
