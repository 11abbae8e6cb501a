//! One issuer's JWKS document (`--jwks-url`): fetched at start, again when a token names a
//! key id it does not hold (at most once per `--jwks-min-refresh-secs`, default a minute,
//! whatever the tokens say), and every 15 minutes. A failed fetch keeps the keys already
//! known: the identity provider being down never stops tokens signed with them.

use super::keys::{self, VerifyKey};
use jsonwebtoken::jwk::JwkSet;
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// How long a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Periodic refresh (drops keys the provider has withdrawn).
pub const PERIODIC_REFRESH: Duration = Duration::from_secs(15 * 60);

pub struct Jwks {
    pub url: String,
    pub issuer: String,
    client: reqwest::Client,
    min_interval: Duration,
    keys: RwLock<Arc<Vec<VerifyKey>>>,
    /// When a fetch was last started (successful or not).
    last_attempt: Mutex<Option<Instant>>,
    /// One fetch at a time; tokens waiting for it share its result.
    fetching: tokio::sync::Mutex<()>,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {0}: {1}")]
    Http(String, String),
    #[error("{0}: the document is over {MAX_JWKS_BYTES} bytes")]
    TooLarge(String),
    #[error("{0}: not a JWKS document: {1}")]
    Parse(String, String),
}

impl Jwks {
    pub fn new(url: String, issuer: String, min_interval: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("gavel/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with a timeout builds");
        Jwks {
            url,
            issuer,
            client,
            min_interval,
            keys: RwLock::new(Arc::new(Vec::new())),
            last_attempt: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The keys currently known.
    pub fn keys(&self) -> Arc<Vec<VerifyKey>> {
        self.keys.read().clone()
    }

    /// Fetches the document now and replaces the keys (on failure the old ones stay).
    pub async fn fetch(&self) -> Result<usize, FetchError> {
        let _one = self.fetching.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<usize, FetchError> {
        *self.last_attempt.lock() = Some(Instant::now());
        metrics::counter!("gavel_jwks_fetches_total").increment(1);
        let result = self.download().await;
        match &result {
            Ok(n) => {
                tracing::info!(url = %self.url, issuer = %self.issuer, keys = n, "JWKS fetched")
            }
            Err(e) => {
                metrics::counter!("gavel_jwks_fetch_failures_total").increment(1);
                tracing::warn!(error = %e, "JWKS fetch failed; the keys already known stay in use");
            }
        }
        result
    }

    async fn download(&self) -> Result<usize, FetchError> {
        let http = |e: reqwest::Error| FetchError::Http(self.url.clone(), e.to_string());
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(http)?
            .error_for_status()
            .map_err(http)?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge(self.url.clone()));
        }
        let body = response.bytes().await.map_err(http)?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(FetchError::TooLarge(self.url.clone()));
        }
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| FetchError::Parse(self.url.clone(), e.to_string()))?;
        let mut keys = Vec::with_capacity(set.keys.len());
        for jwk in &set.keys {
            match keys::from_jwk(jwk, &self.issuer) {
                Ok(k) => keys.push(k),
                Err(e) => tracing::warn!(
                    url = %self.url,
                    kid = ?jwk.common.key_id,
                    reason = %e,
                    "JWKS key skipped"
                ),
            }
        }
        let n = keys.len();
        *self.keys.write() = Arc::new(keys);
        Ok(n)
    }

    /// Fetches again because a token named an unknown key id, unless a fetch started less
    /// than the minimum interval ago. Returns whether it fetched successfully.
    pub async fn refresh_for_unknown_kid(&self) -> bool {
        let _one = self.fetching.lock().await;
        let recent = self
            .last_attempt
            .lock()
            .is_some_and(|t| t.elapsed() < self.min_interval);
        if recent {
            return false;
        }
        self.fetch_locked().await.is_ok()
    }
}
