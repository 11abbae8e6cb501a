//! Decide in Rust, commit in one script: the node's committer shards.
//!
//! Every operation that can change an auction (a bid, `advance`, an admin action) is a
//! [`Job`] sent to the shard that owns the auction (by hash of its id). A shard is one task
//! with at most one pipeline in flight. It takes every job waiting (up to [`MAX_BATCH`]),
//! decides each with `gavel_core::rules` on this node's copy of the auction, at the time it
//! proposes for the commit (see `authority.rs`), and sends the batch as one pipeline of
//! `EVALSHA commit.lua` calls. Decisions on one auction within a batch are chained: the
//! second is decided on the state the first one writes and expects its `seq`, so a hot
//! auction still takes one round trip per batch, not per bid.
//!
//! Each call either commits (state, log entry, history entry, idempotency record and
//! publish, in one step), or finds that something moved and returns the current state and
//! the auction's clock: the job is decided again on that. What the second decision may
//! claim without another compare (see `docs/distributed.md`, "What an answer may claim"):
//!
//! - A **rejection** decided on the state a refusal returned, at the clock it returned, is
//!   linearized at that refused call: the state was current and the clock was the
//!   authority's (the script keeps the clock it saw, so Redis `TIME` stepping back cannot
//!   undo it). It needs no state write; only its idempotency record is written, with a
//!   plain `SET NX GET` (a concurrent copy of the same request that got there first wins,
//!   and both copies are answered with the first reply).
//! - Anything that **changes** the auction is proposed again in the next batch, against the
//!   fresh state, at a fresh time.
//! - A rejection decided on this node's copy (first attempt) is **not** trusted: the copy
//!   may be behind. It goes through the commit script like a change (an empty change: the
//!   compare and the time check, and its record), so it is linearized there too. The one
//!   exception: a bid on an auction whose closing is recorded. Closing is final, so
//!   `closed` is true forever; only a repeat of an accepted request must still get its
//!   first answer, which a plain `GET` of the record tells.
//!
//! A call cut mid-way has an unknown outcome (the caller answers `outcome_unknown`; a retry
//! with the same request id is answered from the record). `NOSCRIPT` (Redis restarted or
//! `SCRIPT FLUSH`) means the call never ran: the script is loaded again and the job is
//! decided again.

use super::commit::{CallSettings, Commit, Record, ScriptReply};
use super::core::{Cached, Core};
use super::wire::{for_requester, WireChange, WireReply};
use super::{map_err, map_write_err, DRAIN_GROUP};
use crate::{AdminAction, BidReply, Cause, EngineError};
use gavel_core::{
    rules, Auction, AuctionId, BidRequest, Change, Event, Millis, Rejection, RequestId, Status,
};
use redis::{RedisResult, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
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
enum Step {
    Commit {
        p: Pending,
        commit: Commit,
        answer: Done,
        change: Option<Arc<Change>>,
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
enum Plan {
    Answer(Done),
    Lookup {
        key: String,
    },
    Commit {
        commit: Commit,
        answer: Done,
        change: Option<Arc<Change>>,
    },
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
    let mut views: HashMap<AuctionId, Cached> = HashMap::new();
    let mut steps = Vec::with_capacity(batch.len());
    let mut again = Vec::new();
    for work in batch {
        match work {
            Work::Record {
                p,
                key,
                json,
                reply,
            } => steps.push(Step::Record {
                p,
                key,
                json,
                reply,
            }),
            Work::Decide(p) => {
                let id = p.job.id.clone();
                let Some(view) = views.get(&id).cloned().or_else(|| core.cached(&id)) else {
                    // Forgotten between the load and now (cache cleared): next batch.
                    retry(p, &mut again);
                    continue;
                };
                let estimate = core.clock.estimate();
                let at = core.clock.propose(view.t);
                match plan(core, &p.job, &view.auction, at) {
                    Plan::Answer(done) => p.answer(Ok(done)),
                    Plan::Lookup { key } => steps.push(Step::Lookup {
                        p,
                        key,
                        auction: view.auction,
                    }),
                    Plan::Commit {
                        commit,
                        answer,
                        change,
                    } => {
                        let next = Cached {
                            auction: change.as_ref().map_or(view.auction, |c| c.auction.clone()),
                            t: at,
                        };
                        views.insert(id, next);
                        steps.push(Step::Commit {
                            p,
                            commit,
                            answer,
                            change,
                            estimate,
                        });
                    }
                }
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

/// Decides a job on this node's copy `a`, at `at`.
fn plan(core: &Core, job: &Job, a: &Auction, at: Millis) -> Plan {
    match &job.op {
        Op::Bid {
            request_id,
            req,
            bid_id,
        } => {
            let key = core.keys.request(&job.id, &req.bidder.id, request_id);
            if a.state.closing.is_some() {
                return Plan::Lookup { key };
            }
            let decision = rules::place_bid(a, req, at);
            let after = decision.change.as_ref().map_or(a, |c| &c.auction);
            let reply = BidReply {
                outcome: decision.outcome,
                auction: for_requester(after.clone(), &req.bidder.id),
            };
            let record = Record {
                key,
                json: record_json(&reply),
                replaces: None,
            };
            let change = decision.change.map(Arc::new);
            let (bid, req_id) = match change.as_deref().map(|c| &c.event) {
                Some(Event::Bid { .. }) => (
                    Some(bid_id.clone()),
                    // The archive keys accepted bids by their request id; a proxy's
                    // counter-bid belongs to the leader, not to this request.
                    reply.outcome.is_ok().then(|| request_id.clone()),
                ),
                _ => (None, None),
            };
            let mut commit = commit_of(a, at, change.as_deref(), bid, req_id);
            commit.record = Some(record);
            Plan::Commit {
                commit,
                answer: Done::Bid(reply),
                change,
            }
        }
        Op::Admin { action, by } => match admin(a, *action, at, by) {
            Err(r) if a.state.closing.is_some() => Plan::Answer(Done::Admin(Err(r))),
            Err(r) => Plan::Commit {
                commit: commit_of(a, at, None, None, None),
                answer: Done::Admin(Err(r)),
                change: None,
            },
            Ok(c) => {
                let c = Arc::new(c);
                Plan::Commit {
                    commit: commit_of(a, at, Some(&c), None, None),
                    answer: Done::Admin(Ok(c.auction.clone())),
                    change: Some(c),
                }
            }
        },
        Op::Advance => match transition(a, at) {
            None => Plan::Answer(Done::Idle {
                next: deadline_of(a),
            }),
            Some(c) => {
                let c = Arc::new(c);
                Plan::Commit {
                    commit: commit_of(a, at, Some(&c), None, None),
                    answer: Done::Advanced(c.clone()),
                    change: Some(c),
                }
            }
        },
    }
}

/// What to do with a job whose commit found the auction moved: decided again on the state
/// and clock the script returned. `None` when it must be proposed again.
fn after_move(core: &Core, p: Pending, a: &Auction, clock: Millis) -> Option<Work> {
    let again = |p: Pending| Some(Work::Decide(p));
    match &p.job.op {
        Op::Bid {
            request_id, req, ..
        } => {
            let decision = rules::place_bid(a, req, clock);
            if decision.change.is_some() {
                return again(p);
            }
            let reply = BidReply {
                outcome: decision.outcome,
                auction: for_requester(a.clone(), &req.bidder.id),
            };
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
        Op::Admin { action, by } => match admin(a, *action, clock, by) {
            Err(r) => {
                p.answer(Ok(Done::Admin(Err(r))));
                None
            }
            Ok(_) => again(p),
        },
        Op::Advance => match transition(a, clock) {
            None => {
                p.answer(Ok(Done::Idle {
                    next: deadline_of(a),
                }));
                None
            }
            Some(_) => again(p),
        },
    }
}

fn admin(a: &Auction, action: AdminAction, at: Millis, by: &str) -> Result<Change, Rejection> {
    match action {
        AdminAction::Cancel => rules::cancel(a, at, by),
        AdminAction::EndEarly => rules::end_early(a, at, by),
    }
}

fn transition(a: &Auction, at: Millis) -> Option<Change> {
    rules::open_if_due(a, at).or_else(|| rules::close_if_due(a, at))
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

/// The commit of a decision on `a` at `at` (no change: only the compare and the clock).
pub(super) fn commit_of(
    a: &Auction,
    at: Millis,
    change: Option<&Change>,
    bid: Option<String>,
    req: Option<RequestId>,
) -> Commit {
    let mut commit = Commit {
        expected_seq: a.state.seq,
        at,
        ..Commit::default()
    };
    if let Some(c) = change {
        let wire = WireChange::new(c, at, bid, req);
        commit.change = Some((c.auction.state.seq, wire.to_json()));
        if let Event::Bid { entry, .. } = &c.event {
            commit.entry = Some(serde_json::to_string(entry).expect("an entry always encodes"));
        }
        commit.last = c.auction.state.closing.is_some();
    }
    commit
}

/// Sends a batch's calls as one pipeline and settles each; returns the work to redo.
async fn send(core: &Core, steps: Vec<Step>) -> Vec<Work> {
    let settings = CallSettings {
        keys: &core.keys,
        script_now: &core.clock.script_now(),
        max_lead: core.clock.max_lead,
        ttl_secs: core.config.request_ttl.as_secs(),
        group: DRAIN_GROUP,
    };
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for step in &steps {
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
            Step::Record { key, json, .. } => {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(json)
                    .arg("NX")
                    .arg("GET")
                    .arg("EX")
                    .arg(settings.ttl_secs.max(1));
            }
        }
    }
    metrics::histogram!("gavel_redis_pipeline_calls").record(steps.len() as f64);
    let replies: RedisResult<Vec<RedisResult<Value>>> =
        pipe.query_async(&mut core.commits.clone()).await;
    let replies = match replies {
        Ok(r) if r.len() == steps.len() => r,
        Ok(r) => {
            let e = EngineError::Internal(Cause::msg(format!(
                "pipeline of {} calls answered {}",
                steps.len(),
                r.len()
            )));
            for step in steps {
                fail(core, step, |_| e.clone());
            }
            return Vec::new();
        }
        Err(e) => {
            tracing::warn!(error = %e, calls = steps.len(), "commit pipeline failed");
            for step in steps {
                let e = e.clone();
                fail(core, step, move |write| {
                    if write {
                        map_write_err(e)
                    } else {
                        map_err(e)
                    }
                });
            }
            return Vec::new();
        }
    };
    let mut again = Vec::new();
    let mut reload = false;
    for (step, reply) in steps.into_iter().zip(replies) {
        match reply {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                reload = true;
                if let Step::Commit { p, .. } = step {
                    retry(p, &mut again);
                }
            }
            Err(e) => fail(core, step, move |write| {
                if write {
                    map_write_err(e)
                } else {
                    map_err(e)
                }
            }),
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
            answer,
            change,
            estimate,
        } => {
            let out: Vec<String> = match redis::from_redis_value(value) {
                Ok(out) => out,
                Err(e) => return p.answer(Err(internal(e))),
            };
            let reply = match ScriptReply::parse(&out) {
                Ok(r) => r,
                Err(e) => return p.answer(Err(internal(e))),
            };
            match reply {
                ScriptReply::Committed { time } => {
                    metrics::counter!("gavel_redis_commits_total", "result" => "committed")
                        .increment(1);
                    core.clock.observe(estimate, time);
                    match &change {
                        Some(c) => core.remember(&c.auction, commit.at),
                        None => {
                            if let Some(mut cached) = core.cached(&p.job.id) {
                                cached.t = commit.at;
                                core.remember(&cached.auction, commit.at);
                            }
                        }
                    }
                    p.answer(Ok(answer));
                }
                ScriptReply::Moved {
                    seq,
                    last,
                    clock,
                    time,
                } => {
                    metrics::counter!("gavel_redis_commits_total", "result" => "moved")
                        .increment(1);
                    core.clock.observe(estimate, time);
                    if commit.at > clock + core.clock.max_lead {
                        // This node's estimate ran too far ahead (Redis TIME stepped back?).
                        core.clock.reset(Instant::now(), time);
                    }
                    let (Some(_), Some(last)) = (seq, last) else {
                        core.forget(&p.job.id);
                        return p.answer(Ok(Done::Missing));
                    };
                    let Some(view) = core.cached(&p.job.id) else {
                        return retry(p, again);
                    };
                    let current = Auction {
                        id: p.job.id.clone(),
                        spec: view.auction.spec.clone(),
                        state: last.state,
                    };
                    core.remember(&current, clock);
                    if let Some(w) = after_move(core, p, &current, clock) {
                        match w {
                            Work::Decide(p) => retry(p, again),
                            record => again.push(record),
                        }
                    }
                }
                ScriptReply::Repeat { record, last } => {
                    metrics::counter!("gavel_redis_commits_total", "result" => "repeat")
                        .increment(1);
                    let Some(view) = core.cached(&p.job.id) else {
                        return retry(p, again);
                    };
                    let current = last.map(|l| Auction {
                        id: p.job.id.clone(),
                        spec: view.auction.spec.clone(),
                        state: l.state,
                    });
                    if let Some(c) = &current {
                        core.remember(c, 0);
                    }
                    let done = repeat(&p.job, &view.auction, &record, current.as_ref());
                    p.answer(done);
                }
            }
        }
        Step::Lookup { p, auction, .. } => {
            let record: Option<String> = match redis::from_redis_value(value) {
                Ok(r) => r,
                Err(e) => return p.answer(Err(internal(e))),
            };
            let done = match record {
                Some(record) => repeat(&p.job, &auction, &record, Some(&auction)),
                None => Ok(closed_reply(&p.job, &auction)),
            };
            p.answer(done);
        }
        Step::Record { p, reply, .. } => {
            let first: Option<String> = match redis::from_redis_value(value) {
                Ok(r) => r,
                Err(e) => return p.answer(Err(internal(e))),
            };
            match first {
                None => p.answer(Ok(Done::Bid(*reply))),
                Some(first) => {
                    let current = reply.auction.clone();
                    let done = repeat(&p.job, &current, &first, None);
                    p.answer(done);
                }
            }
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
