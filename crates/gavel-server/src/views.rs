//! Converts the rules' types into wire types, hiding what only the leader may see.

use gavel_core::{
    buy_now_available, outcome_code, Auction, BidEntry, Bidder, BidderId, IncrementPolicy, Millis,
    Rejection, RequestId, Status,
};
use gavel_engine::BidReply;
use gavel_protocol::{
    AuctionView, BidResult, BidView, Closed, ClosingView, IncrementBandView, SoftCloseView, Update,
    UserRef,
};

pub fn user_ref(b: &Bidder) -> UserRef {
    UserRef {
        id: b.id.to_string(),
        name: b.name.to_string(),
    }
}

pub fn bid_view(e: &BidEntry) -> BidView {
    BidView {
        seq: e.seq,
        bidder: user_ref(&e.bidder),
        amount: e.amount.minor_units(),
        kind: e.kind.as_str().into(),
        at: e.at,
    }
}

/// The public view of an auction at `now`. `viewer` sees their own proxy maximum if they lead.
pub fn auction_view(a: &Auction, now: Millis, viewer: Option<&str>) -> AuctionView {
    let s = &a.state;
    let status = a.status_at(now);
    let open = status == Status::Open;
    let your_max = match (&s.leader, s.leader_max, viewer) {
        (Some(l), Some(m), Some(v)) if l.id.as_str() == v => Some(m.minor_units()),
        _ => None,
    };
    AuctionView {
        id: a.id.to_string(),
        title: a.spec.title.clone(),
        description: a.spec.description.clone(),
        category: a.spec.category.clone(),
        currency: a.spec.currency.to_string(),
        starting_price: a.spec.starting_price.minor_units(),
        increment: a.increment().minor_units(),
        increment_table: match &a.spec.increment {
            IncrementPolicy::Fixed { .. } => None,
            IncrementPolicy::Table { bands } => Some(
                bands
                    .iter()
                    .map(|b| IncrementBandView {
                        from: b.from,
                        increment: b.increment.minor_units(),
                    })
                    .collect(),
            ),
        },
        starts_at: a.spec.starts_at,
        ends_at: s.ends_at,
        original_ends_at: a.spec.ends_at,
        status: status.as_str().into(),
        price: s.price.map(|p| p.minor_units()),
        leader: s.leader.as_ref().map(user_ref),
        bid_count: s.bid_count,
        seq: s.seq,
        min_bid: a.min_bid().minor_units(),
        has_reserve: a.spec.reserve.is_some(),
        reserve_met: a.reserve_met(),
        buy_now: a.spec.buy_now.map(|p| p.minor_units()),
        buy_now_available: open && buy_now_available(a),
        soft_close: a.spec.soft_close.map(|sc| SoftCloseView {
            window_ms: sc.window_ms,
            extend_ms: sc.extend_ms,
            max_extension_ms: sc.max_extension_ms,
        }),
        closing: s.closing.as_ref().map(|c| ClosingView {
            reason: c.reason.as_str().into(),
            closed_at: c.closed_at,
            winner: c.winner.as_ref().map(user_ref),
            final_price: c.final_price.map(|p| p.minor_units()),
        }),
        your_max,
        log_hash: final_log_hash(a),
    }
}

/// The final hash of the auction's verifiable log, once it has closed.
pub fn final_log_hash(a: &Auction) -> Option<String> {
    a.state.closing.as_ref()?;
    gavel_core::chain::head(a).map(|h| h.to_hex())
}

/// The delta between two consecutive states: only what changed.
pub fn update(
    prev: &Auction,
    next: &Auction,
    event: &'static str,
    bid: Option<&BidEntry>,
) -> Update {
    let (p, n) = (&prev.state, &next.state);
    Update {
        auction_id: next.id.to_string(),
        seq: n.seq,
        event: event.into(),
        price: (p.price != n.price)
            .then(|| n.price.map(|m| m.minor_units()))
            .flatten(),
        leader: (p.leader != n.leader)
            .then(|| n.leader.as_ref().map(user_ref))
            .flatten(),
        bid_count: (p.bid_count != n.bid_count).then_some(n.bid_count),
        min_bid: (prev.min_bid() != next.min_bid()).then(|| next.min_bid().minor_units()),
        ends_at: (p.ends_at != n.ends_at).then_some(n.ends_at),
        status: (p.status != n.status).then(|| n.status.as_str().to_string()),
        reserve_met: (prev.reserve_met() != next.reserve_met())
            .then(|| next.reserve_met())
            .flatten(),
        buy_now_available: (buy_now_available(prev) != buy_now_available(next))
            .then(|| buy_now_available(next)),
        bid: bid.map(bid_view),
        decided_at: None,
    }
}

/// An update carrying every delta field, for a receiver whose previous state is unknown.
pub fn full_update(a: &Auction, event: &'static str, bid: Option<&BidEntry>) -> Update {
    let s = &a.state;
    Update {
        auction_id: a.id.to_string(),
        seq: s.seq,
        event: event.into(),
        price: s.price.map(|m| m.minor_units()),
        leader: s.leader.as_ref().map(user_ref),
        bid_count: Some(s.bid_count),
        min_bid: Some(a.min_bid().minor_units()),
        ends_at: Some(s.ends_at),
        status: Some(s.status.as_str().to_string()),
        reserve_met: a.reserve_met(),
        buy_now_available: Some(buy_now_available(a)),
        bid: bid.map(bid_view),
        decided_at: None,
    }
}

pub fn closed(a: &Auction) -> Option<Closed> {
    let c = a.state.closing.as_ref()?;
    Some(Closed {
        auction_id: a.id.to_string(),
        seq: a.state.seq,
        reason: c.reason.as_str().into(),
        winner: c.winner.as_ref().map(user_ref),
        final_price: c.final_price.map(|p| p.minor_units()),
        closed_at: c.closed_at,
        bid_count: a.state.bid_count,
        reserve_met: a.reserve_met(),
        log_hash: final_log_hash(a),
    })
}

/// The answer to a bid for `viewer` (the bidder), from the engine's reply: the same
/// reply always gives the same answer, so a repeated request is answered exactly as the
/// first time (`now` only places the auction's status in time).
pub fn bid_result(
    request_id: &RequestId,
    reply: &BidReply,
    viewer: &BidderId,
    now: Millis,
) -> BidResult {
    BidResult {
        request_id: request_id.to_string(),
        auction_id: reply.auction.id.to_string(),
        outcome: outcome_code(&reply.outcome).into(),
        message: outcome_message(&reply.outcome, &reply.auction, viewer),
        auction: Some(auction_view(&reply.auction, now, Some(viewer.as_str()))),
        state: None,
        receipt: None,
    }
}

/// A plain-words message for a bid outcome, told to `viewer` (the bidder), from the state
/// the bid was decided at. It mentions a proxy maximum only when it is the viewer's own.
pub fn outcome_message(outcome: &Result<(), Rejection>, a: &Auction, viewer: &BidderId) -> String {
    let cur = a.spec.currency;
    let fmt = |m: i64| format!("{} {}.{:02}", cur, m / 100, m % 100);
    let price = a.state.price.map_or(0, |p| p.minor_units());
    let viewer_leads = a.state.leader.as_ref().is_some_and(|l| l.id == *viewer);
    match outcome {
        Ok(()) => match (&a.state.closing, a.state.leader_max) {
            (Some(c), _) => format!(
                "You bought it for {}.",
                fmt(c.final_price.map_or(price, |p| p.minor_units()))
            ),
            // An accepted bid leads at the state it was decided at; anything else would be
            // someone else's state, and says nothing about theirs.
            _ if !viewer_leads => "Your bid was accepted.".into(),
            (None, Some(max)) => format!(
                "You lead at {}; your maximum is {}.",
                fmt(price),
                fmt(max.minor_units())
            ),
            (None, None) => format!("Your bid of {} leads.", fmt(price)),
        },
        Err(Rejection::Outbid { min_bid }) => match a.state.price {
            Some(price) => format!(
                "Outbid: the price is {}; the next bid must be at least {}.",
                fmt(price.minor_units()),
                fmt(min_bid.minor_units())
            ),
            None => format!(
                "Too low: nobody has bid yet, and the first bid must be at least {}.",
                fmt(min_bid.minor_units())
            ),
        },
        Err(Rejection::Stale { seq }) => {
            format!("The auction moved on (now at seq {seq}): check the new price and bid again.")
        }
        Err(Rejection::AlreadyLeading) => "You are already the highest bidder.".into(),
        Err(Rejection::NotOpen) => "The auction has not started yet.".into(),
        Err(Rejection::Closed) => "The auction has ended.".into(),
        Err(Rejection::BuyNowUnavailable) => {
            "Buy-now is not available for this auction now.".into()
        }
        Err(Rejection::BuyNowPrice { price }) => format!(
            "A buy-now bid must be exactly {}.",
            fmt(price.minor_units())
        ),
        // Only the leader can be refused this way, so the maximum is the viewer's own.
        Err(Rejection::MaxNotRaised { current_max }) if viewer_leads => format!(
            "Your new maximum must be above your current maximum of {}.",
            fmt(current_max.minor_units())
        ),
        Err(Rejection::MaxNotRaised { .. }) => {
            "Your new maximum must be above your current one.".into()
        }
    }
}
