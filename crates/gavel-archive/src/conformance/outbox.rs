//! The webhook outbox part of the conformance suite. Endpoint ids are unique per call and
//! every check filters by them, so a store shared with other checks does not disturb it.

use super::fixture::Fixture;
use crate::webhooks::{
    event_id, test_event, AttemptOutcome, DeliveryStatus, EndpointSource, EventType,
    WebhookEndpoint,
};
use crate::Archive;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn endpoint(name: &str, bid_events: bool) -> WebhookEndpoint {
    WebhookEndpoint {
        id: unique(name),
        url: format!("http://127.0.0.1:9/{name}"),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        bid_events,
        source: EndpointSource::Api,
        description: String::new(),
        created_at: 1,
        disabled_at: None,
        disabled_reason: None,
    }
}

/// `(event type, status)` of each delivery to `endpoint`.
async fn deliveries_of(archive: &dyn Archive, endpoint: &str) -> BTreeSet<(String, String)> {
    archive
        .webhook_deliveries(Some(endpoint), None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.event_type, d.status.as_str().to_string()))
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

pub async fn webhook_events_commit_with_their_changes_once_per_wanting_endpoint(
    archive: &dyn Archive,
) {
    let all = endpoint("all", true);
    let lifecycle = endpoint("lifecycle", false);
    archive.put_webhook_endpoint(&all).await.unwrap();
    archive.put_webhook_endpoint(&lifecycle).await.unwrap();
    let mut f = Fixture::new("outbox");
    archive.create_auction(f.auction()).await.unwrap();
    let batch = vec![f.open(), f.bid(), f.bid(), f.close()];
    archive.record_batch(&batch).await.unwrap();
    // Redelivered: nothing new.
    archive.record_batch(&batch).await.unwrap();
    let p = "pending";
    assert_eq!(
        deliveries_of(archive, &lifecycle.id).await,
        set(&[
            ("auction.created", p),
            ("auction.opened", p),
            ("auction.closed", p)
        ])
    );
    let to_all = archive
        .webhook_deliveries(Some(&all.id), None, 1000)
        .await
        .unwrap();
    assert_eq!(
        to_all.len(),
        5,
        "created, opened, two bids, closed: {to_all:?}"
    );
    let bids = to_all
        .iter()
        .filter(|d| d.event_type == "bid.accepted")
        .count();
    assert_eq!(bids, 2);
    let closed_id = event_id(
        EventType::AuctionClosed,
        f.id().as_str(),
        f.auction().state.seq,
    );
    assert!(
        to_all.iter().any(|d| d.event_id == closed_id),
        "the closing's event has its stable id"
    );
    archive.delete_webhook_endpoint(&all.id).await.unwrap();
    archive
        .delete_webhook_endpoint(&lifecycle.id)
        .await
        .unwrap();
}

pub async fn an_event_no_endpoint_wants_is_not_stored(archive: &dyn Archive) {
    let lifecycle = endpoint("no-bids", false);
    let mut f = Fixture::new("outbox-none");
    archive.create_auction(f.auction()).await.unwrap();
    let opened = f.open();
    archive.record_batch(&[opened]).await.unwrap();
    // Added after: the earlier events were for nobody and are gone for good.
    archive.put_webhook_endpoint(&lifecycle).await.unwrap();
    let bid = f.bid();
    archive.record_batch(&[bid]).await.unwrap();
    assert!(
        deliveries_of(archive, &lifecycle.id).await.is_empty(),
        "nothing before the endpoint existed, and no bids without bid_events"
    );
    archive
        .delete_webhook_endpoint(&lifecycle.id)
        .await
        .unwrap();
}

pub async fn a_claimed_delivery_is_leased_retried_and_finished_once(archive: &dyn Archive) {
    let ep = endpoint("lease", false);
    archive.put_webhook_endpoint(&ep).await.unwrap();
    let event = test_event(unique("msg_test"), &ep.id, 1_000);
    assert!(archive.enqueue_webhook_event(&event, &ep.id).await.unwrap());
    assert!(
        !archive
            .enqueue_webhook_event(&event, "no-such-endpoint")
            .await
            .unwrap(),
        "an unknown endpoint gets nothing"
    );
    let now = now_ms();
    let mine = |v: Vec<crate::webhooks::DueDelivery>| -> Vec<_> {
        v.into_iter().filter(|d| d.endpoint_id == ep.id).collect()
    };
    let first = mine(
        archive
            .claim_webhook_deliveries(now, now + 10_000, "node-a", 100)
            .await
            .unwrap(),
    );
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event_id, event.id);
    assert_eq!(first[0].payload, event.payload, "the exact body");
    assert_eq!(first[0].secret, ep.secret);
    assert_eq!(first[0].attempts, 0);
    // Leased: nobody else gets it before the lease ends …
    let during = mine(
        archive
            .claim_webhook_deliveries(now + 5_000, now + 20_000, "node-b", 100)
            .await
            .unwrap(),
    );
    assert!(during.is_empty(), "leased to node-a");
    // … and after it ends (node-a died mid-delivery) someone does, same event id.
    let after = mine(
        archive
            .claim_webhook_deliveries(now + 10_000, now + 30_000, "node-b", 100)
            .await
            .unwrap(),
    );
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].event_id, event.id);
    archive
        .finish_webhook_delivery(
            &event.id,
            &ep.id,
            now + 11_000,
            &AttemptOutcome::Retry {
                status: Some(500),
                error: "HTTP 500".into(),
                next_attempt_at: now + 60_000,
            },
        )
        .await
        .unwrap();
    let early = mine(
        archive
            .claim_webhook_deliveries(now + 59_000, now + 70_000, "node-b", 100)
            .await
            .unwrap(),
    );
    assert!(early.is_empty(), "not due before next_attempt_at");
    let due = mine(
        archive
            .claim_webhook_deliveries(now + 60_000, now + 70_000, "node-b", 100)
            .await
            .unwrap(),
    );
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 1);
    let delivered = AttemptOutcome::Delivered { status: 204 };
    archive
        .finish_webhook_delivery(&event.id, &ep.id, now + 61_000, &delivered)
        .await
        .unwrap();
    // Finishing again (a late duplicate) changes nothing.
    archive
        .finish_webhook_delivery(
            &event.id,
            &ep.id,
            now + 62_000,
            &AttemptOutcome::Failed {
                status: None,
                error: "late".into(),
            },
        )
        .await
        .unwrap();
    let records = archive
        .webhook_deliveries(Some(&ep.id), None, 10)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, DeliveryStatus::Delivered);
    assert_eq!(records[0].attempts, 2);
    assert_eq!(records[0].last_status, Some(204));
    assert_eq!(records[0].finished_at, Some(now + 61_000));
    let never = mine(
        archive
            .claim_webhook_deliveries(now + 1_000_000, now + 1_100_000, "node-b", 100)
            .await
            .unwrap(),
    );
    assert!(never.is_empty(), "a delivered event is not claimed again");
    archive.delete_webhook_endpoint(&ep.id).await.unwrap();
}

pub async fn a_gone_endpoint_is_disabled_and_its_pending_deliveries_fail(archive: &dyn Archive) {
    let ep = endpoint("gone", false);
    archive.put_webhook_endpoint(&ep).await.unwrap();
    let first = test_event(unique("msg_a"), &ep.id, 1_000);
    let second = test_event(unique("msg_b"), &ep.id, 1_000);
    archive.enqueue_webhook_event(&first, &ep.id).await.unwrap();
    archive
        .enqueue_webhook_event(&second, &ep.id)
        .await
        .unwrap();
    let now = now_ms();
    archive
        .finish_webhook_delivery(&first.id, &ep.id, now, &AttemptOutcome::Gone)
        .await
        .unwrap();
    let stored = archive.webhook_endpoints().await.unwrap();
    let stored = stored.iter().find(|e| e.id == ep.id).expect("still listed");
    assert_eq!(stored.disabled_at, Some(now));
    let failed = archive
        .webhook_deliveries(Some(&ep.id), Some(DeliveryStatus::Failed), 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 2, "both deliveries failed: {failed:?}");
    // A disabled endpoint receives no new events.
    let mut f = Fixture::new("outbox-gone");
    archive.create_auction(f.auction()).await.unwrap();
    archive.record_batch(&[f.open()]).await.unwrap();
    assert_eq!(
        archive
            .webhook_deliveries(Some(&ep.id), None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    // Putting it again (a restart with it in the config) enables it.
    archive.put_webhook_endpoint(&ep).await.unwrap();
    let again = archive.webhook_endpoints().await.unwrap();
    assert!(again
        .iter()
        .any(|e| e.id == ep.id && e.disabled_at.is_none()));
    archive.delete_webhook_endpoint(&ep.id).await.unwrap();
}

pub async fn endpoints_are_stored_rotated_and_deleted_with_their_deliveries(archive: &dyn Archive) {
    let ep = endpoint("crud", true);
    archive.put_webhook_endpoint(&ep).await.unwrap();
    let listed = archive.webhook_endpoints().await.unwrap();
    assert_eq!(listed.iter().find(|e| e.id == ep.id), Some(&ep));
    assert!(archive
        .set_webhook_secret(&ep.id, "whsec_bmV3IHNlY3JldA==")
        .await
        .unwrap());
    assert!(!archive.set_webhook_secret("nope", "whsec_x").await.unwrap());
    let listed = archive.webhook_endpoints().await.unwrap();
    let rotated = listed.iter().find(|e| e.id == ep.id).unwrap();
    assert_eq!(rotated.secret, "whsec_bmV3IHNlY3JldA==");
    let event = test_event(unique("msg_c"), &ep.id, 1_000);
    archive.enqueue_webhook_event(&event, &ep.id).await.unwrap();
    assert!(archive.delete_webhook_endpoint(&ep.id).await.unwrap());
    assert!(!archive.delete_webhook_endpoint(&ep.id).await.unwrap());
    assert!(archive
        .webhook_deliveries(Some(&ep.id), None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(!archive
        .webhook_endpoints()
        .await
        .unwrap()
        .iter()
        .any(|e| e.id == ep.id));
}

pub async fn finished_deliveries_and_their_events_are_pruned_after_the_retention(
    archive: &dyn Archive,
) {
    let ep = endpoint("prune", false);
    archive.put_webhook_endpoint(&ep).await.unwrap();
    let done = test_event(unique("msg_done"), &ep.id, 1_000);
    let waiting = test_event(unique("msg_waiting"), &ep.id, 1_000);
    archive.enqueue_webhook_event(&done, &ep.id).await.unwrap();
    archive
        .enqueue_webhook_event(&waiting, &ep.id)
        .await
        .unwrap();
    let now = now_ms();
    archive
        .finish_webhook_delivery(
            &done.id,
            &ep.id,
            now,
            &AttemptOutcome::Delivered { status: 200 },
        )
        .await
        .unwrap();
    // Not yet past the retention: kept.
    archive.prune_webhook_outbox(now).await.unwrap();
    assert_eq!(
        archive
            .webhook_deliveries(Some(&ep.id), None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    // Past it: the finished one goes, the pending one stays whatever its age.
    let pruned = archive.prune_webhook_outbox(now + 60_000).await.unwrap();
    assert!(pruned >= 1);
    let left = archive
        .webhook_deliveries(Some(&ep.id), None, 10)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event_id, waiting.id);
    assert_eq!(left[0].status, DeliveryStatus::Pending);
    archive.delete_webhook_endpoint(&ep.id).await.unwrap();
}
