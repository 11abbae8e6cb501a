//! Archive rows as plain column values, shared by every SQL dialect.
//!
//! Turning a batch of [`ArchivedChange`]s into rows (and stored rows back into
//! `gavel-core` values) is the same for SQLite and PostgreSQL; only the SQL differs. Doing
//! it before the blocking database work also keeps serialization off the writer's lock.

use crate::{ArchiveError, ArchivedChange, LogRecord, StoredReply};
use gavel_core::{
    chain, Auction, AuctionId, AuctionState, BidEntry, Bidder, BidderId, Event, Money, RequestId,
};
use std::collections::HashMap;

/// The `auctions` row: spec and latest state as JSON, plus the columns queries need.
#[derive(Debug)]
pub(crate) struct AuctionRow {
    pub id: String,
    pub spec: String,
    pub state: String,
    pub seq: i64,
    pub status: &'static str,
    pub ends_at: i64,
    /// When it closed (`None` while it has not).
    pub closed_at: Option<i64>,
}

/// A `bids` row: one accepted, price-moving bid.
#[derive(Debug)]
pub(crate) struct BidRow {
    pub bid_id: String,
    pub auction_id: String,
    pub seq: i64,
    pub bidder_id: String,
    pub bidder_name: String,
    pub amount: i64,
    pub kind: &'static str,
    pub placed_at: i64,
    pub request_id: Option<String>,
}

/// A `results` row: how a closed auction ended.
#[derive(Debug)]
pub(crate) struct ResultRow {
    pub auction_id: String,
    pub seq: i64,
    pub reason: &'static str,
    pub winner_id: Option<String>,
    pub winner_name: Option<String>,
    pub final_price: Option<i64>,
    pub closed_at: i64,
    pub by_admin: Option<String>,
}

/// A `replies` row: the state an accepted request was answered with.
#[derive(Debug)]
pub(crate) struct ReplyRow {
    pub auction_id: String,
    pub bidder_id: String,
    pub request_id: String,
    pub seq: i64,
    pub state: String,
}

/// Everything one `record_batch` writes.
#[derive(Debug, Default)]
pub(crate) struct BatchRows {
    /// One row per auction: its newest state in the batch (older ones would be
    /// overwritten in the same transaction anyway, so they are not written at all).
    pub auctions: Vec<AuctionRow>,
    /// Every bid of the batch, in batch order.
    pub bids: Vec<BidRow>,
    /// A result for every change that carries a closing: `Event::Closed`, and also the
    /// buy-now `Event::Bid` that ends an auction.
    pub results: Vec<ResultRow>,
    /// One reply per change made by an accepted request, attributed to the leader.
    pub replies: Vec<ReplyRow>,
    /// One log entry per sealed change.
    pub log: Vec<LogRow>,
    /// The webhook events of the batch's changes, in order (see `webhooks::events_of`).
    pub events: Vec<crate::webhooks::OutboxEvent>,
}

/// A `log_entries` row: one entry of the verifiable log and its chain hash.
#[derive(Debug)]
pub(crate) struct LogRow {
    pub auction_id: String,
    pub seq: i64,
    pub kind: &'static str,
    pub at: i64,
    pub entry: String,
    pub hash: String,
}

impl LogRow {
    /// The row of the change that made `a`'s state; `None` for a state never sealed.
    pub fn of(a: &Auction) -> Result<Option<Self>, ArchiveError> {
        let (Some(entry), Some(hash)) = (chain::LogEntry::of(a), chain::head(a)) else {
            return Ok(None);
        };
        Ok(Some(LogRow {
            auction_id: a.id.to_string(),
            seq: to_i64(entry.seq)?,
            kind: entry.kind.as_str(),
            at: entry.at,
            entry: to_json(&entry)?,
            hash: hash.to_hex(),
        }))
    }

    /// A stored row read back.
    pub fn decode(entry: &str, hash: &str) -> Result<LogRecord, ArchiveError> {
        Ok(LogRecord {
            entry: serde_json::from_str(entry)
                .map_err(|e| ArchiveError::Corrupt(format!("log entry {entry:?}: {e}")))?,
            hash: chain::ChainHash::parse(hash)
                .map_err(|e| ArchiveError::Corrupt(format!("log hash {hash:?}: {e}")))?,
        })
    }
}

impl BatchRows {
    pub fn from_changes(changes: &[ArchivedChange]) -> Result<Self, ArchiveError> {
        let mut rows = BatchRows::default();
        let mut newest: HashMap<&AuctionId, &ArchivedChange> = HashMap::new();
        for change in changes {
            let a = &change.auction;
            newest
                .entry(&a.id)
                .and_modify(|kept| {
                    if kept.auction.state.seq < a.state.seq {
                        *kept = change;
                    }
                })
                .or_insert(change);
            if let Event::Bid { entry, .. } = &change.event {
                rows.bids.push(bid_row(change, entry)?);
            }
            rows.events.extend(crate::webhooks::events_of(change));
            if let Some(reply) = reply_row(change)? {
                rows.replies.push(reply);
            }
            if let Some(log) = LogRow::of(a)? {
                rows.log.push(log);
            }
            if let Some(closing) = &a.state.closing {
                rows.results.push(ResultRow {
                    auction_id: a.id.to_string(),
                    seq: to_i64(a.state.seq)?,
                    reason: closing.reason.as_str(),
                    winner_id: closing.winner.as_ref().map(|w| w.id.to_string()),
                    winner_name: closing.winner.as_ref().map(|w| w.name.to_string()),
                    final_price: closing.final_price.map(Money::minor_units),
                    closed_at: closing.closed_at,
                    by_admin: closing.by.clone(),
                });
            }
        }
        // Upsert in batch order of first appearance, so the writes are deterministic.
        for change in changes {
            if let Some(kept) = newest.remove(&change.auction.id) {
                rows.auctions.push(AuctionRow::new(&kept.auction)?);
            }
        }
        Ok(rows)
    }
}

impl AuctionRow {
    pub fn new(a: &Auction) -> Result<Self, ArchiveError> {
        Ok(AuctionRow {
            id: a.id.to_string(),
            spec: to_json(&a.spec)?,
            state: to_json(&a.state)?,
            seq: to_i64(a.state.seq)?,
            status: a.state.status.as_str(),
            ends_at: a.state.ends_at,
            closed_at: a.state.closing.as_ref().map(|c| c.closed_at),
        })
    }
}

fn bid_row(change: &ArchivedChange, entry: &BidEntry) -> Result<BidRow, ArchiveError> {
    let auction_id = change.auction.id.to_string();
    // The engine always sets a bid id; should one be missing, (auction, seq) still
    // identifies the bid, so a deterministic fallback keeps redelivery idempotent.
    let bid_id = change
        .bid_id
        .clone()
        .unwrap_or_else(|| format!("{auction_id}#{}", entry.seq));
    Ok(BidRow {
        bid_id,
        auction_id,
        seq: to_i64(entry.seq)?,
        bidder_id: entry.bidder.id.to_string(),
        bidder_name: entry.bidder.name.to_string(),
        amount: entry.amount.minor_units(),
        kind: entry.kind.as_str(),
        placed_at: entry.at,
        request_id: change.request_id.as_ref().map(|r| r.to_string()),
    })
}

/// The reply stored for a change an accepted request made. The requester leads after an
/// accepted request (see [`ArchivedChange::request_id`]); a change without a leader cannot
/// be one, and is stored without a reply.
fn reply_row(change: &ArchivedChange) -> Result<Option<ReplyRow>, ArchiveError> {
    let (Some(request_id), Some(leader)) = (&change.request_id, &change.auction.state.leader)
    else {
        return Ok(None);
    };
    Ok(Some(ReplyRow {
        auction_id: change.auction.id.to_string(),
        bidder_id: leader.id.to_string(),
        request_id: request_id.to_string(),
        seq: to_i64(change.auction.state.seq)?,
        state: to_json(&change.auction.state)?,
    }))
}

/// A stored reply read back.
pub(crate) fn decode_reply(
    auction_id: &str,
    bidder_id: String,
    request_id: String,
    state: &str,
    stored_at: i64,
) -> Result<StoredReply, ArchiveError> {
    let corrupt = |what: &str| {
        ArchiveError::Corrupt(format!(
            "reply to {request_id:?} of {bidder_id:?} on {auction_id:?}: bad {what}"
        ))
    };
    Ok(StoredReply {
        auction_id: AuctionId::parse(auction_id).map_err(|_| corrupt("auction id"))?,
        state: serde_json::from_str::<AuctionState>(state).map_err(|_| corrupt("state"))?,
        bidder: BidderId::parse(bidder_id.as_str()).map_err(|_| corrupt("bidder id"))?,
        request_id: RequestId::parse(request_id.as_str()).map_err(|_| corrupt("request id"))?,
        stored_at,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, ArchiveError> {
    serde_json::to_string(value)
        .map_err(|e| ArchiveError::Storage(format!("cannot encode archive JSON: {e}")))
}

/// A `seq` as the SQL integer type. Sequence numbers never come near `i64::MAX`.
pub(crate) fn to_i64(seq: u64) -> Result<i64, ArchiveError> {
    i64::try_from(seq).map_err(|_| ArchiveError::Storage(format!("seq {seq} is out of range")))
}

/// Rebuilds an auction from its stored id, spec JSON and state JSON.
pub(crate) fn decode_auction(id: &str, spec: &str, state: &str) -> Result<Auction, ArchiveError> {
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        ArchiveError::Corrupt(format!("auction {id:?}: {what}: {e}"))
    };
    Ok(Auction {
        id: AuctionId::parse(id).map_err(|e| corrupt("id", &e))?,
        spec: serde_json::from_str(spec).map_err(|e| corrupt("spec", &e))?,
        state: serde_json::from_str(state).map_err(|e| corrupt("state", &e))?,
    })
}

/// The columns of a stored bid, as read back for the history.
pub(crate) struct StoredBid {
    pub seq: i64,
    pub bidder_id: String,
    pub bidder_name: String,
    pub amount: i64,
    pub kind: String,
    pub placed_at: i64,
}

impl StoredBid {
    pub fn decode(self) -> Result<BidEntry, ArchiveError> {
        let seq = self.seq;
        let corrupt = |what: &str| ArchiveError::Corrupt(format!("bid at seq {seq}: bad {what}"));
        Ok(BidEntry {
            seq: u64::try_from(self.seq).map_err(|_| corrupt("seq"))?,
            bidder: Bidder {
                id: BidderId::parse(self.bidder_id).map_err(|_| corrupt("bidder id"))?,
                name: self.bidder_name.into(),
            },
            amount: Money::new(self.amount).map_err(|_| corrupt("amount"))?,
            kind: self.kind.parse().map_err(|_| corrupt("kind"))?,
            at: self.placed_at,
        })
    }
}

/// Auction ids read back from a per-user list.
pub(crate) fn auction_ids(ids: Vec<String>) -> Result<Vec<AuctionId>, ArchiveError> {
    ids.into_iter()
        .map(|id| {
            AuctionId::parse(&id)
                .map_err(|e| ArchiveError::Corrupt(format!("stored auction id {id:?}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::fixture::Fixture;
    use gavel_core::EntryKind;

    #[test]
    fn only_the_newest_state_of_each_auction_is_written() {
        let mut a = Fixture::new("rows-a");
        let mut b = Fixture::new("rows-b");
        let batch = vec![a.open(), b.open(), a.bid(), a.bid(), b.bid()];
        let rows = BatchRows::from_changes(&batch).unwrap();
        let seqs: Vec<(&str, i64)> = rows
            .auctions
            .iter()
            .map(|r| (r.id.as_str(), r.seq))
            .collect();
        assert_eq!(
            seqs,
            vec![(a.id().as_str(), 4), (b.id().as_str(), 3)],
            "one row per auction, newest seq, in order of first appearance"
        );
        assert_eq!(rows.bids.len(), 3);
        assert!(rows.results.is_empty());
    }

    #[test]
    fn an_older_change_after_a_newer_one_does_not_win() {
        let mut a = Fixture::new("rows-c");
        let opened = a.open();
        let bid = a.bid();
        let rows = BatchRows::from_changes(&[bid, opened]).unwrap();
        assert_eq!(rows.auctions.len(), 1);
        assert_eq!(rows.auctions[0].seq, 3);
    }

    #[test]
    fn a_buy_now_bid_also_writes_the_result() {
        let mut a = Fixture::new("rows-d");
        let opened = a.open();
        let bought = a.buy_now("carol");
        let rows = BatchRows::from_changes(&[opened, bought]).unwrap();
        assert_eq!(rows.bids.len(), 1);
        assert_eq!(rows.bids[0].kind, "buy_now");
        assert_eq!(rows.results.len(), 1);
        assert_eq!(rows.results[0].reason, "buy_now");
        assert_eq!(rows.results[0].winner_id.as_deref(), Some("carol"));
    }

    #[test]
    fn a_stored_bid_reads_back_its_kind_and_refuses_an_unknown_one() {
        for kind in EntryKind::ALL {
            let bid = StoredBid {
                seq: 3,
                bidder_id: "alice".into(),
                bidder_name: "Alice".into(),
                amount: 100,
                kind: kind.as_str().into(),
                placed_at: 0,
            };
            assert_eq!(bid.decode().unwrap().kind, *kind);
        }
        let bid = StoredBid {
            seq: 3,
            bidder_id: "alice".into(),
            bidder_name: "Alice".into(),
            amount: 100,
            kind: "proxy".into(),
            placed_at: 0,
        };
        assert!(matches!(bid.decode(), Err(ArchiveError::Corrupt(_))));
    }

    #[test]
    fn a_stored_bid_with_a_bad_amount_is_reported_corrupt() {
        let bid = StoredBid {
            seq: 3,
            bidder_id: "alice".into(),
            bidder_name: "Alice".into(),
            amount: 0,
            kind: "bid".into(),
            placed_at: 0,
        };
        assert!(matches!(bid.decode(), Err(ArchiveError::Corrupt(_))));
    }
}
