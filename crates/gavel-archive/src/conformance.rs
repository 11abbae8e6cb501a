//! The archive conformance suite: the [`Archive`] contract as tests, written once and run
//! against every implementation (SQLite here; PostgreSQL with the same macro).
//!
//! Each check is a plain `async fn` taking `&dyn Archive` (or a [`Harness`] when it must
//! reopen the store), so a backend runs the whole suite with one line:
//!
//! ```ignore
//! gavel_archive::archive_conformance_tests!(MyHarness::new().await);
//! ```
//!
//! The expression is evaluated once per test and must give a [`Harness`]. Checks never
//! assume an empty store: every auction id is unique per process and per call, and counts
//! are compared as differences of [`Archive::stats`], so backends may share one database
//! between tests. Compiled for this crate's own tests and with the `conformance` feature.

use crate::{Archive, ArchiveError, ArchiveStats, ArchivedChange, NextSteps, StoredReply};
use async_trait::async_trait;
use fixture::Fixture;
use gavel_core::{AuctionId, BidderId, CloseReason, Event, RequestId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Opens the archive under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Opens the store. Every call opens the *same* store, so opening again after the
    /// previous archive was dropped is a restart.
    async fn open(&self) -> Arc<dyn Archive>;
}

/// Defines one `#[tokio::test]` per conformance check, each on a fresh harness built by
/// the given expression (which may `.await`). The calling crate needs `tokio` with the
/// `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! archive_conformance_tests {
    ($harness:expr) => {
        $crate::archive_conformance_tests!(@archive $harness;
            a_created_auction_loads_back_unchanged,
            an_unknown_auction_is_none_and_has_no_history,
            creating_a_taken_id_fails_with_already_exists,
            a_batch_stores_its_bids_and_the_latest_state,
            redelivering_a_batch_stores_nothing_twice,
            a_batch_overlapping_a_stored_one_adds_only_the_new_bids,
            a_different_bid_at_a_stored_seq_is_skipped,
            an_older_change_never_overwrites_a_newer_state,
            a_batch_spanning_several_auctions_updates_each,
            closing_stores_the_result_with_the_admin,
            a_buy_now_bid_stores_the_bid_and_the_result,
            history_pages_newest_first_with_before_seq_and_limit,
            accepted_requests_store_their_reply_once,
            a_batch_of_100_bids_is_one_transaction,
            closed_auctions_page_newest_closed_first,
            load_hot_reads_live_and_recently_closed_auctions,
            an_empty_batch_is_a_no_op,
            readers_see_whole_batches_while_writing,
            webhook_events_commit_with_their_changes_once_per_wanting_endpoint,
            an_event_no_endpoint_wants_is_not_stored,
            a_claimed_delivery_is_leased_retried_and_finished_once,
            a_gone_endpoint_is_disabled_and_its_pending_deliveries_fail,
            endpoints_are_stored_rotated_and_deleted_with_their_deliveries,
            finished_deliveries_and_their_events_are_pruned_after_the_retention,
            search_matches_word_prefixes_category_status_price_and_end,
            search_sorts_and_pages_with_ties_broken_by_id,
            search_reads_query_syntax_as_plain_words,
            a_watchlist_is_per_user_newest_first_and_idempotent,
            bid_auctions_list_each_auction_a_user_bid_on_once_latest_first,
            next_steps_are_set_replaced_and_removed
        );
        $crate::archive_conformance_tests!(@harness $harness;
            everything_survives_a_reopen
        );
    };
    (@archive $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $harness;
                let archive = $crate::conformance::Harness::open(&harness).await;
                $crate::conformance::$name(&*archive).await;
            }
        )*
    };
    (@harness $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $harness;
                $crate::conformance::$name(&harness).await;
            }
        )*
    };
}

fn delta(before: ArchiveStats, after: ArchiveStats) -> ArchiveStats {
    ArchiveStats {
        batches: after.batches - before.batches,
        bids: after.bids - before.bids,
    }
}

async fn history(archive: &dyn Archive, id: &AuctionId) -> Vec<u64> {
    let bids = archive.bids(id, None, 10_000).await.unwrap();
    bids.iter().map(|b| b.seq).collect()
}

async fn stored(archive: &dyn Archive, id: &AuctionId) -> gavel_core::Auction {
    archive
        .auction(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("auction {id} is not stored"))
}

async fn page_of(
    archive: &dyn Archive,
    id: &AuctionId,
    before_seq: Option<u64>,
    limit: u32,
) -> Vec<u64> {
    let bids = archive.bids(id, before_seq, limit).await.unwrap();
    bids.iter().map(|b| b.seq).collect()
}

/// Seqs `from..=to`, newest first.
fn newest_first(from: u64, to: u64) -> Vec<u64> {
    (from..=to).rev().collect()
}

pub async fn a_created_auction_loads_back_unchanged(archive: &dyn Archive) {
    let a = Fixture::new("create-a");
    let b = Fixture::new("create-b");
    archive.create_auction(a.auction()).await.unwrap();
    archive.create_auction(b.auction()).await.unwrap();

    assert_eq!(&stored(archive, a.id()).await, a.auction());
    let all = archive.load_auctions().await.unwrap();
    for f in [&a, &b] {
        let found: Vec<_> = all.iter().filter(|x| x.id == *f.id()).collect();
        assert_eq!(
            found,
            vec![f.auction()],
            "load_auctions returns {} once",
            f.id()
        );
    }
}

pub async fn an_unknown_auction_is_none_and_has_no_history(archive: &dyn Archive) {
    let ghost = Fixture::new("ghost");
    assert_eq!(archive.auction(ghost.id()).await.unwrap(), None);
    assert!(archive.bids(ghost.id(), None, 10).await.unwrap().is_empty());
    let alice = BidderId::parse("alice").unwrap();
    let request = RequestId::parse("req-1").unwrap();
    assert_eq!(
        archive.reply(ghost.id(), &alice, &request).await.unwrap(),
        None
    );
}

pub async fn creating_a_taken_id_fails_with_already_exists(archive: &dyn Archive) {
    let a = Fixture::new("dup");
    archive.create_auction(a.auction()).await.unwrap();
    let mut other = a.auction().clone();
    std::sync::Arc::make_mut(&mut other.spec).title = "Someone else's auction".into();

    match archive.create_auction(&other).await {
        Err(ArchiveError::AlreadyExists(id)) => assert_eq!(&id, a.id()),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        &stored(archive, a.id()).await,
        a.auction(),
        "the first one stays"
    );
}

pub async fn a_batch_stores_its_bids_and_the_latest_state(archive: &dyn Archive) {
    let mut a = Fixture::new("batch");
    archive.create_auction(a.auction()).await.unwrap();
    let before = archive.stats();

    let batch = vec![a.open(), a.bid(), a.bid(), a.bid()];
    archive.record_batch(&batch).await.unwrap();

    assert_eq!(&stored(archive, a.id()).await, a.auction());
    let bids = archive.bids(a.id(), None, 100).await.unwrap();
    let expected: Vec<_> = batch
        .iter()
        .rev()
        .filter_map(|c| match &c.event {
            Event::Bid { entry, .. } => Some(entry.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        bids, expected,
        "every bid, newest first, exactly as recorded"
    );
    assert_eq!(
        delta(before, archive.stats()),
        ArchiveStats {
            batches: 1,
            bids: 3
        }
    );
}

pub async fn redelivering_a_batch_stores_nothing_twice(archive: &dyn Archive) {
    let mut a = Fixture::new("redeliver");
    archive.create_auction(a.auction()).await.unwrap();
    let batch = vec![a.open(), a.bid(), a.bid(), a.close()];
    archive.record_batch(&batch).await.unwrap();
    let before = archive.stats();

    archive
        .record_batch(&batch)
        .await
        .expect("redelivery is not an error");

    assert_eq!(
        delta(before, archive.stats()).bids,
        0,
        "no bid stored twice"
    );
    assert_eq!(history(archive, a.id()).await, vec![4, 3]);
    assert_eq!(&stored(archive, a.id()).await, a.auction());
}

pub async fn a_batch_overlapping_a_stored_one_adds_only_the_new_bids(archive: &dyn Archive) {
    let mut a = Fixture::new("overlap");
    archive.create_auction(a.auction()).await.unwrap();
    let (open, b3, b4, b5) = (a.open(), a.bid(), a.bid(), a.bid());
    archive
        .record_batch(&[open, b3.clone(), b4.clone()])
        .await
        .unwrap();
    let before = archive.stats();

    archive.record_batch(&[b3, b4, b5]).await.unwrap();

    assert_eq!(delta(before, archive.stats()).bids, 1);
    assert_eq!(history(archive, a.id()).await, vec![5, 4, 3]);
    assert_eq!(stored(archive, a.id()).await.state.seq, 5);
}

pub async fn a_different_bid_at_a_stored_seq_is_skipped(archive: &dyn Archive) {
    let mut a = Fixture::new("seq-clash");
    archive.create_auction(a.auction()).await.unwrap();
    let (open, bid) = (a.open(), a.bid());
    archive.record_batch(&[open, bid.clone()]).await.unwrap();
    let original = archive.bids(a.id(), None, 10).await.unwrap();

    // Same (auction, seq), another bid id: e.g. an authority that lost recent writes and
    // handed the seq out again. The stored bid wins; the batch still commits.
    let mut clash = bid;
    clash.bid_id = Some(format!("{}-other", clash.bid_id.unwrap()));
    if let Event::Bid { entry, .. } = &mut clash.event {
        entry.bidder.name = "Mallory".into();
    }
    let before = archive.stats();
    archive.record_batch(&[clash]).await.unwrap();

    assert_eq!(delta(before, archive.stats()).bids, 0);
    assert_eq!(archive.bids(a.id(), None, 10).await.unwrap(), original);
}

pub async fn an_older_change_never_overwrites_a_newer_state(archive: &dyn Archive) {
    let mut a = Fixture::new("forward");
    archive.create_auction(a.auction()).await.unwrap();
    let batch = vec![a.open(), a.bid(), a.bid()];
    let newest = a.auction().clone();
    archive.record_batch(&batch).await.unwrap();

    // An old change redelivered on its own.
    archive.record_batch(&batch[1..2]).await.unwrap();
    assert_eq!(stored(archive, a.id()).await, newest);

    // Out of order inside one batch: the newest still wins.
    let (b5, b6) = (a.bid(), a.bid());
    let newest = a.auction().clone();
    archive.record_batch(&[b6, b5]).await.unwrap();
    assert_eq!(stored(archive, a.id()).await, newest);
    assert_eq!(history(archive, a.id()).await, newest_first(3, 6));

    // And a batch holding only older changes leaves it alone, on load too.
    archive.record_batch(&batch).await.unwrap();
    let loaded = archive.load_auctions().await.unwrap();
    let found = loaded.iter().find(|x| x.id == *a.id()).unwrap();
    assert_eq!(found, &newest);
}

pub async fn a_batch_spanning_several_auctions_updates_each(archive: &dyn Archive) {
    let mut fixtures = [
        Fixture::new("multi-a"),
        Fixture::new("multi-b"),
        Fixture::new("multi-c"),
    ];
    for f in &fixtures {
        archive.create_auction(f.auction()).await.unwrap();
    }
    let mut batch = Vec::new();
    for f in fixtures.iter_mut() {
        batch.push(f.open());
    }
    for round in 0..4 {
        for (i, f) in fixtures.iter_mut().enumerate() {
            if round <= i + 1 {
                batch.push(f.bid());
            }
        }
    }
    archive.record_batch(&batch).await.unwrap();

    for (i, f) in fixtures.iter().enumerate() {
        assert_eq!(&stored(archive, f.id()).await, f.auction());
        let bids = (i + 2).min(4) as u64;
        assert_eq!(history(archive, f.id()).await, newest_first(3, 2 + bids));
    }
}

pub async fn closing_stores_the_result_with_the_admin(archive: &dyn Archive) {
    // Cancelled by an admin: nobody wins.
    let mut cancelled = Fixture::new("cancel");
    archive.create_auction(cancelled.auction()).await.unwrap();
    let batch = vec![
        cancelled.open(),
        cancelled.bid(),
        cancelled.cancel("admin-7"),
    ];
    archive.record_batch(&batch).await.unwrap();
    let closing = stored(archive, cancelled.id()).await.state.closing.unwrap();
    assert_eq!(closing.reason, CloseReason::Cancelled);
    assert_eq!(closing.by.as_deref(), Some("admin-7"));
    assert_eq!(closing.winner, None);

    // Ended early by an admin: the leader wins at the current price.
    let mut early = Fixture::new("early");
    archive.create_auction(early.auction()).await.unwrap();
    let batch = vec![
        early.open(),
        early.bid(),
        early.bid(),
        early.end_early("admin-3"),
    ];
    archive.record_batch(&batch).await.unwrap();
    let auction = stored(archive, early.id()).await;
    assert_eq!(&auction, early.auction());
    let closing = auction.state.closing.unwrap();
    assert_eq!(closing.reason, CloseReason::EndedEarly);
    assert_eq!(closing.by.as_deref(), Some("admin-3"));
    assert_eq!(closing.winner, auction.state.leader);
    assert_eq!(closing.final_price, auction.state.price);

    // Ended by time, in its own batch after the bids.
    let mut timed = Fixture::new("timed");
    archive.create_auction(timed.auction()).await.unwrap();
    archive
        .record_batch(&[timed.open(), timed.bid()])
        .await
        .unwrap();
    let close = [timed.close()];
    archive.record_batch(&close).await.unwrap();
    archive
        .record_batch(&close)
        .await
        .expect("a redelivered close is not an error");
    let auction = stored(archive, timed.id()).await;
    assert_eq!(&auction, timed.auction());
    assert_eq!(auction.state.closing.unwrap().reason, CloseReason::Ended);
    let all = archive.load_auctions().await.unwrap();
    let found = all.iter().find(|x| x.id == *timed.id()).unwrap();
    assert_eq!(
        found,
        timed.auction(),
        "load_auctions sees the closed state"
    );
}

pub async fn a_buy_now_bid_stores_the_bid_and_the_result(archive: &dyn Archive) {
    let mut a = Fixture::new("buy-now");
    archive.create_auction(a.auction()).await.unwrap();
    archive
        .record_batch(&[a.open(), a.buy_now("carol")])
        .await
        .unwrap();

    let auction = stored(archive, a.id()).await;
    assert_eq!(&auction, a.auction());
    let closing = auction.state.closing.unwrap();
    assert_eq!(closing.reason, CloseReason::BuyNow);
    assert_eq!(closing.winner.unwrap().id.as_str(), "carol");
    let bids = archive.bids(a.id(), None, 10).await.unwrap();
    assert_eq!(bids.len(), 1);
    assert_eq!(bids[0].kind, gavel_core::EntryKind::BuyNow);
}

pub async fn history_pages_newest_first_with_before_seq_and_limit(archive: &dyn Archive) {
    let mut a = Fixture::new("pages");
    let mut other = Fixture::new("pages-other");
    archive.create_auction(a.auction()).await.unwrap();
    archive.create_auction(other.auction()).await.unwrap();
    let mut batch = vec![a.open(), other.open()];
    for _ in 0..25 {
        batch.push(a.bid());
        batch.push(other.bid()); // interleaved: must never leak into `a`'s history
    }
    archive.record_batch(&batch).await.unwrap();
    // Bids are seq 3..=27.

    let page = |before, limit| page_of(archive, a.id(), before, limit);
    let first = page(None, 10).await;
    assert_eq!(first, newest_first(18, 27));
    let second = page(first.last().copied(), 10).await;
    assert_eq!(second, newest_first(8, 17));
    let third = page(second.last().copied(), 10).await;
    assert_eq!(third, newest_first(3, 7));
    assert!(page(third.last().copied(), 10).await.is_empty());

    assert!(page(None, 0).await.is_empty(), "limit 0 gives nothing");
    assert_eq!(
        page(Some(20), 3).await,
        vec![19, 18, 17],
        "before_seq is exclusive"
    );
    assert_eq!(page(Some(1_000), 2).await, vec![27, 26]);
    assert_eq!(page(Some(u64::MAX), 1).await, vec![27]);
    assert!(page(Some(3), 10).await.is_empty());
    let all = archive.bids(a.id(), None, 1_000).await.unwrap();
    assert_eq!(all.len(), 25);
    assert!(all
        .iter()
        .all(|b| a.bidders().contains(&b.bidder.id.as_str())));
}

/// The reply a change stores for its request (see [`ArchivedChange::request_id`]).
fn expected_reply(
    change: &ArchivedChange,
) -> (AuctionId, BidderId, RequestId, gavel_core::AuctionState) {
    let a = &change.auction;
    (
        a.id.clone(),
        a.state
            .leader
            .clone()
            .expect("an accepted request leads")
            .id,
        change.request_id.clone().expect("made by a request"),
        a.state.clone(),
    )
}

fn key_of(r: &StoredReply) -> (AuctionId, BidderId, RequestId, gavel_core::AuctionState) {
    (
        r.auction_id.clone(),
        r.bidder.clone(),
        r.request_id.clone(),
        r.state.clone(),
    )
}

pub async fn accepted_requests_store_their_reply_once(archive: &dyn Archive) {
    let mut a = Fixture::new("replies");
    archive.create_auction(a.auction()).await.unwrap();
    let open = a.open();
    let mut anonymous = a.bid();
    anonymous.request_id = None; // e.g. a change the engine made on its own
    let plain = a.bid();
    let max = a.max("carol", 9_000);
    let raised = a.max("carol", 12_000);
    assert!(
        matches!(raised.event, Event::MaxRaised),
        "{:?}",
        raised.event
    );
    let mut b = Fixture::new("replies-buy");
    archive.create_auction(b.auction()).await.unwrap();
    let b_open = b.open();
    let bought = b.buy_now("dave");
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000;
    let batch = vec![
        open,
        anonymous.clone(),
        plain.clone(),
        max.clone(),
        raised.clone(),
        b_open,
        bought.clone(),
    ];
    archive.record_batch(&batch).await.unwrap();

    for change in [&plain, &max, &raised, &bought] {
        let (id, bidder, request, state) = expected_reply(change);
        let got = archive
            .reply(&id, &bidder, &request)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no reply stored for {request}"));
        assert_eq!(key_of(&got), (id, bidder, request, state));
    }
    let raised_state = expected_reply(&raised).3;
    assert_eq!(
        raised_state.leader_max.map(|m| m.minor_units()),
        Some(12_000),
        "a max raise is stored with the raiser's own maximum"
    );
    // A request id is the requester's: another bidder's identical id has no reply.
    let (id, _, request, _) = expected_reply(&max);
    let alice = BidderId::parse("alice").unwrap();
    assert_eq!(archive.reply(&id, &alice, &request).await.unwrap(), None);

    // Redelivery (even of a different state under the same request) keeps the first reply.
    let mut again = raised.clone();
    again.auction.state.bid_count += 100;
    archive.record_batch(&[again]).await.unwrap();
    let (id, bidder, request, state) = expected_reply(&raised);
    let got = archive
        .reply(&id, &bidder, &request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.state, state, "the first reply stays");

    let recent: Vec<_> = archive
        .replies_since(since)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.auction_id == *a.id())
        .map(|r| key_of(&r))
        .collect();
    let expected: Vec<_> = [&plain, &max, &raised]
        .into_iter()
        .map(expected_reply)
        .collect();
    assert_eq!(recent, expected, "every reply of the window, in order");
    let future = since + 3_600_000;
    assert!(
        archive
            .replies_since(future)
            .await
            .unwrap()
            .iter()
            .all(|r| r.auction_id != *a.id() && r.auction_id != *b.id()),
        "replies stored before `since` are left out"
    );
}

/// Every closed auction, paged through `closed_auctions` `page` at a time, as
/// `(closed_at, id)`.
async fn all_closed(archive: &dyn Archive, page: u32) -> Vec<(i64, AuctionId)> {
    let mut out: Vec<(i64, AuctionId)> = Vec::new();
    loop {
        let cursor = out.last().cloned();
        let got = archive.closed_auctions(cursor, page).await.unwrap();
        assert!(got.len() <= page as usize, "a page holds at most `limit`");
        if got.is_empty() {
            return out;
        }
        for a in got {
            let closing = a.state.closing.expect("only closed auctions are listed");
            out.push((closing.closed_at, a.id));
        }
    }
}

pub async fn closed_auctions_page_newest_closed_first(archive: &dyn Archive) {
    let mut live = Fixture::new("list-live");
    let mut closed: Vec<Fixture> = (0..5)
        .map(|i| Fixture::new(&format!("list-c{i}")))
        .collect();
    archive.create_auction(live.auction()).await.unwrap();
    let mut batch = vec![live.open(), live.bid()];
    // Closed at 10, 20, 20, 30 and 40 s after the start: one tie, broken by id.
    for (f, at) in closed
        .iter_mut()
        .zip([10_000, 20_000, 20_000, 30_000, 40_000])
    {
        archive.create_auction(f.auction()).await.unwrap();
        batch.push(f.open());
        batch.push(f.at(at).end_early("admin-1"));
    }
    archive.record_batch(&batch).await.unwrap();

    let mine: Vec<(i64, AuctionId)> = all_closed(archive, 2)
        .await
        .into_iter()
        .filter(|(_, id)| closed.iter().any(|f| f.id() == id) || id == live.id())
        .collect();
    let mut expected: Vec<(i64, AuctionId)> = closed
        .iter()
        .map(|f| {
            let c = f.auction().state.closing.clone().unwrap();
            (c.closed_at, f.id().clone())
        })
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        mine, expected,
        "newest closed first, ties by id, each once, no live one"
    );
    let first = archive.closed_auctions(None, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        archive.closed_auctions(None, 0).await.unwrap(),
        vec![],
        "a zero limit is an empty page"
    );
    // The stored auctions are whole (spec and state), as `auction` returns them.
    let newest = closed
        .iter()
        .max_by_key(|f| f.auction().state.closing.clone().unwrap().closed_at)
        .unwrap();
    let listed = archive
        .closed_auctions(
            Some((
                newest.auction().state.closing.clone().unwrap().closed_at + 1,
                newest.id().clone(),
            )),
            1,
        )
        .await
        .unwrap();
    assert_eq!(listed.first().map(|a| &a.id), Some(newest.id()));
    assert_eq!(&listed[0], newest.auction());
}

pub async fn load_hot_reads_live_and_recently_closed_auctions(archive: &dyn Archive) {
    let mut live = Fixture::new("hot-live");
    let mut scheduled = Fixture::new("hot-scheduled");
    let mut old = Fixture::new("hot-old");
    let mut recent = Fixture::new("hot-recent");
    for f in [&live, &scheduled, &old, &recent] {
        archive.create_auction(f.auction()).await.unwrap();
    }
    let batch = vec![
        live.open(),
        live.bid(),
        old.open(),
        old.at(1_000).cancel("admin-1"),
        recent.open(),
        recent.at(50_000).end_early("admin-1"),
    ];
    archive.record_batch(&batch).await.unwrap();
    let _ = &mut scheduled;
    let since = recent.auction().state.closing.clone().unwrap().closed_at;
    let hot = archive.load_hot(since).await.unwrap();
    let find = |f: &Fixture| {
        hot.iter()
            .filter(|a| a.id == *f.id())
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        find(&live),
        vec![live.auction().clone()],
        "a live auction is hot"
    );
    assert_eq!(
        find(&scheduled),
        vec![scheduled.auction().clone()],
        "so is a scheduled one"
    );
    assert_eq!(
        find(&recent),
        vec![recent.auction().clone()],
        "closed at `since`: still hot"
    );
    assert!(
        find(&old).is_empty(),
        "closed before `since`: left in the archive"
    );
    assert!(
        archive
            .load_hot(since + 1)
            .await
            .unwrap()
            .iter()
            .all(|a| a.id != *recent.id()),
        "closed just before `since`"
    );
}

pub async fn a_batch_of_100_bids_is_one_transaction(archive: &dyn Archive) {
    let mut a = Fixture::new("hundred");
    archive.create_auction(a.auction()).await.unwrap();
    archive.record_batch(&[a.open()]).await.unwrap();
    let before = archive.stats();

    let batch: Vec<_> = (0..100).map(|_| a.bid()).collect();
    archive.record_batch(&batch).await.unwrap();

    assert_eq!(
        delta(before, archive.stats()),
        ArchiveStats {
            batches: 1,
            bids: 100
        },
        "100 bids, one write transaction"
    );
    assert_eq!(history(archive, a.id()).await, newest_first(3, 102));
    assert_eq!(&stored(archive, a.id()).await, a.auction());
}

pub async fn an_empty_batch_is_a_no_op(archive: &dyn Archive) {
    let before = archive.stats();
    archive.record_batch(&[]).await.unwrap();
    assert_eq!(archive.stats(), before);
}

/// Readers running while batches commit see each batch whole or not at all, and never
/// a gap in the history.
pub async fn readers_see_whole_batches_while_writing(archive: &dyn Archive) {
    const BATCHES: usize = 30;
    const PER_BATCH: usize = 10;
    let mut a = Fixture::new("concurrent");
    archive.create_auction(a.auction()).await.unwrap();
    archive.record_batch(&[a.open()]).await.unwrap();
    let batches: Vec<Vec<ArchivedChange>> = (0..BATCHES)
        .map(|_| (0..PER_BATCH).map(|_| a.bid()).collect())
        .collect();
    let id = a.id().clone();
    let done = AtomicBool::new(false);

    let writer = async {
        for batch in &batches {
            archive.record_batch(batch).await.unwrap();
            tokio::task::yield_now().await;
        }
        done.store(true, Ordering::SeqCst);
    };
    let reader = || async {
        let mut reads = 0u32;
        loop {
            let finished = done.load(Ordering::SeqCst);
            let seqs = history(archive, &id).await;
            let n = seqs.len();
            assert_eq!(n % PER_BATCH, 0, "a reader saw {n} bids: part of a batch");
            assert_eq!(seqs, newest_first(3, n as u64 + 2), "a gap in the history");
            let state = stored(archive, &id).await.state;
            assert!(
                state.seq >= n as u64 + 2,
                "state at seq {} is older than the {n} bids read before it",
                state.seq
            );
            reads += 1;
            if finished {
                return reads;
            }
        }
    };
    let ((), r1, r2, r3) = tokio::join!(writer, reader(), reader(), reader());
    assert!(r1 > 0 && r2 > 0 && r3 > 0);
    assert_eq!(history(archive, &id).await.len(), BATCHES * PER_BATCH);
}

/// The replies of one auction stored in the last hour.
async fn mine(archive: &dyn Archive, id: &AuctionId) -> Vec<StoredReply> {
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000;
    let mut replies: Vec<_> = archive
        .replies_since(hour_ago)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.auction_id == *id)
        .collect();
    replies.sort_by_key(|r| r.state.seq);
    replies
}

/// Drops the archive and opens the same store again: what was committed is all there.
pub async fn everything_survives_a_reopen(harness: &dyn Harness) {
    let mut open = Fixture::new("reopen-open");
    let mut closed = Fixture::new("reopen-closed");
    let expected_replies;
    {
        let archive = harness.open().await;
        archive.create_auction(open.auction()).await.unwrap();
        archive.create_auction(closed.auction()).await.unwrap();
        let batch = vec![
            open.open(),
            open.bid(),
            open.bid(),
            closed.open(),
            closed.bid(),
        ];
        archive.record_batch(&batch).await.unwrap();
        archive
            .record_batch(&[open.bid(), closed.cancel("admin-1")])
            .await
            .unwrap();
        expected_replies = mine(&*archive, open.id()).await;
        assert_eq!(expected_replies.len(), 3);
    }

    let archive = harness.open().await;
    assert_eq!(
        archive.stats(),
        ArchiveStats::default(),
        "stats count this process only"
    );
    let all = archive.load_auctions().await.unwrap();
    for f in [&open, &closed] {
        let found = all.iter().find(|x| x.id == *f.id());
        assert_eq!(found, Some(f.auction()), "{} after reopening", f.id());
    }
    assert_eq!(history(&*archive, open.id()).await, vec![5, 4, 3]);
    assert_eq!(history(&*archive, closed.id()).await, vec![3]);
    assert_eq!(
        stored(&*archive, closed.id())
            .await
            .state
            .closing
            .unwrap()
            .by,
        Some("admin-1".into())
    );
    assert_eq!(mine(&*archive, open.id()).await, expected_replies);

    // And it keeps working after the restart.
    archive.record_batch(&[open.bid()]).await.unwrap();
    assert_eq!(history(&*archive, open.id()).await, vec![6, 5, 4, 3]);
}

/// Realistic changes for the suite, made by the real rules of `gavel-core`.
pub mod fixture;

/// The webhook outbox checks.
pub mod outbox;
pub use outbox::*;

/// A word no other test's auction holds: letters and digits, unique per process and call.
fn unique_word(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
    format!("{prefix}{}x{nanos}x{n}", std::process::id())
}

/// Three listed auctions sharing the word `tag`: a lamp (ends in 1 day), a desk with two
/// bids (category `c<tag>` like the lamp), and lamp oil, cancelled.
async fn listed_three(archive: &dyn Archive, tag: &str) -> [Fixture; 3] {
    const DAY: i64 = 86_400_000;
    let cat = format!("c{tag}");
    let other = format!("d{tag}");
    let mut lamp = Fixture::listed(
        "search-a",
        "Brass desk lamp",
        &format!("A green shade. {tag}"),
        Some(&cat),
        DAY,
    );
    let mut desk = Fixture::listed(
        "search-b",
        "Oak writing desk",
        &format!("Solid, with drawers ({tag})"),
        Some(&cat),
        30 * DAY,
    );
    let mut oil = Fixture::listed("search-c", "Lamp oil, 1 litre", tag, Some(&other), 30 * DAY);
    let mut batch = Vec::new();
    for f in [&mut lamp, &mut desk, &mut oil] {
        archive.create_auction(f.auction()).await.unwrap();
        batch.push(f.open());
    }
    batch.push(desk.bid());
    batch.push(desk.bid());
    batch.push(oil.cancel("admin-1"));
    archive.record_batch(&batch).await.unwrap();
    [lamp, desk, oil]
}

async fn found(archive: &dyn Archive, q: crate::search::SearchQuery) -> Vec<AuctionId> {
    let limit = if q.limit == 0 { 100 } else { q.limit };
    archive
        .search(&crate::search::SearchQuery { limit, ..q })
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect()
}

pub async fn search_matches_word_prefixes_category_status_price_and_end(archive: &dyn Archive) {
    use crate::search::{words, SearchQuery, SearchStatus};
    let tag = unique_word("s");
    let [lamp, desk, oil] = listed_three(archive, &tag).await;
    let now = Fixture::start() + 60_000;
    let q = |text: &str| SearchQuery {
        words: words(&format!("{text} {tag}")),
        now,
        ..SearchQuery::default()
    };
    let ids = |fs: &[&Fixture]| fs.iter().map(|f| f.id().clone()).collect::<Vec<_>>();

    // Title and description words, as prefixes, all required; live first, then ended.
    assert_eq!(found(archive, q("LAMP")).await, ids(&[&lamp, &oil]));
    assert_eq!(found(archive, q("des")).await, ids(&[&lamp, &desk]));
    assert_eq!(found(archive, q("drawers")).await, ids(&[&desk]));
    assert_eq!(found(archive, q("lamp shade")).await, ids(&[&lamp]));
    assert_eq!(found(archive, q("lampshade")).await, ids(&[]));
    // The whole tag is a word of every description; a longer one is no prefix of it.
    assert_eq!(found(archive, q("")).await, ids(&[&lamp, &desk, &oil]));
    assert_eq!(
        found(
            archive,
            SearchQuery {
                words: words(&format!("{tag}9")),
                now,
                ..SearchQuery::default()
            }
        )
        .await,
        ids(&[])
    );

    let cat = format!("c{tag}");
    let in_cat = SearchQuery {
        category: Some(cat.clone()),
        now,
        ..SearchQuery::default()
    };
    assert_eq!(found(archive, in_cat.clone()).await, ids(&[&lamp, &desk]));
    assert_eq!(
        found(
            archive,
            SearchQuery {
                status: SearchStatus::Closed,
                ..q("")
            }
        )
        .await,
        ids(&[&oil])
    );
    assert_eq!(
        found(
            archive,
            SearchQuery {
                status: SearchStatus::Open,
                ..q("")
            }
        )
        .await,
        ids(&[&lamp, &desk])
    );
    assert_eq!(
        found(
            archive,
            SearchQuery {
                status: SearchStatus::Live,
                ..q("")
            }
        )
        .await,
        ids(&[&lamp, &desk])
    );
    let before_start = SearchQuery {
        status: SearchStatus::Scheduled,
        now: Fixture::start() - 1,
        ..q("")
    };
    assert_eq!(found(archive, before_start).await, ids(&[&lamp, &desk]));
    assert_eq!(
        found(
            archive,
            SearchQuery {
                status: SearchStatus::Scheduled,
                ..q("")
            }
        )
        .await,
        ids(&[])
    );

    // The desk's price moved past the starting price; the others are at it.
    let desk_price = desk.auction().state.price.unwrap().minor_units();
    let start_price = lamp.auction().spec.starting_price.minor_units();
    assert!(desk_price > start_price);
    assert_eq!(
        found(
            archive,
            SearchQuery {
                min_price: Some(start_price + 1),
                ..q("")
            }
        )
        .await,
        ids(&[&desk])
    );
    assert_eq!(
        found(
            archive,
            SearchQuery {
                max_price: Some(start_price),
                ..q("")
            }
        )
        .await,
        ids(&[&lamp, &oil])
    );
    assert_eq!(
        found(
            archive,
            SearchQuery {
                min_price: Some(desk_price),
                max_price: Some(desk_price),
                ..q("")
            }
        )
        .await,
        ids(&[&desk])
    );

    // Ending within two days: the lamp only (the cancelled oil has ended already).
    assert_eq!(
        found(
            archive,
            SearchQuery {
                ends_before: Some(now + 2 * 86_400_000),
                ..q("")
            }
        )
        .await,
        ids(&[&lamp])
    );

    let cats = archive.categories().await.unwrap();
    assert!(cats.contains(&(cat, 2)), "{cats:?}");
    assert!(
        !cats.iter().any(|(c, _)| *c == format!("d{tag}")),
        "a category of closed auctions only is not listed: {cats:?}"
    );
}

pub async fn search_sorts_and_pages_with_ties_broken_by_id(archive: &dyn Archive) {
    use crate::search::{words, SearchQuery, SearchSort};
    let tag = unique_word("p");
    let [lamp, desk, oil] = listed_three(archive, &tag).await;
    let q = |sort, offset, limit| SearchQuery {
        words: words(&tag),
        sort,
        now: Fixture::start() + 60_000,
        offset,
        limit,
        ..SearchQuery::default()
    };
    let ids = |fs: &[&Fixture]| fs.iter().map(|f| f.id().clone()).collect::<Vec<_>>();
    // Lamp and oil are both at the starting price: the id decides (search-a < search-c).
    assert_eq!(
        found(archive, q(SearchSort::PriceLow, 0, 0)).await,
        ids(&[&lamp, &oil, &desk])
    );
    assert_eq!(
        found(archive, q(SearchSort::PriceHigh, 0, 0)).await,
        ids(&[&desk, &oil, &lamp])
    );
    // All start together: latest start first, then id descending.
    assert_eq!(
        found(archive, q(SearchSort::Newest, 0, 0)).await,
        ids(&[&oil, &desk, &lamp])
    );
    assert_eq!(
        found(archive, q(SearchSort::Ending, 0, 0)).await,
        ids(&[&lamp, &desk, &oil])
    );
    // Pages of one walk the same order, each auction once.
    let mut paged = Vec::new();
    for offset in 0..4 {
        paged.extend(found(archive, q(SearchSort::Ending, offset, 1)).await);
    }
    assert_eq!(paged, ids(&[&lamp, &desk, &oil]));
}

pub async fn search_reads_query_syntax_as_plain_words(archive: &dyn Archive) {
    use crate::search::{words, SearchQuery};
    let tag = unique_word("q");
    let [lamp, _desk, oil] = listed_three(archive, &tag).await;
    let now = Fixture::start() + 60_000;
    // Operators and quotes of either engine's query language are separators, never syntax:
    // every query below runs, and matches by its words alone.
    for text in [
        format!("\"lamp\" {tag}"),
        format!("lamp* {tag} )"),
        format!("lamp & {tag} | !"),
        format!("lamp:* {tag}"),
        format!("'lamp' {tag} -"),
    ] {
        let got = found(
            archive,
            SearchQuery {
                words: words(&text),
                now,
                ..SearchQuery::default()
            },
        )
        .await;
        assert_eq!(got, vec![lamp.id().clone(), oil.id().clone()], "{text:?}");
    }
    // Words handed to the archive directly are cleaned there too.
    let raw = SearchQuery {
        words: vec!["\"lamp".into(), format!("{tag}*)")],
        now,
        limit: 10,
        ..SearchQuery::default()
    };
    let got: Vec<_> = archive
        .search(&raw)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(got, vec![lamp.id().clone(), oil.id().clone()]);
}

/// A bidder id unique per call, so checks sharing one database never see each other's rows.
fn unique_bidder(name: &str) -> BidderId {
    let id = Fixture::new(name).id().to_string();
    BidderId::parse(id).expect("a valid bidder id")
}

pub async fn a_watchlist_is_per_user_newest_first_and_idempotent(archive: &dyn Archive) {
    let (me, other) = (unique_bidder("watcher"), unique_bidder("other"));
    let (a, b) = (Fixture::new("watch-a"), Fixture::new("watch-b"));
    assert!(archive.watchlist(&me, 50).await.unwrap().is_empty());

    assert!(archive.set_watched(&me, a.id(), true, 1_000).await.unwrap());
    assert!(archive.set_watched(&me, b.id(), true, 2_000).await.unwrap());
    assert!(
        !archive.set_watched(&me, a.id(), true, 3_000).await.unwrap(),
        "watching twice changes nothing"
    );
    assert!(archive
        .set_watched(&other, a.id(), true, 4_000)
        .await
        .unwrap());
    assert_eq!(
        archive.watchlist(&me, 50).await.unwrap(),
        vec![b.id().clone(), a.id().clone()],
        "newest first; the repeat kept the first time"
    );
    assert_eq!(
        archive.watchlist(&me, 1).await.unwrap(),
        vec![b.id().clone()]
    );

    assert!(archive
        .set_watched(&me, b.id(), false, 5_000)
        .await
        .unwrap());
    assert!(
        !archive
            .set_watched(&me, b.id(), false, 6_000)
            .await
            .unwrap(),
        "unwatching what is not watched changes nothing"
    );
    assert_eq!(
        archive.watchlist(&me, 50).await.unwrap(),
        vec![a.id().clone()]
    );
    assert_eq!(
        archive.watchlist(&other, 50).await.unwrap(),
        vec![a.id().clone()],
        "another user's list is their own"
    );
}

pub async fn bid_auctions_list_each_auction_a_user_bid_on_once_latest_first(archive: &dyn Archive) {
    let me = unique_bidder("bidder");
    let rival = unique_bidder("rival");
    let (mut a, mut b, mut c) = (
        Fixture::new("mine-a"),
        Fixture::new("mine-b"),
        Fixture::new("mine-c"),
    );
    for f in [&a, &b, &c] {
        archive.create_auction(f.auction()).await.unwrap();
    }
    // a: two bids of mine (early); b: one bid of mine (later); c: only a rival's bid.
    let open_a = a.open();
    let a1 = a.at(10_000).max(me.as_str(), 2_000);
    let a2 = a.at(11_000).max(rival.as_str(), 3_000);
    let a3 = a.at(12_000).max(me.as_str(), 4_000);
    let open_b = b.open();
    let b1 = b.at(20_000).max(me.as_str(), 2_000);
    let open_c = c.open();
    let c1 = c.at(30_000).max(rival.as_str(), 2_000);
    archive
        .record_batch(&[open_a, a1, a2, a3, open_b, b1, open_c, c1])
        .await
        .unwrap();

    assert_eq!(
        archive.bid_auctions(&me, 50).await.unwrap(),
        vec![b.id().clone(), a.id().clone()],
        "each auction once, the one with my latest bid first, none I never bid on"
    );
    assert_eq!(
        archive.bid_auctions(&me, 1).await.unwrap(),
        vec![b.id().clone()]
    );
    assert_eq!(
        archive.bid_auctions(&rival, 50).await.unwrap(),
        vec![c.id().clone(), a.id().clone()]
    );
}

pub async fn next_steps_are_set_replaced_and_removed(archive: &dyn Archive) {
    let a = Fixture::new("next-steps");
    archive.create_auction(a.auction()).await.unwrap();
    assert_eq!(archive.next_steps(a.id()).await.unwrap(), None);
    let first = NextSteps {
        text: "Pay within 3 days; pick-up in Ghent.".into(),
        url: Some("https://pay.example/lot".into()),
        updated_at: 1_000,
    };
    archive.set_next_steps(a.id(), Some(&first)).await.unwrap();
    assert_eq!(archive.next_steps(a.id()).await.unwrap(), Some(first));
    let second = NextSteps {
        text: "We will e-mail you.".into(),
        url: None,
        updated_at: 2_000,
    };
    archive.set_next_steps(a.id(), Some(&second)).await.unwrap();
    assert_eq!(archive.next_steps(a.id()).await.unwrap(), Some(second));
    archive.set_next_steps(a.id(), None).await.unwrap();
    assert_eq!(archive.next_steps(a.id()).await.unwrap(), None);
    assert_eq!(
        archive
            .next_steps(Fixture::new("other").id())
            .await
            .unwrap(),
        None
    );
}
