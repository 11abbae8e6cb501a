//! Bidder connections and the open-loop scheduler.
//!
//! Every bid is due at a time fixed before the step starts. The scheduler hands each bid to
//! its bidder's writer when it is due and never waits for an answer, so a slow server cannot
//! slow the load down (no coordinated omission); round trips and glass-to-glass latencies
//! are measured from the due time.

use crate::ctx::{outcome, Ctx};
use crate::target::Api;
use crate::watcher;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use gavel_protocol::{ClientMessage, UserRef};
use std::borrow::Cow;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A bid handed to a bidder's writer.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    pub idx: u32,
    pub at_us: u64,
    pub auction: u32,
    pub amount: i64,
}

pub struct Bidder {
    pub server: usize,
    pub token: String,
    /// Who the server knows this bidder as (for the recorded history).
    pub user: UserRef,
    tx: mpsc::UnboundedSender<Job>,
}

/// Signs a user in on `server` and connects them.
pub async fn start(ctx: Arc<Ctx>, api: &Api, id: usize, server: usize) -> anyhow::Result<Bidder> {
    let session = api
        .session(&ctx.servers[server], &format!("bench-bidder-{id}"))
        .await?;
    let ws = watcher::open(&ctx, server, &format!("?token={}", session.token)).await?;
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::unbounded_channel();
    let user = UserRef {
        id: session.user.id,
        name: session.user.name,
    };
    tokio::spawn(writer(ctx.clone(), id, sink, rx));
    tokio::spawn(reader(ctx, id, server, user.clone(), stream));
    Ok(Bidder {
        server,
        token: session.token,
        user,
        tx,
    })
}

type Sink = SplitSink<watcher::Ws, Message>;
type Stream = SplitStream<watcher::Ws>;

async fn writer(ctx: Arc<Ctx>, id: usize, mut sink: Sink, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut job = Some(first);
        // Write every bid that is due, then flush once.
        while let Some(j) = job {
            let msg = ClientMessage::Bid {
                auction_id: ctx.auctions[j.auction as usize].clone(),
                amount: j.amount.into(),
                request_id: ctx.request_id(j.idx),
                expected_seq: None,
                kind: None,
                // The reader looks at no auction view, so it asks for the lean answer;
                // a recorded run keeps the full one, which gavel-check compares.
                lean: ctx.recorder.is_none().then_some(true),
            };
            let text = serde_json::to_string(&msg).expect("client messages serialize");
            if ctx.recorder.is_some() {
                let now = gavel_check::record::now_us();
                ctx.ledger
                    .with(j.idx, |b| b.sent_wall_us.store(now, Ordering::Relaxed));
            }
            let lag = ctx.now_us().saturating_sub(j.at_us);
            ctx.rec.with(id, |t| {
                t.sent += 1;
                t.send_lag.saturating_record(lag.max(1));
            });
            if let Err(e) = sink.feed(Message::text(text)).await {
                ctx.events.add(&format!("bidder write error: {e}"));
                return;
            }
            job = rx.try_recv().ok();
        }
        if let Err(e) = sink.flush().await {
            ctx.events.add(&format!("bidder write error: {e}"));
            return;
        }
    }
}

/// What the reader needs from a server message: a `bid_result` or `error` answer's request
/// id and outcome. The rest (the auction view in every `bid_result`) is skipped unparsed, so
/// the tool spends its CPU on load, not on decoding answers it does not look at.
#[derive(serde::Deserialize)]
struct Answer<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    outcome: Option<Cow<'a, str>>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
}

async fn reader(ctx: Arc<Ctx>, id: usize, server: usize, user: UserRef, mut stream: Stream) {
    while let Some(msg) = stream.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(f)) => {
                if !ctx.stopping.load(Ordering::Relaxed) {
                    ctx.events.add(&format!("bidder closed by server: {f:?}"));
                }
                break;
            }
            Ok(_) => continue,
            Err(e) => {
                if !ctx.stopping.load(Ordering::Relaxed) {
                    ctx.events.add(&format!("bidder read error: {e}"));
                }
                break;
            }
        };
        let now = ctx.now_us();
        let answer = match serde_json::from_str::<Answer>(text.as_str()) {
            Ok(a) => a,
            Err(e) => {
                ctx.violations
                    .report(|| format!("bidder {id}: unparseable frame ({e})"));
                continue;
            }
        };
        let (rid, label, code) = match (answer.kind.as_ref(), answer.request_id) {
            ("bid_result", Some(rid)) => {
                let outcome = answer.outcome.unwrap_or_default();
                let code = if outcome == "accepted" {
                    outcome::ACCEPTED
                } else {
                    outcome::REJECTED
                };
                (rid, outcome.into_owned(), code)
            }
            ("error", Some(rid)) => {
                let code = answer.code.unwrap_or_default();
                let o = if matches!(&*code, "unavailable" | "outcome_unknown" | "internal") {
                    outcome::UNKNOWN
                } else {
                    outcome::REFUSED
                };
                (rid, format!("error:{code}"), o)
            }
            ("error", None) => {
                let code = answer.code.unwrap_or_default();
                ctx.events.add(&format!("bidder error: {code}"));
                continue;
            }
            _ => continue,
        };
        let Some(idx) = ctx.parse_request_id(&rid) else {
            ctx.violations
                .report(|| format!("bidder {id}: answer for unknown request id {rid}"));
            continue;
        };
        if ctx.recorder.is_some() {
            let received = gavel_check::record::now_us();
            crate::record::ws_answer(&ctx, idx, &user, server, received, text.as_str());
        }
        let at = ctx.ledger.with(idx, |b| {
            b.outcome.store(code, Ordering::Relaxed);
            b.at_us
        });
        ctx.rec.with(id, |t| {
            if let Some(at) = at {
                t.rtt.saturating_record(now.saturating_sub(at).max(1));
            }
            *t.outcomes.entry(label).or_default() += 1;
            t.last_answer_us = t.last_answer_us.max(now);
        });
    }
    ctx.open.fetch_sub(1, Ordering::Relaxed);
}

/// Hands every bid in `range` to its bidder when it is due.
pub async fn dispatch(ctx: &Ctx, bidders: &[Bidder], range: Range<u32>) {
    for (idx, at_us, auction, amount, bidder) in ctx.ledger.jobs(range) {
        let due = ctx.epoch + Duration::from_micros(at_us);
        if due > std::time::Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let job = Job {
            idx,
            at_us,
            auction,
            amount,
        };
        if bidders[bidder as usize].tx.send(job).is_err() {
            ctx.events.add("bid not sent: bidder connection gone");
            ctx.ledger.with(idx, |b| {
                b.outcome.store(outcome::REFUSED, Ordering::Relaxed)
            });
        }
    }
}
