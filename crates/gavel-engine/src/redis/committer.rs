//! Decide in Rust, commit in one script: the node's committer shards.
//!
//! Every operation that can change an auction (a bid, `advance`, an admin action) is a
//! [`Job`] sent to the shard that owns the auction (by hash of its id). A shard is one task
//! with at most one pipeline in flight. It takes every job waiting (up to [`MAX_BATCH`]),
//! decides each with `gavel_core::rules` on this node's copy of the auction at its best
//! estimate of the authority's clock, and sends the batch as one pipeline of
//! `EVALSHA commit.lua` calls. Each call carries the version of the state it was decided
//! on, the clocks at which the decision holds (its guard) and what to write, with the
//! numbers that move with the clock marked for the script to fill in (`guard.rs`). The
//! time of an accepted change is the clock at which the script ran; once the call returns,
//! the node decides again at exactly that clock (the same decision, by the guard) to
//! answer and to update its copy.
//!
//! Decisions on one auction within a batch are chained: the second is decided on the state
//! the first one writes and expects its new version, so a hot auction takes one round trip
//! per batch, not per bid. A chain waits for the next batch when the first change's state
//! depends on its clock (a soft-close extension, a closing), which is known only once it
//! has run. Versions are unique per change, so a chained call whose predecessor was
//! refused is refused too, even if another node wrote the same `seq` meanwhile.
//!
//! A call either commits (state, log entry, history entry, idempotency record and
//! publish, in one step), or finds that something moved (another version, or a clock
//! outside the guard) and returns the current state and clock: the job is decided again
//! on that. What that second decision may claim without another compare (see
//! `docs/distributed.md`, "What an answer may claim"):
//!
//! - A **rejection** decided on the state a refusal returned, at the clock it returned, is
//!   linearized at that refused call: the state was current and the clock was the
//!   authority's (the script keeps the clock it saw, so Redis `TIME` stepping back cannot
//!   undo it). It needs no state write; only its idempotency record is written, with a
//!   plain `SET NX GET` (a concurrent copy of the same request that got there first wins,
//!   and both copies are answered with the first reply).
//! - Anything that **changes** the auction is proposed again in the next batch.
//! - A rejection decided on this node's copy (first attempt) is **not** trusted: the copy
//!   may be behind. It goes through the commit script like a change (an empty change: the
//!   compare, the guard, and its record), so it is linearized there too. The one
//!   exception: a bid on an auction whose closing is recorded. Closing is final, so
//!   `closed` is true forever; only a repeat of an accepted request must still get its
//!   first answer, which a plain `GET` of the record tells.
//!
//! A call cut mid-way has an unknown outcome (the caller answers `outcome_unknown`; a retry
//! with the same request id is answered from the record). `NOSCRIPT` (Redis restarted or
//! `SCRIPT FLUSH`) means the call never ran: the script is loaded again and the job is
//! decided again.

use super::commit::{CallSettings, Commit, NewState, Record, ScriptReply};
use super::core::{Cached, Core};
use super::guard;
use super::wire::{for_requester, WireChange, WireReply};
use super::{map_err, map_write_err, DRAIN_GROUP};
use crate::{AdminAction, BidReply, Cause, EngineError};
use futures::stream::{FuturesOrdered, StreamExt};
use gavel_core::{
    chain, rules, Auction, AuctionId, BidRequest, Change, Event, Millis, Rejection, RequestId,
    Status,
};
use redis::{RedisResult, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Calls per pipeline.
pub(super) const MAX_BATCH: usize = 256;
/// How often one job may be decided again before it is answered `unavailable` (nothing
/// was decided): only an auction changed by other nodes on every single attempt gets there.
const MAX_TRIES: u32 = 32;

/// What to decide.
#[derive(Debug)]
pub(super) enum Op {
    Bid {
        request_id: RequestId,
        req: BidRequest,
        /// Server-generated, used if the bid makes a history entry.
        bid_id: String,
    },
    Admin {
        action: AdminAction,
        by: String,
    },
    Advance,
}

/// What was decided and committed.
#[derive(Debug)]
pub(super) enum Done {
    Bid(BidReply),
    Admin(Result<Auction, Rejection>),
    /// `advance` opened or closed the auction.
    Advanced(Arc<Change>),
    /// `advance` found nothing due; the auction's next deadline, if any.
    Idle {
        next: Option<Millis>,
    },
    /// No such auction.
    Missing,
}

pub(super) struct Job {
    pub id: AuctionId,
    pub op: Op,
    pub tx: oneshot::Sender<Result<Done, EngineError>>,
}

struct Pending {
    job: Job,
    tries: u32,
}

impl Pending {
    fn answer(self, r: Result<Done, EngineError>) {
        let _ = self.job.tx.send(r);
    }
}

/// Waiting work of a shard, oldest first.
enum Work {
    Decide(Pending),
    /// A rejection decided after a refused commit: only its idempotency record is written.
    Record {
        p: Pending,
        key: String,
        json: String,
        reply: Box<BidReply>,
    },
}

/// One call of a batch's pipeline.
// Sizes differ, but each value lives only within one batch: boxing would add an
// allocation per call for nothing.
#[allow(clippy::large_enum_variant)]
enum Step {
    Commit {
        p: Pending,
        commit: Commit,
        /// The auction the decision was made on.
        view: Auction,
        estimate: Millis,
    },
    /// A bid on an auction whose closing is recorded: is there a first answer to repeat?
    Lookup {
        p: Pending,
        key: String,
        auction: Auction,
    },
    Record {
        p: Pending,
        key: String,
        json: String,
        reply: Box<BidReply>,
    },
}

/// What a decision on this node's copy needs.
#[allow(clippy::large_enum_variant)]
enum Plan {
    Answer(Done),
    Lookup {
        key: String,
    },
    Commit {
        commit: Commit,
        /// The state a chained decision may be made on, if it does not depend on the
        /// clock this commit will run at.
        next: Option<Auction>,
    },
}

/// This node's view of an auction while a batch is planned.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum View {
    Known(Cached),
    /// A change planned earlier in the batch whose state depends on its clock.
    Unsettled,
}

/// Runs one shard until every sender is gone.
pub(super) async fn run(core: Arc<Core>, mut rx: mpsc::Receiver<Job>) {
    let mut queue: VecDeque<Work> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv().await {
                Some(job) => queue.push_back(Work::Decide(Pending { job, tries: 0 })),
                None => return,
            }
        }
        while queue.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => queue.push_back(Work::Decide(Pending { job, tries: 0 })),
                Err(_) => break,
            }
        }
        let n = queue.len().min(MAX_BATCH);
        let batch: Vec<Work> = queue.drain(..n).collect();
        let again = run_batch(&core, batch).await;
        for w in again.into_iter().rev() {
            queue.push_front(w);
        }
    }
}

/// Decides, commits and answers one batch; returns the work to do again, in order.
async fn run_batch(core: &Core, batch: Vec<Work>) -> Vec<Work> {
    let batch = load_missing(core, batch).await;
    let mut views: HashMap<AuctionId, View> = HashMap::new();
    let mut steps = Vec::with_capacity(batch.len());
    let mut again = Vec::new();
    for work in batch {
        let p = match work {
            Work::Record {
                p,
                key,
                json,
                reply,
            } => {
                steps.push(Step::Record {
                    p,
                    key,
                    json,
                    reply,
                });
                continue;
            }
            Work::Decide(p) => p,
        };
        let id = p.job.id.clone();
        let view = match views.get(&id).cloned() {
            Some(View::Known(c)) => c,
            // Decided on the next batch, once the change before it has its clock.
            Some(View::Unsettled) => {
                again.push(Work::Decide(p));
                continue;
            }
            None => match core.cached(&id) {
                Some(c) => c,
                // Forgotten between the load and now (cache cleared): next batch.
                None => {
                    retry(p, &mut again);
                    continue;
                }
            },
        };
        let estimate = core.clock.estimate();
        let at = core.clock.propose(view.t);
        match plan(core, &p.job, &view, at) {
            Plan::Answer(done) => p.answer(Ok(done)),
            Plan::Lookup { key } => steps.push(Step::Lookup {
                p,
                key,
                auction: view.auction,
            }),
            Plan::Commit { commit, next } => {
                let chained = match (&commit.change, next) {
                    (None, _) => View::Known(Cached {
                        t: at,
                        ..view.clone()
                    }),
                    (Some(new), Some(auction)) => View::Known(Cached {
                        auction,
                        v: new.version.clone(),
                        t: at,
                    }),
                    (Some(_), None) => View::Unsettled,
                };
                views.insert(id, chained);
                steps.push(Step::Commit {
                    p,
                    commit,
                    view: view.auction,
                    estimate,
                });
            }
        }
    }
    if !steps.is_empty() {
        again.extend(send(core, steps).await);
    }
    again
}

/// Makes sure every auction of the batch has a copy on this node; answers jobs whose
/// auction does not exist or cannot be read.
async fn load_missing(core: &Core, batch: Vec<Work>) -> Vec<Work> {
    let mut missing: Vec<AuctionId> = Vec::new();
    for w in &batch {
        if let Work::Decide(p) = w {
            if core.cached(&p.job.id).is_none() && !missing.contains(&p.job.id) {
                missing.push(p.job.id.clone());
            }
        }
    }
    if missing.is_empty() {
        return batch;
    }
    let loaded = match core.load(&missing).await {
        Ok(l) => l,
        Err(e) => {
            let mut keep = Vec::new();
            for w in batch {
                match w {
                    Work::Decide(p) if missing.contains(&p.job.id) => p.answer(Err(e.clone())),
                    other => keep.push(other),
                }
            }
            return keep;
        }
    };
    let outcome: HashMap<AuctionId, Result<Option<Cached>, EngineError>> =
        missing.into_iter().zip(loaded).collect();
    let mut keep = Vec::with_capacity(batch.len());
    for w in batch {
        match w {
            Work::Decide(p) => match outcome.get(&p.job.id) {
                Some(Ok(None)) => p.answer(Ok(Done::Missing)),
                Some(Err(e)) => {
                    tracing::error!(auction = %p.job.id, error = %e, "cannot read a stored auction");
                    p.answer(Err(e.clone()))
                }
                _ => keep.push(Work::Decide(p)),
            },
            other => keep.push(other),
        }
    }
    keep
}

/// A decision of one job on auction `a` at `at`: the outcome for a bid (with the reply as
/// the requester may see it) or an admin action, and the change, if any.
struct Decided {
    reply: Option<BidReply>,
    admin: Option<Result<(), Rejection>>,
    change: Option<Change>,
}

fn decide(op: &Op, a: &Auction, at: Millis) -> Decided {
    match op {
        Op::Bid { req, .. } => {
            let mut d = rules::place_bid(a, req, at);
            if let Some(c) = d.change.as_mut() {
                chain::seal(a, c, at);
            }
            let after = d.change.as_ref().map_or(a, |c| &c.auction);
            Decided {
                reply: Some(BidReply {
                    outcome: d.outcome,
                    auction: for_requester(after.clone(), &req.bidder.id),
                }),
                admin: None,
                change: d.change,
            }
        }
        Op::Admin { action, by } => {
            let r = match action {
                AdminAction::Cancel => rules::cancel(a, at, by),
                AdminAction::EndEarly => rules::end_early(a, at, by),
            };
            match r {
                Ok(mut c) => Decided {
                    change: Some({
                        chain::seal(a, &mut c, at);
                        c
                    }),
                    reply: None,
                    admin: Some(Ok(())),
                },
                Err(r) => Decided {
                    reply: None,
                    admin: Some(Err(r)),
                    change: None,
                },
            }
        }
        Op::Advance => Decided {
            reply: None,
            admin: None,
            change: rules::open_if_due(a, at)
                .or_else(|| rules::close_if_due(a, at))
                .map(|mut c| {
                    chain::seal(a, &mut c, at);
                    c
                }),
        },
    }
}

/// What is sent for one decision, all as JSON: the change, its history entry and the
/// recorded reply.
struct Texts {
    change: Option<String>,
    entry: Option<String>,
    record: Option<String>,
}

fn texts(job: &Job, d: &Decided, version: &str, at: Millis) -> Texts {
    let (bid, req_id) = match (&job.op, d.change.as_ref().map(|c| &c.event)) {
        (
            Op::Bid {
                request_id, bid_id, ..
            },
            Some(event),
        ) => (
            matches!(event, Event::Bid { .. }).then(|| bid_id.clone()),
            // The archive keys accepted requests by their request id (a bid, or a raise of
            // the leader's own maximum, which changes no price): their stored reply is the
            // first answer once the auction has left Redis. A proxy's counter-bid belongs
            // to the leader, not to this request.
            d.reply
                .as_ref()
                .filter(|r| r.outcome.is_ok())
                .map(|_| request_id.clone()),
        ),
        _ => (None, None),
    };
    Texts {
        change: d
            .change
            .as_ref()
            .map(|c| WireChange::new(c, version, at, bid, req_id).to_json()),
        entry: d.change.as_ref().and_then(|c| match &c.event {
            Event::Bid { entry, .. } => {
                Some(serde_json::to_string(entry).expect("an entry always encodes"))
            }
            _ => None,
        }),
        record: d.reply.as_ref().map(record_json),
    }
}

/// Decides a job on this node's copy `view`, at `at`.
fn plan(core: &Core, job: &Job, view: &Cached, at: Millis) -> Plan {
    let a = &view.auction;
    let key = match &job.op {
        Op::Bid {
            request_id, req, ..
        } => {
            let key = core.keys.request(&job.id, &req.bidder.id, request_id);
            if a.state.closing.is_some() {
                return Plan::Lookup { key };
            }
            Some(key)
        }
        _ => None,
    };
    let d = decide(&job.op, a, at);
    match (&job.op, &d.change, d.admin) {
        (Op::Admin { .. }, None, Some(Err(r))) if a.state.closing.is_some() => {
            return Plan::Answer(Done::Admin(Err(r)))
        }
        (Op::Advance, None, _) => {
            return Plan::Answer(Done::Idle {
                next: deadline_of(a),
            })
        }
        _ => {}
    }
    let mut guard = guard::guard(a, at);
    let version = core.new_version();
    let first = texts(job, &d, &version, at);
    let mut next = d.change.as_ref().map(|c| c.auction.clone());
    let mut marked = false;
    let (mut change, mut entry, mut record) = (first.change, first.entry, first.record);
    if d.change.is_some() {
        // A second instant of the guard shows which numbers move with the clock.
        let other = if at + 1 < guard.1 { at + 1 } else { at - 1 };
        if other >= guard.0 {
            let d2 = decide(&job.op, a, other);
            let second = texts(job, &d2, &version, other);
            let mark = |x: &Option<String>, y: &Option<String>| match (x, y) {
                (Some(x), Some(y)) => guard::template(x, at, y, other).map(Some),
                (None, None) => Ok(None),
                _ => Err(guard::Mismatch("a change at one instant only".into())),
            };
            match (
                mark(&change, &second.change),
                mark(&entry, &second.entry),
                mark(&record, &second.record),
            ) {
                (Ok(c), Ok(e), Ok(r)) => {
                    marked = [&c, &e, &r]
                        .iter()
                        .any(|t| t.as_deref().is_some_and(|t| t.contains('\x01')));
                    (change, entry, record) = (c, e, r);
                    if d2.change.as_ref().map(|c| &c.auction.state)
                        != d.change.as_ref().map(|c| &c.auction.state)
                    {
                        next = None;
                    }
                }
                (c, e, r) => {
                    // The guard missed an instant the rules depend on (a bug: the guard's
                    // tests should have caught it). Commit only at exactly `at`.
                    tracing::error!(auction = %job.id, ?c, ?e, ?r, "decision differs inside its guard");
                    guard = (at, at + 1);
                }
            }
        } else {
            guard = (at, at + 1);
        }
    }
    let commit = Commit {
        expected: view.v.clone(),
        guard,
        change: d.change.as_ref().zip(change).map(|(c, json)| NewState {
            version,
            seq: c.auction.state.seq,
            json,
        }),
        entry,
        last: d
            .change
            .as_ref()
            .is_some_and(|c| c.auction.state.closing.is_some()),
        record: key.zip(record).map(|(key, json)| Record {
            key,
            json,
            replaces: None,
        }),
        spec: None,
        marked,
    };
    Plan::Commit { commit, next }
}

/// What to do with a job whose commit found the auction moved: decided again on the state
/// and clock the script returned. `None` when it was answered.
fn after_move(core: &Core, p: Pending, a: &Auction, clock: Millis) -> Option<Work> {
    let d = decide(&p.job.op, a, clock);
    if d.change.is_some() {
        return Some(Work::Decide(p));
    }
    match &p.job.op {
        Op::Bid {
            request_id, req, ..
        } => {
            let reply = d.reply.expect("a bid decision has a reply");
            if a.state.closing.is_some() {
                // Like the memory engine, a rejection on a closed auction is not remembered.
                p.answer(Ok(Done::Bid(reply)));
                return None;
            }
            let key = core.keys.request(&p.job.id, &req.bidder.id, request_id);
            let json = record_json(&reply);
            Some(Work::Record {
                p,
                key,
                json,
                reply: Box::new(reply),
            })
        }
        Op::Admin { .. } => {
            let r = d.admin.expect("an admin decision has an outcome");
            p.answer(Ok(Done::Admin(r.map(|()| a.clone()))));
            None
        }
        Op::Advance => {
            p.answer(Ok(Done::Idle {
                next: deadline_of(a),
            }));
            None
        }
    }
}

/// The next start or end `advance` acts on.
pub(super) fn deadline_of(a: &Auction) -> Option<Millis> {
    match (a.state.closing.is_some(), a.state.status) {
        (true, _) => None,
        (false, Status::Scheduled) => Some(a.spec.starts_at),
        (false, _) => Some(a.state.ends_at),
    }
}

fn record_json(reply: &BidReply) -> String {
    WireReply {
        outcome: reply.outcome.err(),
        state: reply.auction.state.clone(),
    }
    .to_json()
}

/// Sends a batch's calls and settles each as soon as its own reply arrives; returns the
/// work to redo, in order.
///
/// The calls go out back to back on the node's one multiplexed connection (written
/// together, so Redis still reads them as a pipeline), but each is its own request: the
/// first bid of a batch is answered when its call returns, not when the batch's last call
/// does (no head-of-line blocking behind the rest of the batch). They are issued in batch
/// order, which keeps a chained call behind the call it expects; if one ever overtook its
/// predecessor it would only be refused (versions are unique per change) and decided again.
async fn send(core: &Core, steps: Vec<Step>) -> Vec<Work> {
    let script_now = core.clock.script_now();
    let floor = core.clock.script_floor();
    let settings = CallSettings {
        keys: &core.keys,
        script_now: &script_now,
        floor: &floor,
        ttl_secs: core.config.request_ttl.as_secs(),
        group: DRAIN_GROUP,
        sharded: core.target.is_cluster(),
    };
    metrics::histogram!("gavel_redis_pipeline_calls").record(steps.len() as f64);
    let mut calls = FuturesOrdered::new();
    for step in &steps {
        let mut pipe = redis::pipe();
        match step {
            Step::Commit { p, commit, .. } => {
                let (keys, argv) = commit.args(&p.job.id, &settings);
                pipe.cmd("EVALSHA")
                    .arg(core.commit.get_hash())
                    .arg(keys.len())
                    .arg(keys)
                    .arg(argv);
            }
            Step::Lookup { key, .. } => {
                pipe.cmd("GET").arg(key);
            }
            Step::Record { p, key, json, .. } => {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(json)
                    .arg("NX")
                    .arg("GET")
                    .arg("EX")
                    .arg(settings.ttl_secs.max(1));
                // Named in the auction's record index, as the commit script does, so
                // retirement deletes it too (its reply is ignored: one reply per step).
                let expires = core.clock.estimate() + settings.ttl_secs.max(1) as i64 * 1000;
                pipe.cmd("ZADD")
                    .arg(core.keys.reqs(&p.job.id))
                    .arg(expires)
                    .arg(key)
                    .ignore();
            }
        }
        let mut conn = core.commits.clone();
        calls.push_back(async move {
            let out: RedisResult<Vec<RedisResult<Value>>> =
                pipe.ignore_errors().query_async(&mut conn).await;
            match out {
                Ok(mut replies) if replies.len() == 1 => replies.pop().expect("one reply"),
                Ok(replies) => Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "unexpected reply count",
                    format!("one call answered {} replies", replies.len()),
                ))),
                Err(e) => Err(e),
            }
        });
    }
    let mut again = Vec::new();
    let mut reload = false;
    let mut failed = false;
    let mut steps = steps.into_iter();
    while let Some(reply) = calls.next().await {
        let step = steps.next().expect("one step per call");
        match reply {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                reload = true;
                if let Step::Commit { p, .. } = step {
                    retry(p, &mut again);
                }
            }
            Err(e) => {
                if !failed {
                    failed = true;
                    tracing::warn!(error = %e, "commit call failed");
                }
                fail(core, step, move |write| {
                    if write {
                        map_write_err(e)
                    } else {
                        map_err(e)
                    }
                })
            }
            Ok(v) => settle(core, step, v, &mut again),
        }
    }
    if reload {
        tracing::info!(
            "commit script missing in Redis (restart, failover or SCRIPT FLUSH); loading it again"
        );
        if let Err(e) = core
            .commit
            .prepare_invoke()
            .load_async(&mut core.commits.clone())
            .await
        {
            tracing::warn!(error = %e, "could not load the commit script");
        }
    }
    again
}

/// Queues a job to be decided again, unless it has been tried too often.
fn retry(mut p: Pending, again: &mut Vec<Work>) {
    p.tries += 1;
    if p.tries > MAX_TRIES {
        metrics::counter!("gavel_redis_commit_gave_up_total").increment(1);
        p.answer(Err(EngineError::Unavailable(Cause::msg(
            "the auction kept changing under this decision; nothing was decided",
        ))));
    } else {
        again.push(Work::Decide(p));
    }
}

/// Answers a step whose call failed. `err(true)` for calls that may have written.
fn fail(core: &Core, step: Step, err: impl FnOnce(bool) -> EngineError) {
    match step {
        Step::Commit { p, .. } => {
            // It may have been applied: this node's copy can no longer be trusted.
            core.forget(&p.job.id);
            p.answer(Err(err(true)));
        }
        Step::Record { p, .. } => p.answer(Err(err(true))),
        Step::Lookup { p, .. } => p.answer(Err(err(false))),
    }
}

fn internal(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(Cause::msg(e.to_string()))
}

/// Settles one answered call.
fn settle(core: &Core, step: Step, value: Value, again: &mut Vec<Work>) {
    match step {
        Step::Commit {
            p,
            commit,
            view,
            estimate,
        } => {
            let reply = redis::from_redis_value::<Vec<String>>(value)
                .map_err(internal)
                .and_then(|out| ScriptReply::parse(&out).map_err(internal));
            match reply {
                Ok(r) => settle_commit(core, p, commit, view, estimate, r, again),
                Err(e) => p.answer(Err(e)),
            }
        }
        Step::Lookup { p, auction, .. } => {
            let done = match redis::from_redis_value::<Option<String>>(value) {
                Ok(Some(record)) => repeat(&p.job, &auction, &record, Some(&auction)),
                Ok(None) => Ok(closed_reply(&p.job, &auction)),
                Err(e) => Err(internal(e)),
            };
            p.answer(done);
        }
        Step::Record { p, reply, .. } => {
            let done = match redis::from_redis_value::<Option<String>>(value) {
                Ok(None) => Ok(Done::Bid(*reply)),
                Ok(Some(first)) => repeat(&p.job, &reply.auction, &first, None),
                Err(e) => Err(internal(e)),
            };
            p.answer(done);
        }
    }
}

fn settle_commit(
    core: &Core,
    p: Pending,
    commit: Commit,
    view: Auction,
    estimate: Millis,
    reply: ScriptReply,
    again: &mut Vec<Work>,
) {
    match reply {
        ScriptReply::Committed { clock } => {
            metrics::counter!("gavel_redis_commits_total", "result" => "committed").increment(1);
            core.clock.observe(estimate, clock);
            // The decision at the clock it ran at: the one committed, by the guard.
            let d = decide(&p.job.op, &view, clock);
            if d.change.is_some() != commit.change.is_some() {
                tracing::error!(auction = %p.job.id, clock, guard = ?commit.guard, "a decision changed inside its guard");
            }
            match (&d.change, &commit.change) {
                (Some(c), Some(new)) => core.remember(&c.auction, &new.version, clock),
                _ => core.touch(&p.job.id, clock),
            }
            let done = match p.job.op {
                Op::Bid { .. } => Done::Bid(d.reply.expect("a bid decision has a reply")),
                Op::Admin { .. } => Done::Admin(match (d.admin, d.change) {
                    (Some(Err(r)), _) => Err(r),
                    (_, Some(c)) => Ok(c.auction),
                    _ => Err(Rejection::Closed),
                }),
                Op::Advance => match d.change {
                    Some(c) => Done::Advanced(Arc::new(c)),
                    None => Done::Idle {
                        next: deadline_of(&view),
                    },
                },
            };
            p.answer(Ok(done));
        }
        ScriptReply::Moved {
            version,
            last,
            clock,
        } => {
            metrics::counter!("gavel_redis_commits_total", "result" => "moved").increment(1);
            core.clock.observe(estimate, clock);
            let (Some(version), Some(last)) = (version, last) else {
                core.forget(&p.job.id);
                return p.answer(Ok(Done::Missing));
            };
            let current = Auction {
                id: p.job.id.clone(),
                spec: view.spec.clone(),
                state: last.state,
            };
            core.remember(&current, &version, clock);
            if let Some(w) = after_move(core, p, &current, clock) {
                match w {
                    Work::Decide(p) => retry(p, again),
                    record => again.push(record),
                }
            }
        }
        ScriptReply::Repeat { record, last } => {
            metrics::counter!("gavel_redis_commits_total", "result" => "repeat").increment(1);
            let current = last.map(|l| {
                let a = Auction {
                    id: p.job.id.clone(),
                    spec: view.spec.clone(),
                    state: l.state,
                };
                core.remember(&a, &l.v, l.t);
                a
            });
            let done = repeat(&p.job, &view, &record, current.as_ref());
            p.answer(done);
        }
    }
}

/// The answer to a bid that has an idempotency record: the recorded reply, except that a
/// recorded rejection on an auction whose closing is now recorded is answered `closed`
/// (as the memory engine does: once closed, only acceptances are worth remembering).
fn repeat(
    job: &Job,
    view: &Auction,
    record: &str,
    current: Option<&Auction>,
) -> Result<Done, EngineError> {
    let stored = WireReply::parse(record).map_err(internal)?;
    if stored.outcome.is_some() {
        if let Some(now) = current.filter(|c| c.state.closing.is_some()) {
            return Ok(closed_reply(job, now));
        }
    }
    Ok(Done::Bid(BidReply {
        outcome: stored.outcome(),
        auction: Auction {
            id: view.id.clone(),
            spec: view.spec.clone(),
            state: stored.state,
        },
    }))
}

/// `closed`, with the auction as the requester may see it. Only bids have records, so a
/// job of another kind has nobody to hide a maximum from and gets none.
fn closed_reply(job: &Job, a: &Auction) -> Done {
    let auction = match &job.op {
        Op::Bid { req, .. } => for_requester(a.clone(), &req.bidder.id),
        _ => {
            let mut a = a.clone();
            a.state.leader_max = None;
            a
        }
    };
    Done::Bid(BidReply {
        outcome: Err(Rejection::Closed),
        auction,
    })
}
