//! Verification keys of external identity providers, each pinned to the algorithms its
//! type allows: an HMAC secret verifies only HS256/384/512, an RSA key only RS256/384/512,
//! a P-256 key only ES256, a P-384 key only ES384, an Ed25519 key only EdDSA. `none` is never
//! accepted, and a public key is never used as an HMAC secret.

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// One key that may verify tokens of one issuer.
#[derive(Clone)]
pub struct VerifyKey {
    /// The issuer (`iss`) whose tokens this key verifies; no other issuer's.
    pub issuer: String,
    /// The key id (`kid`), when the key has one.
    pub kid: Option<String>,
    /// The algorithms this key may verify (one family, never `none`).
    pub algorithms: Vec<Algorithm>,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// A key file or JWK that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

const RSA_ALGS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];
const HMAC_ALGS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// Shortest accepted `--jwt-hmac-secret`, in bytes.
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// The `--jwt-hmac-secret` key (HS256, HS384 or HS512).
pub fn hmac(secret: &[u8], issuer: &str) -> Result<VerifyKey, KeyError> {
    if secret.len() < MIN_HMAC_SECRET_BYTES {
        return Err(KeyError(format!(
            "--jwt-hmac-secret (GAVEL_JWT_HMAC_SECRET) is {} bytes; it must be at least \
             {MIN_HMAC_SECRET_BYTES}",
            secret.len()
        )));
    }
    Ok(VerifyKey {
        issuer: issuer.to_string(),
        kid: None,
        algorithms: HMAC_ALGS.to_vec(),
        key: DecodingKey::from_secret(secret),
    })
}

// DER object identifiers, as they appear in a SubjectPublicKeyInfo.
const OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01,
];
const OID_EC: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2B, 0x65, 0x70];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The keys of a `--jwt-public-key` PEM file (one or more `PUBLIC KEY` / `RSA PUBLIC KEY`
/// blocks), each pinned to its type's algorithms.
pub fn from_pem(pem: &str, issuer: &str) -> Result<Vec<VerifyKey>, KeyError> {
    let mut keys = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| KeyError("a PEM header is not closed".into()))?;
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        // The end line is looked for after the header: one earlier in the text (found by the
        // fuzz target `jwt`) would slice the block backwards.
        let body_at = start + 11 + label_end + 5;
        let end = rest[body_at..]
            .find(&end_marker)
            .map(|i| body_at + i)
            .ok_or_else(|| KeyError(format!("the PEM block {label} has no end line")))?;
        let block = &rest[start..end + end_marker.len()];
        rest = &rest[end + end_marker.len()..];
        let body: String = block
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| KeyError(format!("the PEM block {label} is not base64: {e}")))?;
        let bad = |e: jsonwebtoken::errors::Error| KeyError(format!("{label}: {e}"));
        let (key, algorithms) = match label {
            "RSA PUBLIC KEY" => (
                DecodingKey::from_rsa_pem(block.as_bytes()).map_err(bad)?,
                RSA_ALGS.to_vec(),
            ),
            "PUBLIC KEY" if contains(&der, OID_RSA) => (
                DecodingKey::from_rsa_pem(block.as_bytes()).map_err(bad)?,
                RSA_ALGS.to_vec(),
            ),
            "PUBLIC KEY" if contains(&der, OID_EC) => {
                let alg = if contains(&der, OID_P256) {
                    Algorithm::ES256
                } else if contains(&der, OID_P384) {
                    Algorithm::ES384
                } else {
                    return Err(KeyError(
                        "an EC public key on a curve other than P-256 or P-384".into(),
                    ));
                };
                (
                    DecodingKey::from_ec_pem(block.as_bytes()).map_err(bad)?,
                    vec![alg],
                )
            }
            "PUBLIC KEY" if contains(&der, OID_ED25519) => (
                DecodingKey::from_ed_pem(block.as_bytes()).map_err(bad)?,
                vec![Algorithm::EdDSA],
            ),
            "PUBLIC KEY" => {
                return Err(KeyError(
                    "a public key of an unsupported type (RSA, EC P-256/P-384 and Ed25519 are)"
                        .into(),
                ))
            }
            "CERTIFICATE" => {
                return Err(KeyError(
                    "a certificate, not a public key: extract it with \
                     `openssl x509 -in cert.pem -pubkey -noout`"
                        .into(),
                ))
            }
            l if l.contains("PRIVATE") => {
                return Err(KeyError(
                    "a private key: give Gavel only the public key \
                     (`openssl pkey -in key.pem -pubout`)"
                        .into(),
                ))
            }
            other => return Err(KeyError(format!("an unsupported PEM block: {other}"))),
        };
        keys.push(VerifyKey {
            issuer: issuer.to_string(),
            kid: None,
            algorithms,
            key,
        });
    }
    if keys.is_empty() {
        return Err(KeyError("no PEM public key in the file".into()));
    }
    Ok(keys)
}

/// A key of a JWKS document, or why it is skipped: symmetric keys (a JWKS is public),
/// encryption keys, unsupported curves, and an `alg` that does not fit the key's type.
pub fn from_jwk(jwk: &Jwk, issuer: &str) -> Result<VerifyKey, KeyError> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err(KeyError("an encryption key (use: enc)".into()));
    }
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA_ALGS.to_vec(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err(KeyError("an EC key on an unsupported curve".into())),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        AlgorithmParameters::OctetKeyPair(_) => {
            return Err(KeyError("an OKP key on an unsupported curve".into()))
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err(KeyError(
                "a symmetric key (kty oct) in a public key set".into(),
            ))
        }
    };
    let algorithms = match jwk.common.key_algorithm {
        None => family,
        Some(declared) => {
            let alg = match declared {
                KeyAlgorithm::RS256 => Algorithm::RS256,
                KeyAlgorithm::RS384 => Algorithm::RS384,
                KeyAlgorithm::RS512 => Algorithm::RS512,
                KeyAlgorithm::ES256 => Algorithm::ES256,
                KeyAlgorithm::ES384 => Algorithm::ES384,
                KeyAlgorithm::EdDSA => Algorithm::EdDSA,
                other => return Err(KeyError(format!("the algorithm {other:?} is not accepted"))),
            };
            if !family.contains(&alg) {
                return Err(KeyError(format!("alg {alg:?} does not fit the key's type")));
            }
            vec![alg]
        }
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyError(e.to_string()))?;
    Ok(VerifyKey {
        issuer: issuer.to_string(),
        kid: jwk.common.key_id.clone(),
        algorithms,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hmac_secrets_private_keys_and_certificates_are_refused_with_what_to_do() {
        assert!(hmac(b"short", "iss").unwrap_err().0.contains("at least 32"));
        let k = hmac(&[7u8; 32], "iss").unwrap();
        assert_eq!(k.algorithms, HMAC_ALGS.to_vec());
        let private =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        assert!(from_pem(private, "iss").unwrap_err().0.contains("-pubout"));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(from_pem(cert, "iss").unwrap_err().0.contains("x509"));
        assert!(from_pem("no key here", "iss")
            .unwrap_err()
            .0
            .contains("no PEM"));
        let open = "-----BEGIN PUBLIC KEY-----\nAAAA\n";
        assert!(from_pem(open, "iss").is_err());
    }

    /// Found by the fuzz target `jwt` (fuzz/): an end line before the header made the block
    /// slice run backwards (a panic at start-up on a malformed `--jwt-public-key`).
    #[test]
    fn an_end_line_before_its_header_is_refused_not_a_panic() {
        let backwards = "-----END PUBLIC KEY-----\n-----BEGIN PUBLIC KEY-----\nAAAA\n";
        assert!(from_pem(backwards, "iss")
            .unwrap_err()
            .0
            .contains("no end line"));
        // The header's own dashes are not taken for the end line either.
        let overlapping = "-----BEGIN X-----END X-----\n";
        assert!(from_pem(overlapping, "iss").is_err());
    }

    #[test]
    fn an_ed25519_pem_key_is_pinned_to_eddsa() {
        // The SubjectPublicKeyInfo of an Ed25519 key (RFC 8410 example).
        let pem = "-----BEGIN PUBLIC KEY-----\n\
                   MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
                   -----END PUBLIC KEY-----\n";
        let keys = from_pem(pem, "https://idp.test/").unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].algorithms, vec![Algorithm::EdDSA]);
        assert_eq!(keys[0].issuer, "https://idp.test/");
    }

    #[test]
    fn jwks_keys_are_pinned_to_their_type_and_secrets_are_skipped() {
        let jwk = |v: serde_json::Value| serde_json::from_value::<Jwk>(v).unwrap();
        let ed = jwk(
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "e1",
            "x": "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"}),
        );
        let k = from_jwk(&ed, "iss").unwrap();
        assert_eq!(
            (k.kid.as_deref(), k.algorithms.clone()),
            (Some("e1"), vec![Algorithm::EdDSA])
        );
        let secret = jwk(serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s"}));
        assert!(from_jwk(&secret, "iss")
            .unwrap_err()
            .0
            .contains("symmetric"));
        let mislabelled = jwk(
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "RS256",
            "x": "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"}),
        );
        assert!(from_jwk(&mislabelled, "iss").is_err());
        let enc = jwk(
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "use": "enc",
            "x": "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"}),
        );
        assert!(from_jwk(&enc, "iss").is_err());
    }
}
