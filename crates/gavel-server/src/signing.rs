//! The server's Ed25519 key: signs bid receipts and log heads (`docs/verification.md`).
//!
//! The key file holds the 32-byte secret seed as 64 hex digits (whitespace around it is
//! ignored), e.g. made with `openssl rand -hex 32`. Without `--signing-key`:
//!
//! - embedded mode generates `<data-dir>/signing-key` (mode 0600) on first start;
//! - distributed mode shares one key between every node of the deployment: the first node
//!   to start generates it and stores it in Redis (`<prefix>:signing-key`, `SET NX`), the
//!   others read it there. Anyone who can write Redis can already rewrite auctions, so this
//!   adds no new power; an operator who wants the key out of Redis (or to keep it across a
//!   Redis wipe) passes `--signing-key` to every node, which then never touches that key.

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use gavel_core::chain::{self, ChainHash, Receipt};
use gavel_core::AuctionId;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Why the key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key file {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("signing key file {0}: expected 64 hex digits (a 32-byte Ed25519 seed)")]
    Format(String),
    #[error("reading or storing the shared signing key in Redis: {0}")]
    Redis(String),
}

fn parse_seed(text: &str) -> Option<[u8; 32]> {
    chain::unhex(text.trim()).ok()?.try_into().ok()
}

/// Domain-separation prefix of a signed log head.
const HEAD_TAG: &[u8] = b"gavel-head-v1";

/// The bytes a log head signature covers: `"gavel-head-v1"`, auction id (`u16` length +
/// bytes), seq (`u64` big-endian), hash (32 bytes).
pub fn head_message(id: &str, seq: u64, hash: &ChainHash) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + id.len());
    b.extend_from_slice(HEAD_TAG);
    b.extend_from_slice(&(id.len() as u16).to_be_bytes());
    b.extend_from_slice(id.as_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&hash.0);
    b
}

/// The name of a public key: the first 16 hex digits of SHA-256(key bytes).
pub fn key_id(public: &VerifyingKey) -> String {
    chain::hex(&Sha256::digest(public.as_bytes())[..8])
}

pub struct Signer {
    key: SigningKey,
    id: String,
}

impl Signer {
    /// Loads the key from `configured`; without it, from `<data_dir>/signing-key`
    /// (embedded mode) or Redis (`redis` = (url, prefix), distributed mode), generating it
    /// there when absent.
    pub async fn load(
        configured: Option<&Path>,
        data_dir: &Path,
        redis: Option<(&str, &str)>,
    ) -> Result<Self, KeyError> {
        if let (None, Some((url, prefix))) = (configured, redis) {
            return Self::shared_in_redis(url, prefix).await;
        }
        let path = match configured {
            Some(p) => p.to_path_buf(),
            None => data_dir.join("signing-key"),
        };
        let io = |error| KeyError::Io {
            path: path.display().to_string(),
            error,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && configured.is_none() => {
                let seed: [u8; 32] = rand::random();
                crate::auth::write_private(&path, &format!("{}\n", chain::hex(&seed)))
                    .map_err(io)?;
                tracing::info!(path = %path.display(), "generated a new signing key");
                chain::hex(&seed)
            }
            Err(e) => return Err(io(e)),
        };
        let seed = parse_seed(&text).ok_or_else(|| KeyError::Format(path.display().to_string()))?;
        Ok(Signer::from_seed(seed))
    }

    /// The deployment's key in Redis: set once by the first node (`SET NX`), read by all.
    async fn shared_in_redis(url: &str, prefix: &str) -> Result<Self, KeyError> {
        let redis_err = |e: redis::RedisError| KeyError::Redis(e.to_string());
        // One server, or its cluster when `url` is a cluster node (the key lives on the
        // shard owning its slot).
        let mut conn = gavel_engine::redis::conn::connect(url)
            .await
            .map_err(redis_err)?;
        let key = format!("{prefix}:signing-key");
        let fresh = chain::hex(&rand::random::<[u8; 32]>());
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&fresh)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let stored: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let seed = parse_seed(&stored).ok_or_else(|| KeyError::Format(format!("Redis {key}")))?;
        Ok(Signer::from_seed(seed))
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(&key.verifying_key());
        Signer { key, id }
    }

    pub fn key_id(&self) -> &str {
        &self.id
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The signed wire form of a receipt.
    pub fn receipt(&self, r: &Receipt) -> gavel_protocol::Receipt {
        gavel_protocol::Receipt {
            auction_id: r.auction_id.to_string(),
            seq: r.seq,
            amount: r.amount.minor_units(),
            currency: r.currency.to_string(),
            bidder_id: r.bidder_id.to_string(),
            at: r.at,
            hash: r.hash.to_hex(),
            key_id: self.id.clone(),
            signature: chain::hex(&self.key.sign(&r.message()).to_bytes()),
        }
    }

    /// The signed head of an auction's log.
    pub fn head(&self, id: &AuctionId, seq: u64, hash: &ChainHash) -> gavel_protocol::SignedHead {
        gavel_protocol::SignedHead {
            auction_id: id.to_string(),
            seq,
            hash: hash.to_hex(),
            key_id: self.id.clone(),
            signature: chain::hex(
                &self
                    .key
                    .sign(&head_message(id.as_str(), seq, hash))
                    .to_bytes(),
            ),
        }
    }
}

/// Checks an Ed25519 signature (hex) over `message` with `public`.
pub fn verify_signature(
    public: &VerifyingKey,
    message: &[u8],
    signature_hex: &str,
) -> Result<(), String> {
    let bytes: [u8; 64] = chain::unhex(signature_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the signature is not 128 hex digits")?;
    public
        .verify(message, &Signature::from_bytes(&bytes))
        .map_err(|_| "the signature does not match the server's key".to_string())
}

/// A public key from 64 hex digits.
pub fn parse_public_key(hex: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = chain::unhex(hex.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("a public key is 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_generated_key_is_kept_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = Signer::load(None, dir.path(), None).await.unwrap();
        let b = Signer::load(None, dir.path(), None).await.unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.key_id().len(), 16);
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "not hex").unwrap();
        assert!(matches!(
            Signer::load(Some(&bad), dir.path(), None).await,
            Err(KeyError::Format(_))
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            Signer::load(Some(&missing), dir.path(), None).await,
            Err(KeyError::Io { .. })
        ));
        let given = dir.path().join("given");
        std::fs::write(&given, format!("  {}\n", "11".repeat(32))).unwrap();
        let c = Signer::load(Some(&given), dir.path(), Some(("redis://unused", "p")))
            .await
            .unwrap();
        assert_eq!(c.public_key(), Signer::from_seed([0x11; 32]).public_key());
    }

    #[test]
    fn a_head_signature_covers_every_field() {
        let s = Signer::from_seed([7; 32]);
        let id = AuctionId::parse("lot").unwrap();
        let h = s.head(&id, 5, &ChainHash([1; 32]));
        let pk = s.public_key();
        assert_eq!(
            verify_signature(
                &pk,
                &head_message("lot", 5, &ChainHash([1; 32])),
                &h.signature
            ),
            Ok(())
        );
        for other in [
            head_message("lot2", 5, &ChainHash([1; 32])),
            head_message("lot", 6, &ChainHash([1; 32])),
            head_message("lot", 5, &ChainHash([2; 32])),
        ] {
            assert!(verify_signature(&pk, &other, &h.signature).is_err());
        }
    }
}
