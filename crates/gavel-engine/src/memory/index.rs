//! The memory engine's ordered views of its auctions, kept in step with every decision:
//! what `advance` must act on next, the live auctions by end time (`list_live`), and the
//! closed auctions by the time their hot state may leave memory (`--closed-retention`).
//!
//! Every view is a `BTreeSet` of `(time, id)`, so the next deadline, a page of live
//! auctions, or the expired closed ones cost a range read, never a walk of all auctions.

use gavel_core::{Auction, AuctionId, Millis, Status};
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

/// Where one auction sits in each view (`None`: not in it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Keys {
    /// Its next start or end to act on: the start while scheduled, then the current end.
    deadline: Option<Millis>,
    /// Its current end, while it is not closed.
    live: Option<Millis>,
    /// When its hot state may go: `retention_ms` after it closed.
    expires: Option<Millis>,
}

impl Keys {
    pub fn of(a: &Auction, retention_ms: i64) -> Keys {
        let closing = a.state.closing.as_ref();
        Keys {
            deadline: match (closing, a.state.status) {
                (Some(_), _) => None,
                (None, Status::Scheduled) => Some(a.spec.starts_at),
                (None, _) => Some(a.state.ends_at),
            },
            live: closing.is_none().then_some(a.state.ends_at),
            expires: closing.map(|c| c.closed_at.saturating_add(retention_ms)),
        }
    }
}

/// The views. One lock guards all of them (`Mutex<Index>` in the engine).
#[derive(Default)]
pub(super) struct Index {
    deadlines: BTreeSet<(Millis, AuctionId)>,
    live: BTreeSet<(Millis, AuctionId)>,
    expiring: BTreeSet<(Millis, AuctionId)>,
    keys: HashMap<AuctionId, Keys>,
}

fn swap(
    set: &mut BTreeSet<(Millis, AuctionId)>,
    id: &AuctionId,
    old: Option<Millis>,
    new: Option<Millis>,
) {
    if old == new {
        return;
    }
    if let Some(old) = old {
        set.remove(&(old, id.clone()));
    }
    if let Some(new) = new {
        set.insert((new, id.clone()));
    }
}

impl Index {
    /// Puts the auction where `keys` say.
    pub fn set(&mut self, id: &AuctionId, keys: Keys) {
        let old = self.keys.get(id).copied().unwrap_or_default();
        if old == keys && self.keys.contains_key(id) {
            return;
        }
        swap(&mut self.deadlines, id, old.deadline, keys.deadline);
        swap(&mut self.live, id, old.live, keys.live);
        swap(&mut self.expiring, id, old.expires, keys.expires);
        self.keys.insert(id.clone(), keys);
    }

    /// Takes the auction out of every view.
    pub fn remove(&mut self, id: &AuctionId) {
        if let Some(old) = self.keys.remove(id) {
            swap(&mut self.deadlines, id, old.deadline, None);
            swap(&mut self.live, id, old.live, None);
            swap(&mut self.expiring, id, old.expires, None);
        }
    }

    /// The earliest deadline still to act on.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// The auctions whose deadline is at or before `now`, earliest first.
    pub fn due(&self, now: Millis) -> Vec<AuctionId> {
        self.deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Up to `limit` live auctions after `after`, by end time then id.
    pub fn live_after(&self, after: Option<&(Millis, AuctionId)>, limit: usize) -> Vec<AuctionId> {
        let from = match after {
            Some(after) => Bound::Excluded(after.clone()),
            None => Bound::Unbounded,
        };
        self.live
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// The closed auctions whose retention ended at or before `now`.
    pub fn expired(&self, now: Millis) -> Vec<AuctionId> {
        self.expiring
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Auctions in the index.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gavel_core::{AuctionSpec, CloseReason, Closing, Currency, IncrementPolicy, Money};

    fn auction(id: &str, starts_at: Millis, ends_at: Millis) -> Auction {
        let spec = AuctionSpec {
            title: "Lot".into(),
            description: String::new(),
            currency: Currency::parse("USD").unwrap(),
            category: None,
            starting_price: Money::new(100).unwrap(),
            increment: IncrementPolicy::Fixed {
                amount: Money::new(10).unwrap(),
            },
            starts_at,
            ends_at,
            reserve: None,
            buy_now: None,
            soft_close: None,
        };
        Auction::new(AuctionId::parse(id).unwrap(), spec).unwrap()
    }

    fn closed(mut a: Auction, at: Millis) -> Auction {
        a.state.status = Status::Closed;
        a.state.closing = Some(Closing {
            reason: CloseReason::Ended,
            closed_at: at,
            winner: None,
            final_price: None,
            by: None,
        });
        a
    }

    fn id(s: &str) -> AuctionId {
        AuctionId::parse(s).unwrap()
    }

    #[test]
    fn each_view_follows_the_auction_through_its_life() {
        let mut index = Index::default();
        let a = auction("a", 100, 1_000);
        index.set(&a.id, Keys::of(&a, 50));
        assert_eq!(
            index.next_deadline(),
            Some(100),
            "scheduled: its start is next"
        );
        assert_eq!(index.live_after(None, 10), vec![id("a")]);
        let mut open = a.clone();
        open.state.status = Status::Open;
        open.state.ends_at = 1_200; // extended
        index.set(&open.id, Keys::of(&open, 50));
        assert_eq!(index.next_deadline(), Some(1_200));
        assert_eq!(index.due(1_199), Vec::<AuctionId>::new());
        assert_eq!(index.due(1_200), vec![id("a")]);
        let done = closed(open, 1_200);
        index.set(&done.id, Keys::of(&done, 50));
        assert_eq!(index.next_deadline(), None);
        assert!(index.live_after(None, 10).is_empty(), "closed: not live");
        assert!(index.expired(1_249).is_empty());
        assert_eq!(index.expired(1_250), vec![id("a")]);
        index.remove(&id("a"));
        assert!(index.expired(i64::MAX).is_empty());
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn live_pages_run_by_end_time_then_id_after_the_cursor() {
        let mut index = Index::default();
        for (name, end) in [("b", 300), ("a", 300), ("c", 100), ("d", 200)] {
            let a = auction(name, 0, end);
            index.set(&a.id, Keys::of(&a, 0));
        }
        assert_eq!(index.live_after(None, 2), vec![id("c"), id("d")]);
        assert_eq!(
            index.live_after(Some(&(200, id("d"))), 10),
            vec![id("a"), id("b")]
        );
        assert_eq!(index.live_after(Some(&(300, id("a"))), 10), vec![id("b")]);
        assert!(index.live_after(Some(&(300, id("b"))), 10).is_empty());
        assert!(index.live_after(None, 0).is_empty());
    }
}
