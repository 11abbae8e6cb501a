//! Webhooks (Standard Webhooks 1.0): signed, durable, at-least-once notifications of
//! auction events to the marketplace around Gavel.
//!
//! The archive writes each event to its outbox in the same transaction as the change it
//! describes (`gavel_archive::webhooks`); [`delivery`] posts them; `http/webhooks.rs` is the
//! admin API. Endpoints come from `--webhook`/`--webhook-secret` (applied to the archive
//! at every start, see [`apply_config`]) or from the admin API.

pub mod delivery;
pub mod signing;

use crate::config::ServeConfig;
use anyhow::{bail, Context};
use gavel_archive::webhooks::{EndpointSource, WebhookEndpoint};
use gavel_archive::Archive;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How the deliverer runs.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Waits before the 2nd, 3rd, … attempt; when spent, the delivery fails.
    pub schedule: Vec<Duration>,
    /// Per attempt (connect, send, answer).
    pub timeout: Duration,
    /// How often the outbox is polled when nothing was due.
    pub poll: Duration,
    /// This deliverer's name on its leases.
    pub owner: String,
    /// Finished deliveries older than this are pruned (hourly).
    pub retention: Duration,
}

impl WebhookSettings {
    pub fn from_config(config: &ServeConfig, owner: String) -> Self {
        WebhookSettings {
            schedule: config.webhook_retry_schedule.clone(),
            timeout: config.webhook_timeout,
            poll: config.webhook_poll,
            owner,
            retention: config.webhook_retention,
        }
    }
}

/// This process's name on its delivery leases (for operators reading the outbox; the
/// leases' correctness does not depend on it).
pub fn deliverer_name(config: &ServeConfig) -> String {
    format!(
        "{}:{}:{:08x}",
        config.node_id.as_deref().unwrap_or("gavel"),
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The id of an endpoint given on the command line: derived from its URL, so a restart
/// with the same configuration finds the same endpoint (and its pending deliveries).
pub fn config_endpoint_id(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("cfg_{hex}")
}

/// Checks a receiver URL: absolute `http` or `https`, with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?}: a webhook URL must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?}: a webhook URL needs a host"));
    }
    Ok(())
}

/// The endpoints `--webhook`/`--webhook-secret` describe (paired by position).
pub fn config_endpoints(config: &ServeConfig, now: i64) -> anyhow::Result<Vec<WebhookEndpoint>> {
    let urls = &config.webhook;
    let secrets = &config.webhook_secret;
    if urls.len() != secrets.len() {
        bail!(
            "{} --webhook URL(s) but {} --webhook-secret(s): give one secret per URL, in the same order",
            urls.len(),
            secrets.len()
        );
    }
    let mut out: Vec<WebhookEndpoint> = Vec::new();
    for (url, secret) in urls.iter().zip(secrets) {
        check_url(url).map_err(anyhow::Error::msg)?;
        signing::Secret::parse(secret).with_context(|| format!("the secret for {url}"))?;
        let id = config_endpoint_id(url);
        if out.iter().any(|e| e.id == id) {
            bail!("--webhook {url} is given twice");
        }
        out.push(WebhookEndpoint {
            id,
            url: url.clone(),
            secret: secret.clone(),
            bid_events: config.webhook_bid_events,
            source: EndpointSource::Config,
            description: "from --webhook".into(),
            created_at: now,
            disabled_at: None,
            disabled_reason: None,
        });
    }
    Ok(out)
}

/// Makes the archive's configured endpoints what the configuration says: each given one
/// stored (enabled again, secret and options updated), and configured ones no longer
/// given removed. Endpoints made through the admin API are left alone. Every node of a
/// deployment must be given the same list.
pub async fn apply_config(config: &ServeConfig, archive: &dyn Archive) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let wanted = config_endpoints(config, now)?;
    let stored = archive
        .webhook_endpoints()
        .await
        .context("reading the webhook endpoints")?;
    for old in stored
        .iter()
        .filter(|e| e.source == EndpointSource::Config && !wanted.iter().any(|w| w.id == e.id))
    {
        archive
            .delete_webhook_endpoint(&old.id)
            .await
            .context("removing a webhook endpoint no longer configured")?;
        tracing::info!(endpoint = %old.id, url = %old.url, "webhook endpoint removed from the configuration");
    }
    for mut e in wanted {
        if let Some(prev) = stored.iter().find(|s| s.id == e.id) {
            e.created_at = prev.created_at;
        }
        archive
            .put_webhook_endpoint(&e)
            .await
            .context("storing a configured webhook endpoint")?;
        tracing::info!(endpoint = %e.id, url = %e.url, bid_events = e.bid_events, "webhook endpoint configured");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("https://shop.example/gavel").is_ok());
        for bad in ["ftp://x/y", "/relative", "not a url", "file:///etc/passwd"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configured_endpoints_pair_urls_and_secrets_by_position() {
        let secret = signing::Secret::generate();
        let mut c = ServeConfig::for_data_dir("/tmp/x".into());
        c.webhook = vec!["http://a.example/h".into(), "http://b.example/h".into()];
        c.webhook_secret = vec![secret.clone()];
        assert!(config_endpoints(&c, 0).is_err(), "one secret short");
        c.webhook_secret = vec![secret.clone(), "whsec_bad".into()];
        assert!(config_endpoints(&c, 0).is_err(), "a bad secret");
        c.webhook_secret = vec![secret.clone(), secret.clone()];
        let eps = config_endpoints(&c, 0).unwrap();
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[1].url, "http://b.example/h");
        assert_eq!(eps[0].id, config_endpoint_id("http://a.example/h"));
        assert_ne!(eps[0].id, eps[1].id);
        c.webhook = vec!["http://a.example/h".into(), "http://a.example/h".into()];
        assert!(config_endpoints(&c, 0).is_err(), "a URL twice");
    }
}
