//! Opening, the open window, closing by time, ending early, cancelling, and `seq`.

use crate::helpers::*;
use gavel_core::{
    cancel, close_if_due, end_early, open_if_due, place_bid, CloseReason, Event, Rejection, Status,
};

#[test]
fn a_new_auction_is_scheduled_at_seq_one_with_no_price_or_leader() {
    let a = scheduled(spec());
    assert_eq!(a.state.status, Status::Scheduled);
    assert_eq!(a.state.seq, 1);
    assert_eq!(a.state.price, None);
    assert_eq!(a.state.leader, None);
    assert_eq!(a.state.bid_count, 0);
    assert_eq!(a.state.ends_at, END);
    assert_eq!(a.state.closing, None);
}

#[test]
fn the_clock_decides_the_status_whatever_the_recorded_status_says() {
    let a = scheduled(spec());
    assert_eq!(a.status_at(START - 1), Status::Scheduled);
    assert_eq!(a.status_at(START), Status::Open);
    assert_eq!(a.status_at(END - 1), Status::Open);
    assert_eq!(a.status_at(END), Status::Closed);
    assert_eq!(a.status_at(END + 1), Status::Closed);
}

#[test]
fn a_recorded_closing_closes_the_auction_before_its_end_time() {
    let a = opened(spec());
    let a = cancel(&a, MID, "admin").unwrap().auction;
    assert_eq!(a.status_at(MID), Status::Closed);
    assert_eq!(a.status_at(START), Status::Closed);
}

#[test]
fn a_bid_before_the_start_is_rejected_as_not_open() {
    let mut a = scheduled(spec());
    reject(&mut a, &plain("ann", 1_000), START - 1, Rejection::NotOpen);
    reject(
        &mut a,
        &max("ann", 5_000),
        START - 60_000,
        Rejection::NotOpen,
    );
}

#[test]
fn a_bid_at_the_start_time_is_accepted_even_before_open_if_due_has_run() {
    let mut a = scheduled(spec());
    accept(&mut a, &plain("ann", 1_000), START);
    assert_eq!(a.state.status, Status::Open);
    assert_eq!(a.state.seq, 2);
    // The bid already opened it, so there is nothing left for the opener to announce.
    assert_eq!(open_if_due(&a, START + 1), None);
}

#[test]
fn a_bid_one_millisecond_before_the_end_is_accepted() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_000), END - 1);
}

#[test]
fn a_bid_at_the_end_time_is_rejected_as_closed() {
    let mut a = opened(spec());
    reject(&mut a, &plain("ann", 1_000), END, Rejection::Closed);
}

#[test]
fn a_bid_after_the_end_time_is_rejected_as_closed_even_if_nobody_closed_it_yet() {
    let mut a = opened(spec());
    assert_eq!(a.state.status, Status::Open);
    reject(&mut a, &plain("ann", 1_000), END + 5_000, Rejection::Closed);
    reject(&mut a, &max("ann", 9_000), END + 5_000, Rejection::Closed);
    reject(&mut a, &buy("ann", 9_000), END + 5_000, Rejection::Closed);
}

#[test]
fn a_bid_after_an_early_end_is_rejected_as_closed() {
    let mut a = opened(spec());
    a = end_early(&a, MID, "admin").unwrap().auction;
    reject(&mut a, &plain("ann", 1_000), MID + 1, Rejection::Closed);
}

#[test]
fn not_open_and_closed_take_precedence_over_a_stale_seq() {
    let mut a = scheduled(spec());
    let mut r = plain("ann", 1_000);
    r.expected_seq = Some(99);
    reject(&mut a, &r, START - 1, Rejection::NotOpen);
    reject(&mut a, &r, END, Rejection::Closed);
}

#[test]
fn open_if_due_does_nothing_before_the_start() {
    let a = scheduled(spec());
    assert_eq!(open_if_due(&a, START - 1), None);
}

#[test]
fn open_if_due_opens_at_the_start_and_bumps_seq_by_one() {
    let a = scheduled(spec());
    let c = open_if_due(&a, START).unwrap();
    assert_eq!(c.event, Event::Opened);
    assert_eq!(c.auction.state.status, Status::Open);
    assert_eq!(c.auction.state.seq, a.state.seq + 1);
}

#[test]
fn open_if_due_does_nothing_to_an_auction_already_open() {
    let a = opened(spec());
    assert_eq!(open_if_due(&a, START + 10), None);
}

#[test]
fn open_if_due_does_nothing_once_the_end_time_has_passed() {
    // A server that was down for the whole auction must close it, not open it.
    let a = scheduled(spec());
    assert_eq!(open_if_due(&a, END), None);
    let c = close_if_due(&a, END).unwrap();
    assert_eq!(c.auction.state.status, Status::Closed);
}

#[test]
fn close_if_due_does_nothing_before_the_end() {
    let a = opened(spec());
    assert_eq!(close_if_due(&a, END - 1), None);
}

#[test]
fn close_if_due_closes_at_the_end_time_and_records_it_as_the_closing_time() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_200), MID);
    // The closer may run late; the result is dated by the clock's decision, not the timer.
    let c = close_if_due(&a, END + 750).unwrap();
    assert_eq!(c.event, Event::Closed);
    assert_eq!(c.auction.state.seq, a.state.seq + 1);
    assert_eq!(c.auction.state.status, Status::Closed);
    let closing = c.auction.state.closing.unwrap();
    assert_eq!(closing.reason, CloseReason::Ended);
    assert_eq!(closing.closed_at, END);
    assert_eq!(closing.winner, Some(bidder("ann")));
    assert_eq!(closing.final_price, Some(m(1_200)));
    assert_eq!(closing.by, None);
}

#[test]
fn close_if_due_does_nothing_to_a_closed_auction() {
    let a = opened(spec());
    let a = close_if_due(&a, END).unwrap().auction;
    assert_eq!(close_if_due(&a, END + 1), None);
    let cancelled = cancel(&opened(spec()), MID, "admin").unwrap().auction;
    assert_eq!(close_if_due(&cancelled, END), None);
}

#[test]
fn an_auction_without_bids_closes_with_no_winner_and_no_price() {
    let a = opened(spec());
    let closing = close_if_due(&a, END)
        .unwrap()
        .auction
        .state
        .closing
        .unwrap();
    assert_eq!(closing.winner, None);
    assert_eq!(closing.final_price, None);
}

#[test]
fn the_winner_pays_the_price_not_their_secret_maximum() {
    let mut a = opened(spec());
    accept(&mut a, &max("ann", 5_000), MID);
    reject(
        &mut a,
        &plain("bob", 1_100),
        MID + 1,
        Rejection::Outbid { min_bid: m(1_300) },
    );
    let closing = close_if_due(&a, END)
        .unwrap()
        .auction
        .state
        .closing
        .unwrap();
    assert_eq!(closing.winner, Some(bidder("ann")));
    assert_eq!(closing.final_price, Some(m(1_200)));
}

#[test]
fn ending_early_closes_now_and_the_leader_wins() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_500), MID);
    let c = end_early(&a, MID + 10, "carol").unwrap();
    assert_eq!(c.event, Event::Closed);
    assert_eq!(c.auction.state.seq, a.state.seq + 1);
    assert_eq!(c.auction.state.status, Status::Closed);
    let closing = c.auction.state.closing.unwrap();
    assert_eq!(closing.reason, CloseReason::EndedEarly);
    assert_eq!(closing.closed_at, MID + 10);
    assert_eq!(closing.winner, Some(bidder("ann")));
    assert_eq!(closing.final_price, Some(m(1_500)));
    assert_eq!(closing.by.as_deref(), Some("carol"));
}

#[test]
fn ending_a_scheduled_auction_early_closes_it_with_no_winner() {
    let a = scheduled(spec());
    let c = end_early(&a, START - 1_000, "carol").unwrap();
    let closing = c.auction.state.closing.unwrap();
    assert_eq!(closing.winner, None);
    assert_eq!(closing.final_price, None);
}

#[test]
fn ending_early_is_refused_once_the_auction_is_closed() {
    let a = opened(spec());
    assert_eq!(end_early(&a, END, "carol"), Err(Rejection::Closed));
    let a = cancel(&a, MID, "carol").unwrap().auction;
    assert_eq!(end_early(&a, MID + 1, "carol"), Err(Rejection::Closed));
}

#[test]
fn cancelling_closes_now_and_nobody_wins_even_with_a_leader() {
    let mut a = opened(spec());
    accept(&mut a, &plain("ann", 1_500), MID);
    let c = cancel(&a, MID + 10, "carol").unwrap();
    assert_eq!(c.event, Event::Closed);
    assert_eq!(c.auction.state.seq, a.state.seq + 1);
    let closing = c.auction.state.closing.unwrap();
    assert_eq!(closing.reason, CloseReason::Cancelled);
    assert_eq!(closing.closed_at, MID + 10);
    assert_eq!(closing.winner, None);
    assert_eq!(closing.final_price, None);
    assert_eq!(closing.by.as_deref(), Some("carol"));
}

#[test]
fn cancelling_is_refused_once_the_auction_is_closed() {
    let a = opened(spec());
    assert_eq!(cancel(&a, END, "carol"), Err(Rejection::Closed));
    let a = end_early(&a, MID, "carol").unwrap().auction;
    assert_eq!(cancel(&a, MID + 1, "carol"), Err(Rejection::Closed));
}

#[test]
fn a_scheduled_auction_can_be_cancelled_before_it_starts() {
    let a = scheduled(spec());
    let c = cancel(&a, START - 1, "carol").unwrap();
    assert_eq!(c.auction.state.status, Status::Closed);
    assert_eq!(
        place_bid(&c.auction, &plain("ann", 1_000), START).outcome,
        Err(Rejection::Closed)
    );
}

#[test]
fn seq_grows_by_exactly_one_per_change_and_not_at_all_otherwise() {
    let a = scheduled(spec());
    assert_eq!(a.state.seq, 1);
    let mut a = open_if_due(&a, START).unwrap().auction;
    assert_eq!(a.state.seq, 2);
    accept(&mut a, &max("ann", 2_000), MID); // Bid
    assert_eq!(a.state.seq, 3);
    reject(
        &mut a,
        &plain("bob", 1_000),
        MID,
        Rejection::Outbid { min_bid: m(1_100) },
    ); // no change
    assert_eq!(a.state.seq, 3);
    bid(&mut a, &plain("bob", 1_100), MID); // proxy counter-bid: a change
    assert_eq!(a.state.seq, 4);
    accept(&mut a, &max("ann", 3_000), MID); // MaxRaised
    assert_eq!(a.state.seq, 5);
    reject(&mut a, &plain("ann", 9_000), MID, Rejection::AlreadyLeading);
    assert_eq!(a.state.seq, 5);
    let a = close_if_due(&a, END).unwrap().auction; // Closed
    assert_eq!(a.state.seq, 6);
}
