//! The rules of an auction: every decision about a bid, an opening or a closing.
//!
//! Pure functions of (auction, request, `now`): no clock, no I/O, no locks. An engine calls
//! them inside its one atomic step per auction and stores the resulting state; the Redis
//! engine restates them in Lua and must pass the same conformance suite.

use crate::auction::{Auction, CloseReason, Closing, Millis, Status};
use crate::ids::Bidder;
use crate::money::Money;
use crate::names::named_enum;
use serde::{Deserialize, Serialize};

/// What a bidder asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BidKind {
    /// Bid exactly `amount`.
    #[default]
    Plain,
    /// Proxy bid: the system bids for me, one increment at a time, up to `amount`.
    Max,
    /// Pay the buy-now price (`amount` must equal it) and end the auction now.
    BuyNow,
}

named_enum!(BidKind, "bid kind", {
    Plain => "plain",
    Max => "max",
    BuyNow => "buy_now",
});

/// A bid as the rules see it. The bidder comes from the authenticated session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidRequest {
    pub bidder: Bidder,
    pub amount: Money,
    pub kind: BidKind,
    /// When given, the bid is only valid if the auction is still at this `seq`.
    pub expected_seq: Option<u64>,
}

/// Why a bid was not accepted. These are answers, not errors: each carries what the bidder
/// needs to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Rejection {
    /// Too low, or a standing proxy maximum outbid it. `min_bid` is the new minimum.
    Outbid { min_bid: Money },
    /// `expected_seq` was given and the auction has moved on to `seq`.
    Stale { seq: u64 },
    /// The bidder already leads; a plain bid would only raise their own price.
    AlreadyLeading,
    /// The auction has not started yet.
    NotOpen,
    /// The auction has ended (by time, buy-now, cancellation or early end).
    Closed,
    /// Buy-now is not offered, or no longer (see [`buy_now_available`]).
    BuyNowUnavailable,
    /// A buy-now bid must be for exactly the buy-now price.
    BuyNowPrice { price: Money },
    /// A leader's new maximum must be above their current one.
    MaxNotRaised { current_max: Money },
}

impl Rejection {
    /// The outcome code used on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Outbid { .. } => "outbid",
            Rejection::Stale { .. } => "stale",
            Rejection::AlreadyLeading => "already_leading",
            Rejection::NotOpen => "not_open",
            Rejection::Closed => "closed",
            Rejection::BuyNowUnavailable => "buy_now_unavailable",
            Rejection::BuyNowPrice { .. } => "buy_now_price",
            Rejection::MaxNotRaised { .. } => "max_not_raised",
        }
    }
}

/// The name of a decided bid's outcome on the wire: `accepted`, or the rejection's code.
pub fn outcome_code(outcome: &Result<(), Rejection>) -> &'static str {
    match outcome {
        Ok(()) => "accepted",
        Err(r) => r.code(),
    }
}

/// How an entry in the bid history came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Placed by the bidder at exactly this amount.
    Bid,
    /// Placed by the system on behalf of the bidder's proxy maximum.
    Auto,
    /// The buy-now purchase that ended the auction.
    BuyNow,
}

named_enum!(EntryKind, "entry kind", {
    Bid => "bid",
    Auto => "auto",
    BuyNow => "buy_now",
});

/// One entry of the public bid history. Never carries a proxy maximum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidEntry {
    pub seq: u64,
    pub bidder: Bidder,
    pub amount: Money,
    pub kind: EntryKind,
    pub at: Millis,
}

/// What a state change did, for watchers and the archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The price or leader moved; the history gained `entry`.
    Bid { entry: BidEntry, extended: bool },
    /// The leader raised their secret maximum; nothing visible changed but `seq`.
    MaxRaised,
    /// The start time passed.
    Opened,
    /// The auction ended; `state.closing` holds the result.
    Closed,
    /// The auction was created (its first state, `seq` 1). Engines emit it; rules never do.
    Created,
}

/// A new state for the auction (with `seq` one higher) and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub auction: Auction,
    pub event: Event,
}

/// The result of one bid: its outcome for the bidder, and the state change it caused, if any.
///
/// A rejected bid can still change the state: a plain bid below a standing proxy maximum
/// is answered `outbid`, and the proxy's automatic counter-bid raises the price.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Result<(), Rejection>,
    pub change: Option<Change>,
}

impl Decision {
    fn reject(r: Rejection) -> Self {
        Decision {
            outcome: Err(r),
            change: None,
        }
    }

    /// The `seq` the outcome was decided at: the new one if the state changed.
    pub fn decided_at(&self, before: &Auction) -> u64 {
        self.change
            .as_ref()
            .map_or(before.state.seq, |c| c.auction.state.seq)
    }
}

/// Decides a bid at the authority's time `now`.
pub fn place_bid(auction: &Auction, req: &BidRequest, now: Millis) -> Decision {
    match auction.status_at(now) {
        Status::Scheduled => return Decision::reject(Rejection::NotOpen),
        Status::Closed => return Decision::reject(Rejection::Closed),
        Status::Open => {}
    }
    if let Some(expected) = req.expected_seq {
        if expected != auction.state.seq {
            return Decision::reject(Rejection::Stale {
                seq: auction.state.seq,
            });
        }
    }
    match req.kind {
        BidKind::BuyNow => buy_now(auction, req, now),
        BidKind::Plain | BidKind::Max => competitive_bid(auction, req, now),
    }
}

/// Whether a buy-now bid would be accepted now (ignoring the clock): the auction offers
/// buy-now, the price is still below it, and either nobody has bid yet or the auction has
/// a reserve that is not met yet.
pub fn buy_now_available(auction: &Auction) -> bool {
    let Some(price) = auction.spec.buy_now else {
        return false;
    };
    auction.state.closing.is_none()
        && auction.state.price.is_none_or(|p| p < price)
        && (auction.state.bid_count == 0 || auction.reserve_met() == Some(false))
}

fn buy_now(auction: &Auction, req: &BidRequest, now: Millis) -> Decision {
    if !buy_now_available(auction) {
        return Decision::reject(Rejection::BuyNowUnavailable);
    }
    let price = auction.spec.buy_now.expect("checked by buy_now_available");
    if req.amount != price {
        return Decision::reject(Rejection::BuyNowPrice { price });
    }
    let mut next = auction.clone();
    let s = &mut next.state;
    s.status = Status::Closed;
    s.price = Some(price);
    s.leader = Some(req.bidder.clone());
    s.leader_max = None;
    s.bid_count += 1;
    s.seq += 1;
    s.closing = Some(Closing {
        reason: CloseReason::BuyNow,
        closed_at: now,
        winner: Some(req.bidder.clone()),
        final_price: Some(price),
        by: None,
    });
    let entry = BidEntry {
        seq: s.seq,
        bidder: req.bidder.clone(),
        amount: price,
        kind: EntryKind::BuyNow,
        at: now,
    };
    Decision {
        outcome: Ok(()),
        change: Some(Change {
            auction: next,
            event: Event::Bid {
                entry,
                extended: false,
            },
        }),
    }
}

fn competitive_bid(auction: &Auction, req: &BidRequest, now: Millis) -> Decision {
    let is_leader = auction
        .state
        .leader
        .as_ref()
        .is_some_and(|l| l.id == req.bidder.id);
    if is_leader {
        return match req.kind {
            BidKind::Max => raise_own_max(auction, req, now),
            _ => Decision::reject(Rejection::AlreadyLeading),
        };
    }
    let min_bid = auction.min_bid();
    // At the amount cap `min_bid` saturates to the price itself. A bid that cannot raise
    // the price is too low all the same; without this check it would record a "counter-bid"
    // at the unchanged price (and could extend a soft close forever).
    if req.amount < min_bid || auction.state.price.is_some_and(|p| req.amount <= p) {
        return Decision::reject(Rejection::Outbid { min_bid });
    }

    let inc = |m: Money| auction.spec.increment.at(m);
    let mut next = auction.clone();
    let new_leader_wins;
    {
        let s = &mut next.state;
        match (&auction.state.leader, auction.state.price) {
            (Some(_), Some(price)) => {
                // The most the current leader is committed to pay.
                let standing = auction.state.leader_max.unwrap_or(price);
                if req.amount > standing {
                    new_leader_wins = true;
                    s.price = Some(match req.kind {
                        BidKind::Max => req.amount.min(standing.saturating_add(inc(standing))),
                        _ => req.amount,
                    });
                } else {
                    // The standing maximum holds; ties go to the earlier bidder.
                    new_leader_wins = false;
                    s.price = Some(standing.min(req.amount.saturating_add(inc(req.amount))));
                }
            }
            _ => {
                new_leader_wins = true;
                s.price = Some(match req.kind {
                    BidKind::Max => auction.spec.starting_price,
                    _ => req.amount,
                });
            }
        }
        if new_leader_wins {
            s.leader = Some(req.bidder.clone());
            s.leader_max = (req.kind == BidKind::Max).then_some(req.amount);
        }
    }
    jump_to_reserve(&mut next);
    let entry_kind = if new_leader_wins && req.kind == BidKind::Plain {
        EntryKind::Bid
    } else {
        EntryKind::Auto
    };
    let change = record_bid(next, entry_kind, now);
    let outcome = if new_leader_wins {
        Ok(())
    } else {
        Err(Rejection::Outbid {
            min_bid: change.auction.min_bid(),
        })
    };
    Decision {
        outcome,
        change: Some(change),
    }
}

fn raise_own_max(auction: &Auction, req: &BidRequest, now: Millis) -> Decision {
    let current_max = auction
        .state
        .leader_max
        .or(auction.state.price)
        .unwrap_or(auction.spec.starting_price);
    if req.amount <= current_max {
        return Decision::reject(Rejection::MaxNotRaised { current_max });
    }
    let mut next = auction.clone();
    next.state.leader_max = Some(req.amount);
    let price_before = next.state.price;
    jump_to_reserve(&mut next);
    let change = if next.state.price != price_before {
        record_bid(next, EntryKind::Auto, now)
    } else {
        next.state.seq += 1;
        next.state.status = Status::Open;
        Change {
            auction: next,
            event: Event::MaxRaised,
        }
    };
    Decision {
        outcome: Ok(()),
        change: Some(change),
    }
}

/// A leader whose maximum reaches the reserve pays at least the reserve.
fn jump_to_reserve(a: &mut Auction) {
    if let (Some(reserve), Some(max), Some(price)) =
        (a.spec.reserve, a.state.leader_max, a.state.price)
    {
        if max >= reserve && price < reserve {
            a.state.price = Some(reserve);
        }
    }
}

/// Finishes a price-moving step: history entry, counters, soft close.
fn record_bid(mut next: Auction, kind: EntryKind, now: Millis) -> Change {
    let s = &mut next.state;
    s.status = Status::Open;
    s.bid_count += 1;
    s.seq += 1;
    let extended = extend_for_soft_close(&mut next, now);
    let s = &next.state;
    let entry = BidEntry {
        seq: s.seq,
        bidder: s.leader.clone().expect("a bid always has a leader"),
        amount: s.price.expect("a bid always has a price"),
        kind,
        at: now,
    };
    Change {
        auction: next,
        event: Event::Bid { entry, extended },
    }
}

/// Moves the end if a bid lands in the soft-close window. Never shortens an auction.
fn extend_for_soft_close(a: &mut Auction, now: Millis) -> bool {
    let Some(sc) = a.spec.soft_close else {
        return false;
    };
    if now < a.state.ends_at.saturating_sub(sc.window_ms) {
        return false;
    }
    let mut new_end = now.saturating_add(sc.extend_ms);
    if let Some(cap) = sc.max_extension_ms {
        new_end = new_end.min(a.spec.ends_at.saturating_add(cap));
    }
    if new_end > a.state.ends_at {
        a.state.ends_at = new_end;
        true
    } else {
        false
    }
}

/// Opens a scheduled auction once the clock has reached its start.
pub fn open_if_due(auction: &Auction, now: Millis) -> Option<Change> {
    if auction.state.status != Status::Scheduled || auction.status_at(now) != Status::Open {
        return None;
    }
    let mut next = auction.clone();
    next.state.status = Status::Open;
    next.state.seq += 1;
    Some(Change {
        auction: next,
        event: Event::Opened,
    })
}

/// Closes an auction whose end time has passed. The clock already refused bids from
/// `ends_at` on; this records and announces the result.
pub fn close_if_due(auction: &Auction, now: Millis) -> Option<Change> {
    if auction.state.closing.is_some() || now < auction.state.ends_at {
        return None;
    }
    let closed_at = auction.state.ends_at;
    Some(close(auction, CloseReason::Ended, closed_at, None))
}

/// An admin ends the auction now; the leader wins if the reserve is met.
pub fn end_early(auction: &Auction, now: Millis, by: &str) -> Result<Change, Rejection> {
    if auction.status_at(now) == Status::Closed {
        return Err(Rejection::Closed);
    }
    Ok(close(
        auction,
        CloseReason::EndedEarly,
        now,
        Some(by.to_string()),
    ))
}

/// An admin cancels the auction: it ends now and nobody wins.
pub fn cancel(auction: &Auction, now: Millis, by: &str) -> Result<Change, Rejection> {
    if auction.status_at(now) == Status::Closed {
        return Err(Rejection::Closed);
    }
    Ok(close(
        auction,
        CloseReason::Cancelled,
        now,
        Some(by.to_string()),
    ))
}

fn close(auction: &Auction, reason: CloseReason, closed_at: Millis, by: Option<String>) -> Change {
    let sold = reason != CloseReason::Cancelled && auction.reserve_met() != Some(false);
    let winner = auction.state.leader.clone().filter(|_| sold);
    let final_price = auction.state.price.filter(|_| winner.is_some());
    let mut next = auction.clone();
    next.state.status = Status::Closed;
    next.state.seq += 1;
    next.state.closing = Some(Closing {
        reason,
        closed_at,
        winner,
        final_price,
        by,
    });
    Change {
        auction: next,
        event: Event::Closed,
    }
}
