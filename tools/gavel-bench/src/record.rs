//! `--record FILE`: the run's history in `gavel-check`'s format, so any scenario can be
//! checked for linearizability afterwards (`gavel-check FILE`).
//!
//! What is recorded: every auction's creation, every bid attempt (the WebSocket bid with
//! the time it was written and the time its answer was read, or that none came; the HTTP
//! retries of unknown outcomes at the end), and every auction view the end-of-run checks
//! read. Times are the system clock in µs, the clock a server on this machine decides with.
//! Recording costs the tool a full parse of every answer, so leave it off when measuring
//! the tool's own limits.

use crate::ctx::Ctx;
use gavel_check::history::{Answer, Bid, Call, Create, Record, Via, View};
use gavel_check::record::now_us;
use gavel_core::BidKind;
use gavel_protocol::{AuctionView, BidResult, CreateAuction, ErrorCode, ErrorDetail, UserRef};
use std::sync::atomic::Ordering;

fn call(
    auction: &str,
    client: String,
    via: Via,
    node: usize,
    sent: i64,
    received: Option<i64>,
) -> Call {
    Call {
        auction: auction.to_string(),
        client,
        via,
        node: Some(node),
        sent,
        received,
    }
}

/// An auction created by the tool.
pub fn create(
    ctx_rec: &gavel_check::Recorder,
    node: usize,
    body: &CreateAuction,
    sent: i64,
    view: &AuctionView,
) {
    ctx_rec.record(Record::Create(Create {
        call: call(
            &view.id,
            "bench".into(),
            Via::Http,
            node,
            sent,
            Some(now_us()),
        ),
        request: body.clone(),
        answer: Answer::Ok(view.clone()),
    }));
}

/// The answer frame (`bid_result` or `error`) to WebSocket bid `idx`, read at `received`.
/// Each attempt is recorded once: an answer that comes after the run gave up on it is not.
pub fn ws_answer(ctx: &Ctx, idx: u32, user: &UserRef, node: usize, received: i64, frame: &str) {
    let Some(rec) = &ctx.recorder else { return };
    let answer = match serde_json::from_str::<serde_json::Value>(frame) {
        Ok(v) if v["type"] == "bid_result" => serde_json::from_value::<BidResult>(v)
            .map(Answer::Ok)
            .unwrap_or_else(|e| Answer::Lost(format!("unreadable bid_result: {e}"))),
        Ok(v) => Answer::Error(error_detail(&v)),
        Err(e) => Answer::Lost(format!("unreadable frame: {e}")),
    };
    ws_attempt(ctx, rec, idx, user, node, Some(received), answer);
}

/// A WebSocket bid that was sent but never answered.
pub fn ws_lost(ctx: &Ctx, idx: u32, user: &UserRef, node: usize) {
    let Some(rec) = &ctx.recorder else { return };
    let answer = Answer::Lost("no answer before the end of the run".into());
    ws_attempt(ctx, rec, idx, user, node, Some(now_us()), answer);
}

fn ws_attempt(
    ctx: &Ctx,
    rec: &gavel_check::Recorder,
    idx: u32,
    user: &UserRef,
    node: usize,
    received: Option<i64>,
    answer: Answer<BidResult>,
) {
    let Some((auction, amount, sent, first)) = ctx.ledger.with(idx, |b| {
        (
            b.auction,
            b.amount,
            b.sent_wall_us.load(Ordering::Relaxed),
            !b.recorded.swap(true, Ordering::AcqRel),
        )
    }) else {
        return;
    };
    if !first || sent == 0 {
        return;
    }
    rec.record(Record::Bid(Bid {
        call: call(
            &ctx.auctions[auction as usize],
            format!("bidder-{}", user.name),
            Via::Ws,
            node,
            sent,
            received,
        ),
        bidder: user.clone(),
        request_id: ctx.request_id(idx),
        amount,
        kind: BidKind::Plain,
        expected_seq: None,
        answer,
    }));
}

/// An HTTP attempt at bid `idx` (a retry with the same request id).
pub fn http_attempt(
    ctx: &Ctx,
    idx: u32,
    user: &UserRef,
    node: usize,
    sent: i64,
    answer: Answer<BidResult>,
) {
    let Some(rec) = &ctx.recorder else { return };
    let Some((auction, amount)) = ctx.ledger.with(idx, |b| (b.auction, b.amount)) else {
        return;
    };
    rec.record(Record::Bid(Bid {
        call: call(
            &ctx.auctions[auction as usize],
            format!("bidder-{}", user.name),
            Via::Http,
            node,
            sent,
            Some(now_us()),
        ),
        bidder: user.clone(),
        request_id: ctx.request_id(idx),
        amount,
        kind: BidKind::Plain,
        expected_seq: None,
        answer,
    }));
}

/// Auction views read from node `node` in one listing sent at `sent`.
pub fn views<'a>(
    ctx: &Ctx,
    node: usize,
    sent: i64,
    views: impl IntoIterator<Item = &'a AuctionView>,
) {
    let Some(rec) = &ctx.recorder else { return };
    let received = now_us();
    for v in views {
        rec.record(Record::View(View {
            call: call(
                &v.id,
                "bench-check".into(),
                Via::Http,
                node,
                sent,
                Some(received),
            ),
            answer: Answer::Ok(v.clone()),
        }));
    }
}

/// An error frame's code and message. A code this version does not know counts as
/// `internal`: the bid may have been decided.
pub fn error_detail(v: &serde_json::Value) -> ErrorDetail {
    ErrorDetail {
        code: v["code"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(ErrorCode::Internal),
        message: v["message"].as_str().unwrap_or_default().to_string(),
    }
}
