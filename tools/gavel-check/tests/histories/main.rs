//! The checker on hand-made histories: valid ones (concurrent, retried, unknown outcomes,
//! proxies, soft close, the clock) pass; broken ones fail, each with the violation that
//! names what went wrong and the lines involved.

mod sim;

use gavel_check::history::{AdminAction, Answer, Via};
use gavel_check::{Report, Verdict, ViolationKind};
use gavel_core::BidKind::{self, Max, Plain};
use sim::{error, lost, soft_close, spec, Log, Sim, T0};

fn assert_linearizable(r: &Report) {
    assert!(r.ok(), "expected linearizable:\n{}", r.text());
    assert_eq!(r.auctions.len(), 1, "{}", r.text());
    assert_eq!(r.auctions[0].verdict, Verdict::Linearizable);
}

/// Exactly one violation, of `kind`, naming `lines` and saying `words`.
fn assert_violation(r: &Report, kind: ViolationKind, lines: &[usize], words: &[&str]) {
    eprintln!("{}", r.text());
    assert!(!r.ok(), "expected a violation");
    assert_eq!(
        r.violations.len(),
        1,
        "expected one violation:\n{}",
        r.text()
    );
    let v = &r.violations[0];
    assert_eq!(v.kind, kind, "{}", r.text());
    assert_eq!(v.lines, lines, "lines involved: {}", r.text());
    for w in words {
        assert!(v.message.contains(w), "{w:?} missing from: {}", v.message);
    }
    assert_eq!(r.auctions[0].verdict, Verdict::Violation);
}

#[test]
fn sequential_bids_reads_and_history_pages_are_linearizable() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let r = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    log.plain("ann", "a1", 1000, 5, 15, r);
    let r = sim.bid("bob", 1100, Plain, None, T0 + 30, "b1");
    log.plain("bob", "b1", 1100, 25, 35, r);
    log.view("cat", 40, 45, sim.view(T0 + 42));
    log.page("cat", 50, 55, 50, None, sim.page(50, None));
    log.page("cat", 56, 57, 1, None, sim.page(1, None));
    log.page("cat", 58, 59, 1, Some(3), sim.page(1, Some(3)));
    log.snapshot("dan", 60, 65, sim.snapshot(T0 + 62));
    let report = log.check();
    assert_linearizable(&report);
    assert_eq!(report.auctions[0].seq, 3);
    assert_eq!(report.auctions[0].search_steps, 3, "one step per seq");
}

#[test]
fn overlapping_bids_answered_in_any_order_are_linearizable() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    // Ann and Bob bid 1000 at the same moment; Bob is decided first. Cat's higher bid is
    // decided third but answered before Bob hears back.
    let bob = sim.bid("bob", 1000, Plain, None, T0 + 12, "b1");
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 13, "a1");
    let cat = sim.bid("cat", 1100, Plain, None, T0 + 14, "c1");
    log.plain("ann", "a1", 1000, 10, 20, ann);
    log.plain("cat", "c1", 1100, 11, 18, cat);
    log.plain("bob", "b1", 1000, 10, 30, bob);
    log.view("dan", 19, 21, sim.view(T0 + 20));
    let report = log.check();
    assert_linearizable(&report);
    assert_eq!(report.auctions[0].seq, 3);
}

#[test]
fn retries_with_the_same_request_id_are_one_bid() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    // Ann's WebSocket bid is decided, but the answer never arrives; a retry over HTTP much
    // later gets the first answer again (seq 2) although the auction has moved on.
    let first = sim.bid("ann", 1000, Plain, None, T0 + 11, "a1");
    log.bid(
        "ann",
        "a1",
        1000,
        Plain,
        None,
        Via::Ws,
        10,
        Some(5_010),
        lost(),
    );
    let bob = sim.bid("bob", 1100, Plain, None, T0 + 105, "b1");
    log.plain("bob", "b1", 1100, 100, 110, bob);
    log.view("cat", 200, 210, sim.view(T0 + 205));
    log.bid(
        "ann",
        "a1",
        1000,
        Plain,
        None,
        Via::Http,
        5_020,
        Some(5_030),
        Answer::Ok(first.clone()),
    );
    log.bid(
        "ann",
        "a1",
        1000,
        Plain,
        None,
        Via::Ws,
        5_015,
        Some(5_035),
        Answer::Ok(first),
    );
    let report = log.check();
    assert_linearizable(&report);
    assert_eq!(report.auctions[0].unknown, 0, "the retry told the outcome");
}

#[test]
fn unknown_outcomes_may_have_taken_effect_once_or_not_at_all() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    // Ann's answer is lost, but her bid was decided; Bob's was lost and never decided; Cat
    // was told outcome_unknown and hers was not decided either.
    let _ = sim.bid("ann", 1000, Plain, None, T0 + 11, "a1");
    log.bid(
        "ann",
        "a1",
        1000,
        Plain,
        None,
        Via::Ws,
        10,
        Some(1_010),
        lost(),
    );
    log.bid(
        "bob",
        "b1",
        1200,
        Plain,
        None,
        Via::Http,
        12,
        Some(1_012),
        lost(),
    );
    log.bid(
        "cat",
        "c1",
        1300,
        Max,
        None,
        Via::Http,
        13,
        Some(40),
        error("outcome_unknown"),
    );
    log.bid(
        "dan",
        "d1",
        1400,
        Plain,
        None,
        Via::Http,
        14,
        Some(20),
        error("unavailable"),
    );
    log.view("eve", 2_000, 2_010, sim.view(T0 + 2_005));
    let dan = sim.bid("dan", 1100, Plain, None, T0 + 2_105, "d2");
    log.plain("dan", "d2", 1100, 2_100, 2_110, dan);
    log.page("eve", 2_200, 2_210, 50, None, sim.page(50, None));
    let report = log.check();
    assert_linearizable(&report);
    assert_eq!(report.auctions[0].unknown, 3);
    assert_eq!(report.auctions[0].unknown_took_effect, 1);
}

#[test]
fn a_proxy_counter_bid_is_found_among_outbid_answers() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 5000, Max, None, T0 + 10, "a1");
    log.bid(
        "ann",
        "a1",
        5000,
        Max,
        None,
        Via::Ws,
        5,
        Some(15),
        Answer::Ok(ann),
    );
    // Bob's plain bid is answered by Ann's maximum (a change, seq 3); Cat's, decided right
    // after on the new state, is simply too low (no change, also seq 3). Cat hears first.
    let bob = sim.bid("bob", 2000, Plain, None, T0 + 22, "b1");
    let cat = sim.bid("cat", 1500, Plain, None, T0 + 23, "c1");
    log.plain("cat", "c1", 1500, 20, 25, cat);
    log.plain("bob", "b1", 2000, 20, 30, bob);
    // Ann raises her own maximum: accepted, nothing visible moves but seq.
    let raise = sim.bid("ann", 6000, Max, None, T0 + 41, "a2");
    log.bid(
        "ann",
        "a2",
        6000,
        Max,
        None,
        Via::Http,
        40,
        Some(45),
        Answer::Ok(raise),
    );
    log.page("dan", 50, 55, 50, None, sim.page(50, None));
    log.view("dan", 56, 57, sim.view(T0 + 56));
    let report = log.check();
    assert_linearizable(&report);
    assert_eq!(report.auctions[0].seq, 4);
}

#[test]
fn soft_close_extensions_and_the_clock_closing_are_explained() {
    let mut s = spec();
    s.soft_close = soft_close(5_000, 10_000);
    let mut sim = Sim::new(s);
    let mut log = Log::new(&sim);
    // In the window: the end moves to now + 10 s, twice.
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 56_000, "a1");
    log.plain("ann", "a1", 1000, 55_990, 56_010, ann);
    let bob = sim.bid("bob", 1100, Plain, None, T0 + 65_000, "b1");
    log.plain("bob", "b1", 1100, 64_995, 65_010, bob);
    // After the extended end (75 s): closed, before and after the clock's close.
    let cat = sim.bid("cat", 1200, Plain, None, T0 + 75_001, "c1");
    log.plain("cat", "c1", 1200, 74_999, 75_003, cat);
    assert!(sim.tick(T0 + 75_020), "the clock closes the auction");
    log.view("dan", 75_050, 75_060, sim.view(T0 + 75_055));
    let again = sim.bid("cat", 1200, Plain, None, T0 + 75_101, "c1");
    log.plain("cat", "c1", 1200, 75_100, 75_105, again);
    let report = log.check();
    assert_linearizable(&report);
    assert_eq!(report.auctions[0].clock_changes, 1);
}

#[test]
fn a_scheduled_auction_opens_by_the_clock() {
    let mut s = spec();
    s.starts_at = T0 + 1_000;
    let mut sim = Sim::new(s);
    let mut log = Log::new(&sim);
    let early = sim.bid("ann", 1000, Plain, None, T0 + 500, "a1");
    log.plain("ann", "a1", 1000, 495, 505, early);
    assert!(sim.tick(T0 + 1_010), "the clock opens the auction");
    let bob = sim.bid("bob", 1000, Plain, None, T0 + 1_500, "b1");
    log.plain("bob", "b1", 1000, 1_495, 1_505, bob);
    log.snapshot("cat", 1_600, 1_610, sim.snapshot(T0 + 1_605));
    let report = log.check();
    assert_linearizable(&report);
    assert_eq!(report.auctions[0].clock_changes, 1);
}

#[test]
fn admin_actions_and_buy_now_are_explained() {
    let mut s = spec();
    s.buy_now = Some(gavel_core::Money::new(9_000).unwrap());
    let mut sim = Sim::new(s);
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 9_000, BidKind::BuyNow, None, T0 + 10, "a1");
    log.bid(
        "ann",
        "a1",
        9_000,
        BidKind::BuyNow,
        None,
        Via::Http,
        5,
        Some(15),
        Answer::Ok(ann),
    );
    let late = sim.bid("bob", 1_000, Plain, None, T0 + 30, "b1");
    log.plain("bob", "b1", 1_000, 25, 35, late);
    let refused = sim.admin(AdminAction::Cancel, T0 + 50);
    log.admin(AdminAction::Cancel, 45, 55, refused);
    log.page("cat", 60, 65, 10, None, sim.page(10, None));
    assert_linearizable(&log.check());

    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1_000, Plain, None, T0 + 10, "a1");
    log.plain("ann", "a1", 1_000, 5, 15, ann);
    let ended = sim.admin(AdminAction::EndEarly, T0 + 50);
    log.admin(AdminAction::EndEarly, 45, 55, ended);
    log.view("cat", 60, 65, sim.view(T0 + 62));
    assert_linearizable(&log.check());
}

// ---- broken histories: each must fail, with the right explanation ----

#[test]
fn two_accepted_bids_at_the_same_seq_are_a_violation() {
    let mut sim = Sim::new(spec());
    let mut stale = sim.clone();
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    let a = log.plain("ann", "a1", 1000, 5, 15, ann);
    // Decided against the same state as Ann's: what a missing compare-and-swap does.
    let bob = stale.bid("bob", 1000, Plain, None, T0 + 11, "b1");
    let b = log.plain("bob", "b1", 1000, 6, 16, bob);
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::SeqClaimedTwice,
        &[a, b],
        &["two changes were answered at seq 2", "u-ann", "u-bob"],
    );
}

#[test]
fn an_acceptance_below_the_minimum_is_a_violation() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    log.plain("ann", "a1", 1000, 5, 15, ann);
    // The server took 1050 although the minimum was 1100.
    let mut bob = sim.clone().bid("bob", 1100, Plain, None, T0 + 30, "b1");
    let view = bob.auction.as_mut().unwrap();
    view.price = Some(1050);
    view.min_bid = 1150;
    let b = log.plain("bob", "b1", 1050, 25, 35, bob);
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::Rules,
        &[b],
        &[
            "answered accepted at seq 3",
            "from seq 2",
            "outbid (min_bid 1100)",
        ],
    );
}

#[test]
fn a_read_that_goes_back_in_time_is_a_violation() {
    let mut sim = Sim::new(spec());
    let before = sim.clone();
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    let a = log.plain("ann", "a1", 1000, 5, 15, ann);
    // Sent after Ann heard "accepted at seq 2", yet it shows seq 1.
    let v = log.view("bob", 20, 25, before.view(T0 + 22));
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::RealTime,
        &[a, v],
        &[
            "had already returned seq 2",
            "it saw seq 1: a read that goes back in time",
        ],
    );
}

#[test]
fn a_stale_accepted_bid_is_a_violation() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    log.plain("ann", "a1", 1000, 5, 15, ann);
    // Bob bid on seq 1 (expected_seq), after Ann's bid had moved it to 2: must be stale.
    let bob = sim.bid("bob", 1100, Plain, None, T0 + 30, "b1");
    let b = log.bid(
        "bob",
        "b1",
        1100,
        Plain,
        Some(1),
        Via::Ws,
        25,
        Some(35),
        Answer::Ok(bob),
    );
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::Rules,
        &[b],
        &[
            "expected seq 1",
            "answered accepted at seq 3",
            "stale (the auction is at seq 2)",
        ],
    );
}

#[test]
fn a_winner_who_was_not_the_leader_is_a_violation() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    log.plain("ann", "a1", 1000, 5, 15, ann);
    let bob = sim.bid("bob", 1100, Plain, None, T0 + 30, "b1");
    log.plain("bob", "b1", 1100, 25, 35, bob);
    assert!(sim.tick(T0 + 60_000));
    // The closing names Ann, who was outbid.
    let mut view = sim.view(T0 + 60_100);
    let closing = view.closing.as_mut().unwrap();
    closing.winner = view.leader.clone().map(|mut l| {
        l.id = "u-ann".into();
        l.name = "ann".into();
        l
    });
    closing.final_price = Some(1000);
    let v = log.view("cat", 60_050, 60_150, view);
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::Rules,
        &[v],
        &["at seq 4", "leader u-bob", "closing should be [\"ended\",1700000060000,\"u-bob\",1100] but is [\"ended\",1700000060000,\"u-ann\",1000]"],
    );
}

#[test]
fn an_accepted_retry_decided_twice_is_a_violation() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let first = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    let a = log.plain("ann", "a1", 1000, 5, 15, first);
    let bob = sim.bid("bob", 1100, Plain, None, T0 + 30, "b1");
    log.plain("bob", "b1", 1100, 25, 35, bob);
    // The retry of a1 was decided again instead of answered from the first decision.
    let again = sim.bid("ann", 1200, Plain, None, T0 + 50, "a1");
    let r = log.plain("ann", "a1", 1200, 45, 55, again);
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::DecidedTwice,
        &[a, r],
        &[
            "request a1 of u-ann was decided twice: accepted at seq 2",
            "accepted at seq 4",
        ],
    );
}

#[test]
fn a_lost_accepted_bid_is_a_violation() {
    let mut sim = Sim::new(spec());
    let without_ann = sim.clone();
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    let a = log.plain("ann", "a1", 1000, 5, 15, ann);
    // A history read after Ann heard "accepted" does not have her bid.
    let p = log.page("bob", 20, 25, 50, None, without_ann.page(50, None));
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::History,
        &[a, p],
        &["it lacks seq 2 bid 1000 by u-ann", "made by line"],
    );
}

#[test]
fn an_unavailable_bid_that_took_effect_is_unexplained() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let _ = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    log.bid(
        "ann",
        "a1",
        1000,
        Plain,
        None,
        Via::Http,
        5,
        Some(15),
        error("unavailable"),
    );
    let v = log.view("bob", 20, 25, sim.view(T0 + 22));
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::Unexplained,
        &[v],
        &["reports seq 2", "no operation in the history", "to seq 2"],
    );
}

#[test]
fn a_decision_time_outside_its_window_is_a_violation() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    // Decided at +500 ms by the server's account, while the request was in flight 5–15 ms.
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 500, "a1");
    let a = log.plain("ann", "a1", 1000, 5, 15, ann);
    log.page("bob", 600, 610, 50, None, sim.page(50, None));
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::Time,
        &[a],
        &[
            "made at 1700000000500",
            "outside the window [1700000000005, 1700000000015]",
        ],
    );
}

#[test]
fn an_unknown_request_takes_effect_at_most_once() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let _ = sim.bid("ann", 5000, Max, None, T0 + 10, "a1");
    log.bid(
        "ann",
        "a1",
        5000,
        Max,
        None,
        Via::Ws,
        5,
        Some(1_005),
        lost(),
    );
    log.view("bob", 20, 25, sim.view(T0 + 22));
    // A second "Ann takes the lead from nobody" change: her one request cannot do it again.
    let mut twice = sim.view(T0 + 40);
    twice.seq = 3;
    let v = log.view("bob", 35, 45, twice);
    let report = log.check();
    assert_violation(&report, ViolationKind::Unexplained, &[v], &["to seq 3"]);
}

#[test]
fn the_command_line_exits_0_on_a_valid_history_and_2_on_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    let run = |log: &Log, name: &str| {
        let path = dir.path().join(name);
        let history = gavel_check::History::from_records(
            gavel_check::history::Header {
                format: gavel_check::history::FORMAT,
                clock_skew_ms: 0,
                unrecorded_admin: false,
                source: None,
            },
            log.records.clone(),
        );
        std::fs::write(&path, history.to_jsonl()).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gavel-check"))
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let mut sim = Sim::new(spec());
    let mut stale = sim.clone();
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    log.plain("ann", "a1", 1000, 5, 15, ann);
    let (code, out) = run(&log, "good.jsonl");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("linearizable  lot-1: 2 operations, seq 2"),
        "{out}"
    );
    let bob = stale.bid("bob", 1000, Plain, None, T0 + 11, "b1");
    log.plain("bob", "b1", 1000, 6, 16, bob);
    let (code, out) = run(&log, "bad.jsonl");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("[seq_claimed_twice] auction lot-1: two changes were answered at seq 2"),
        "{out}"
    );
    std::fs::write(dir.path().join("junk.jsonl"), "{\"type\":\"bid\"}\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gavel-check"))
        .arg(dir.path().join("junk.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1"),
        "{out:?}"
    );
}

#[test]
fn an_accepted_request_later_answered_closed_is_decided_twice() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    let a = log.plain("ann", "a1", 1000, 5, 15, ann);
    assert!(sim.tick(T0 + 60_000));
    // After the close, the retry of an accepted request must still get "accepted".
    let forgot = sim.bid("ann", 1000, Plain, None, T0 + 60_100, "a1");
    let r = log.plain("ann", "a1", 1000, 60_095, 60_105, forgot);
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::DecidedTwice,
        &[a, r],
        &[
            "answered accepted at seq 2",
            "then closed at seq 3",
            "must keep its answer",
        ],
    );
}

#[test]
fn not_found_for_an_existing_auction_is_a_violation() {
    let sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let missing = gavel_protocol::BidResult {
        request_id: "a1".into(),
        auction_id: sim::AUCTION.into(),
        outcome: "not_found".into(),
        message: String::new(),
        auction: None,
        state: None,
        receipt: None,
    };
    let line = log.plain("ann", "a1", 1000, 5, 15, missing);
    let report = log.check();
    assert_violation(
        &report,
        ViolationKind::NotFound,
        &[line],
        &["answered not_found, but the auction was created by"],
    );
}

#[test]
fn an_auction_without_its_creation_is_unchecked_not_passed() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1000, Plain, None, T0 + 10, "a1");
    log.plain("ann", "a1", 1000, 5, 15, ann);
    log.records.remove(0);
    let report = log.check();
    assert!(!report.ok(), "{}", report.text());
    assert!(report.violations.is_empty(), "{}", report.text());
    assert_eq!(report.auctions[0].verdict, Verdict::Unchecked);
    assert_eq!(
        report.auctions[0].note.as_deref(),
        Some("the history has no successful creation of this auction")
    );
}

#[test]
fn an_unrecorded_admin_action_is_inferred_only_when_the_history_allows_it() {
    let mut sim = Sim::new(spec());
    let mut log = Log::new(&sim);
    let ann = sim.bid("ann", 1_000, Plain, None, T0 + 10, "a1");
    log.plain("ann", "a1", 1_000, 5, 15, ann);
    // An operator ends the auction early; the history does not have it.
    let _ = sim.admin(AdminAction::EndEarly, T0 + 50);
    let late = sim.bid("bob", 1_100, Plain, None, T0 + 70, "b1");
    let b = log.plain("bob", "b1", 1_100, 65, 75, late);
    let strict = log.check();
    assert_violation(
        &strict,
        ViolationKind::Unexplained,
        &[b],
        &["reports seq 3", "to seq 3"],
    );
    let report = log.check_with(true);
    assert_linearizable(&report);
    assert_eq!(report.auctions[0].clock_changes, 1);
}
