//! The webhook outbox: what the archive stores for the outside world (Standard Webhooks 1.0).
//!
//! Every archived change that a marketplace cares about becomes an [`OutboxEvent`] with a
//! **stable id** (derived from the auction, the seq and the event type, so a redelivered
//! change maps to the same event and is stored once) and its exact JSON body. The archive
//! writes the events in the same transaction as the change (`record_batch`,
//! `create_auction`), with one pending delivery per endpoint that wants the event type.
//! The server's deliverer (`gavel-server/src/webhooks`) claims, signs, posts and records.

use crate::ArchivedChange;
use gavel_core::{Auction, BidEntry, Event, Millis, Money};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The event types Gavel sends. The one owner of their wire names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    AuctionCreated,
    AuctionOpened,
    AuctionExtended,
    AuctionClosed,
    /// Only to endpoints that opted in (`bid_events`).
    BidAccepted,
    /// Sent by the admin API's "send a test event" to one endpoint.
    WebhookTest,
}

impl EventType {
    pub const ALL: &'static [EventType] = &[
        EventType::AuctionCreated,
        EventType::AuctionOpened,
        EventType::AuctionExtended,
        EventType::AuctionClosed,
        EventType::BidAccepted,
        EventType::WebhookTest,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::AuctionCreated => "auction.created",
            EventType::AuctionOpened => "auction.opened",
            EventType::AuctionExtended => "auction.extended",
            EventType::AuctionClosed => "auction.closed",
            EventType::BidAccepted => "bid.accepted",
            EventType::WebhookTest => "webhook.test",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown webhook event type {s:?}"))
    }
}

/// One event as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Stable id: the `webhook-id` header and the body's `id`, on every attempt.
    pub id: String,
    pub event_type: EventType,
    pub auction_id: Option<String>,
    /// The exact body that is signed and sent.
    pub payload: String,
    /// When it happened (server UTC ms).
    pub occurred_at: Millis,
}

/// Where a webhook endpoint came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointSource {
    /// `--webhook URL` (re-applied at every start).
    Config,
    /// Created through `/api/webhooks`.
    Api,
}

impl EndpointSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            EndpointSource::Config => "config",
            EndpointSource::Api => "api",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, crate::ArchiveError> {
        match s {
            "config" => Ok(EndpointSource::Config),
            "api" => Ok(EndpointSource::Api),
            other => Err(crate::ArchiveError::Corrupt(format!(
                "webhook endpoint source {other:?}"
            ))),
        }
    }
}

/// A configured receiver.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    /// `whsec_` + base64 key.
    pub secret: String,
    /// Also send `bid.accepted`.
    pub bid_events: bool,
    pub source: EndpointSource,
    pub description: String,
    pub created_at: Millis,
    /// Set when the receiver answered 410 Gone: nothing more is sent to it.
    pub disabled_at: Option<Millis>,
    pub disabled_reason: Option<String>,
}

impl fmt::Debug for WebhookEndpoint {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("bid_events", &self.bid_events)
            .field("source", &self.source)
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

/// State of one (event, endpoint) delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub const ALL: &'static [DeliveryStatus] = &[
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryStatus::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown delivery status {s:?}"))
    }
}

/// A delivery claimed for posting: everything the deliverer needs.
#[derive(Clone)]
pub struct DueDelivery {
    pub event_id: String,
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

impl fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DueDelivery")
            .field("event_id", &self.event_id)
            .field("endpoint_id", &self.endpoint_id)
            .field("url", &self.url)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// How one attempt ended, as the deliverer records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Delivered { status: u16 },
    /// Any other failure, tried again at `next_attempt_at`.
    Retry {
        status: Option<u16>,
        error: String,
        next_attempt_at: Millis,
    },
    /// The retry schedule is spent: the delivery is marked failed.
    Failed { status: Option<u16>, error: String },
    /// The receiver answered 410 Gone: the delivery fails and the endpoint is disabled
    /// (its other pending deliveries fail too).
    Gone,
}

/// One delivery as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Millis,
    pub last_attempt_at: Option<Millis>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub finished_at: Option<Millis>,
    pub created_at: Millis,
}

/// The events one archived change produces, in order.
pub fn events_of(change: &ArchivedChange) -> Vec<OutboxEvent> {
    let a = &change.auction;
    let mut out = Vec::new();
    match &change.event {
        Event::Created => out.push(created_event(a, None)),
        Event::Opened => out.push(event(
            EventType::AuctionOpened,
            a,
            a.spec.starts_at,
            auction_data(a),
        )),
        Event::Bid { entry, extended } => {
            let mut data = auction_data(a);
            data["bid"] = bid_json(a, entry);
            data["extended"] = json!(extended);
            out.push(event(EventType::BidAccepted, a, entry.at, data));
            if *extended {
                let mut data = auction_data(a);
                data["original_ends_at"] = json!(a.spec.ends_at);
                data["bid_seq"] = json!(entry.seq);
                out.push(event(EventType::AuctionExtended, a, entry.at, data));
            }
        }
        Event::MaxRaised => {}
        Event::Closed => {}
    }
    // A closing (`Closed`, or the buy-now bid that ends the auction) is announced once,
    // by the change that carries it.
    let closes = matches!(change.event, Event::Closed)
        || matches!(change.event, Event::Bid { .. }) && a.state.closing.is_some();
    if closes {
        if let Some(closing) = &a.state.closing {
            let mut data = auction_data(a);
            data["reason"] = json!(closing.reason.as_str());
            data["winner"] = match &closing.winner {
                Some(w) => json!({ "id": w.id.as_str(), "name": &*w.name }),
                None => Value::Null,
            };
            data["final_price"] = money_json(a, closing.final_price);
            data["reserve_met"] = json!(a.reserve_met());
            data["closed_at"] = json!(closing.closed_at);
            data["closed_by"] = json!(closing.by);
            out.push(event(EventType::AuctionClosed, a, closing.closed_at, data));
        }
    }
    out
}

/// `auction.created` for a new auction; `at` is the creation time (the auction's own
/// start when unknown, which keeps the body of a redelivered change the same).
pub fn created_event(a: &Auction, at: Option<Millis>) -> OutboxEvent {
    let mut data = auction_data(a);
    data["starting_price"] = money_json(a, Some(a.spec.starting_price));
    data["has_reserve"] = json!(a.spec.reserve.is_some());
    data["buy_now"] = money_json(a, a.spec.buy_now);
    event(
        EventType::AuctionCreated,
        a,
        at.unwrap_or(a.spec.starts_at),
        data,
    )
}

/// A `webhook.test` event with the given (unique) id.
pub fn test_event(id: String, endpoint_id: &str, at: Millis) -> OutboxEvent {
    let payload = json!({
        "id": id,
        "type": EventType::WebhookTest.as_str(),
        "timestamp": iso8601(at),
        "data": { "endpoint_id": endpoint_id, "message": "test event from Gavel" },
    });
    OutboxEvent {
        id,
        event_type: EventType::WebhookTest,
        auction_id: None,
        payload: payload.to_string(),
        occurred_at: at,
    }
}

/// The stable id of an auction's event: the same change always maps to the same id.
pub fn event_id(event_type: EventType, auction_id: &str, seq: u64) -> String {
    let mut h = Sha256::new();
    h.update(event_type.as_str().as_bytes());
    h.update([0]);
    h.update(auction_id.as_bytes());
    h.update([0]);
    h.update(seq.to_string().as_bytes());
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

fn event(event_type: EventType, a: &Auction, at: Millis, data: Value) -> OutboxEvent {
    let id = event_id(event_type, a.id.as_str(), a.state.seq);
    let payload = json!({
        "id": id,
        "type": event_type.as_str(),
        "timestamp": iso8601(at),
        "data": data,
    });
    OutboxEvent {
        id,
        event_type,
        auction_id: Some(a.id.to_string()),
        payload: payload.to_string(),
        occurred_at: at,
    }
}

fn money_json(a: &Auction, m: Option<Money>) -> Value {
    match m {
        Some(m) => json!({ "amount": m.minor_units(), "currency": a.spec.currency.as_str() }),
        None => Value::Null,
    }
}

/// What every auction event carries: the auction as of the change.
fn auction_data(a: &Auction) -> Value {
    json!({
        "auction_id": a.id.as_str(),
        "seq": a.state.seq,
        "title": a.spec.title,
        "status": a.state.status.as_str(),
        "currency": a.spec.currency.as_str(),
        "price": money_json(a, a.state.price),
        "bid_count": a.state.bid_count,
        "starts_at": a.spec.starts_at,
        "ends_at": a.state.ends_at,
    })
}

fn bid_json(a: &Auction, e: &BidEntry) -> Value {
    json!({
        "seq": e.seq,
        "bidder": { "id": e.bidder.id.as_str(), "name": &*e.bidder.name },
        "amount": money_json(a, Some(e.amount)),
        "kind": e.kind.as_str(),
        "at": e.at,
    })
}

/// `2026-12-02T07:20:01.123Z` for server ms (UTC).
pub fn iso8601(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::fixture::Fixture;

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_798_788_001_005), "2027-01-01T07:20:01.005Z");
    }

    #[test]
    fn event_ids_are_stable_and_differ_by_type_auction_and_seq() {
        let a = event_id(EventType::AuctionClosed, "lot-1", 7);
        assert_eq!(a, event_id(EventType::AuctionClosed, "lot-1", 7));
        assert!(a.starts_with("msg_") && a.len() == 36, "{a}");
        assert_ne!(a, event_id(EventType::BidAccepted, "lot-1", 7));
        assert_ne!(a, event_id(EventType::AuctionClosed, "lot-2", 7));
        assert_ne!(a, event_id(EventType::AuctionClosed, "lot-1", 8));
    }

    #[test]
    fn a_buy_now_bid_gives_bid_accepted_then_auction_closed_with_the_result() {
        let mut f = Fixture::new("hooks-buy");
        let _ = f.open();
        let bought = f.buy_now("carol");
        let events = events_of(&bought);
        let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(types, [EventType::BidAccepted, EventType::AuctionClosed]);
        let closed: Value = serde_json::from_str(&events[1].payload).unwrap();
        assert_eq!(closed["type"], "auction.closed");
        assert_eq!(closed["id"], events[1].id.as_str());
        assert_eq!(closed["data"]["reason"], "buy_now");
        assert_eq!(closed["data"]["winner"]["id"], "carol");
        assert_eq!(closed["data"]["final_price"]["amount"], 500_000);
        assert_eq!(closed["data"]["final_price"]["currency"], "USD");
        assert_eq!(closed["data"]["bid_count"], 1);
        assert_eq!(closed["data"]["reserve_met"], Value::Null);
        // The same change always gives the same bytes.
        assert_eq!(events, events_of(&bought));
    }

    #[test]
    fn opening_and_plain_bids_give_their_events_and_a_raised_maximum_none() {
        let mut f = Fixture::new("hooks-open");
        let opened = f.open();
        assert_eq!(
            events_of(&opened)
                .iter()
                .map(|e| e.event_type)
                .collect::<Vec<_>>(),
            [EventType::AuctionOpened]
        );
        let bid = f.bid();
        let events = events_of(&bid);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, EventType::BidAccepted);
        let body: Value = serde_json::from_str(&events[0].payload).unwrap();
        assert_eq!(body["data"]["extended"], false);
        assert!(body["data"]["bid"]["amount"]["amount"].as_i64().unwrap() > 0);
    }
}
