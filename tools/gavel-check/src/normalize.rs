//! From records to operations: one auction's history as the checker reasons about it.
//!
//! Bid attempts with the same bidder and request id are one *request*, decided at most once
//! (the server answers repeats with the first decision). A request is placed by its first
//! decision, whichever attempt carried it; it may have been decided from the first send of
//! any attempt that could have carried it. A `closed` answer is different: once an auction
//! has closed the server forgets rejections and decides repeats afresh, so each `closed`
//! answer is a decision of its own (and never a change).

use crate::history::{AdminAction, Answer, Call, History, Record, SnapshotBody};
use crate::report::{Violation, ViolationKind};
use gavel_core::{
    Auction, AuctionId, AuctionSpec, BidRequest, Bidder, BidderId, Currency, IncrementBand,
    IncrementPolicy, Money, SoftClose, Status,
};
use gavel_protocol::{AuctionView, BidHistory, CreateAuction, ErrorCode};
use std::collections::BTreeMap;

/// One answer that carried a decision, with the window it was in flight.
#[derive(Clone, Debug)]
pub struct Answered {
    pub line: usize,
    pub view: AuctionView,
    pub sent: i64,
    pub received: i64,
}

/// A decided bid: the request, its outcome code and every answer that reported it.
#[derive(Clone, Debug)]
pub struct Decision {
    pub req: BidRequest,
    pub request_id: String,
    pub outcome: String,
    pub answers: Vec<Answered>,
}

/// What an operation whose outcome is unknown may have done.
#[derive(Clone, Debug)]
pub enum Effect {
    Bid {
        req: BidRequest,
        request_id: String,
        /// False when a later answer to the same request was `closed`: an accepted request
        /// keeps its answer, so this one was not accepted.
        may_accept: bool,
    },
    Admin(AdminAction),
}

#[derive(Clone, Debug)]
pub enum Kind {
    Create(AuctionView),
    Decision(Decision),
    Unknown(Effect),
    View(AuctionView),
    Snapshot(SnapshotBody),
    Page {
        limit: u32,
        before_seq: Option<u64>,
        page: BidHistory,
    },
    AdminDone(AdminAction, AuctionView),
    /// An admin action answered `closed`: the auction was closed at that moment.
    AdminClosed(AdminAction),
}

/// Whether an operation changed the auction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changes {
    Yes,
    /// An `outbid` answer: a change when a proxy counter-bid answered it.
    Maybe,
    No,
}

/// One operation as the checker sees it.
#[derive(Clone, Debug)]
pub struct Op {
    /// History lines it was made from (several for a retried request).
    pub lines: Vec<usize>,
    pub client: String,
    /// The earliest it may have taken effect (µs).
    pub start: i64,
    /// When its answer was known (µs); `None` when it never was.
    pub end: Option<i64>,
    /// The `seq` its answer reports, if it reports one.
    pub pos: Option<u64>,
    pub kind: Kind,
}

impl Op {
    pub fn changes(&self) -> Changes {
        match &self.kind {
            Kind::Create(_) | Kind::AdminDone(..) => Changes::Yes,
            Kind::Decision(d) if d.outcome == "accepted" => Changes::Yes,
            Kind::Decision(d) if d.outcome == "outbid" => Changes::Maybe,
            _ => Changes::No,
        }
    }

    /// A short description for reports: lines, client and what it did.
    pub fn describe(&self) -> String {
        let lines = match self.lines.as_slice() {
            [one] => format!("line {one}"),
            many => format!(
                "lines {}",
                many.iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let what = match &self.kind {
            Kind::Create(v) => format!("created it at seq {}", v.seq),
            Kind::Decision(d) => format!(
                "{} answered {} at seq {}",
                bid_words(&d.req, &d.request_id),
                d.outcome,
                self.pos.unwrap_or(0)
            ),
            Kind::Unknown(Effect::Bid {
                req, request_id, ..
            }) => format!("{} with no known outcome", bid_words(req, request_id)),
            Kind::Unknown(Effect::Admin(a)) => format!("{a:?} with no known outcome"),
            Kind::View(v) => format!("read the auction at seq {}", v.seq),
            Kind::Snapshot(s) => format!("got a snapshot at seq {}", s.auction.seq),
            Kind::Page {
                limit, before_seq, ..
            } => format!(
                "read a history page (limit {limit}{})",
                before_seq
                    .map(|b| format!(", before seq {b}"))
                    .unwrap_or_default()
            ),
            Kind::AdminDone(a, v) => format!("{a:?} answered at seq {}", v.seq),
            Kind::AdminClosed(a) => format!("{a:?} answered closed"),
        };
        let end = self
            .end
            .map(|e| format!("{:.3} s", e as f64 / 1e6))
            .unwrap_or_else(|| "never".into());
        format!(
            "{lines} ({}; sent {:.3} s, answered {end}): {what}",
            self.client,
            self.start as f64 / 1e6
        )
    }
}

fn bid_words(req: &BidRequest, request_id: &str) -> String {
    let kind = req.kind.as_str();
    let expected = req
        .expected_seq
        .map(|s| format!(", expected seq {s}"))
        .unwrap_or_default();
    format!(
        "{} bid {} of {} ({request_id}{expected})",
        req.bidder.id, kind, req.amount
    )
}

/// One auction's operations, ready to check.
pub struct AuctionOps {
    pub id: String,
    /// The auction as created; `None` when the history lacks a successful creation.
    pub initial: Option<Auction>,
    pub ops: Vec<Op>,
    /// Records that make up the operations (for the report).
    pub records: usize,
    /// Violations found without the model (a request decided twice, `not_found`).
    pub violations: Vec<Violation>,
    /// Why the auction cannot be checked.
    pub note: Option<String>,
}

/// Splits a history per auction and builds each auction's operations.
pub fn by_auction(history: &History) -> Vec<AuctionOps> {
    let mut grouped: BTreeMap<&str, Vec<(usize, &Record)>> = BTreeMap::new();
    for (line, r) in &history.records {
        if let Some(c) = r.call() {
            grouped
                .entry(c.auction.as_str())
                .or_default()
                .push((*line, r));
        }
    }
    grouped
        .into_iter()
        .map(|(id, records)| auction_ops(id, &records))
        .collect()
}

/// One attempt of a request, classified.
enum Attempt<'a> {
    Decided(Box<Answered>, &'a str),
    Unknown,
    /// Nothing was decided (`unavailable`, `rate_limited`, an invalid field, `not_found`).
    Refused,
}

fn auction_ops(id: &str, records: &[(usize, &Record)]) -> AuctionOps {
    let mut out = AuctionOps {
        id: id.to_string(),
        initial: None,
        ops: Vec::new(),
        records: records.len(),
        violations: Vec::new(),
        note: None,
    };
    let op = |lines: Vec<usize>, c: &Call, pos: Option<u64>, kind: Kind| Op {
        lines,
        client: c.client.clone(),
        start: c.sent,
        end: c.received,
        pos,
        kind,
    };
    // Bid attempts by request, in the order they were sent.
    let mut requests: BTreeMap<(&str, &str), Vec<(usize, &crate::history::Bid)>> = BTreeMap::new();
    let mut created_at: Option<i64> = None;
    for &(line, r) in records {
        match r {
            Record::History(_) => {}
            Record::Create(c) => {
                if let Answer::Ok(view) = &c.answer {
                    if out.initial.is_some() {
                        continue;
                    }
                    match initial_auction(id, &c.request, view) {
                        Ok(a) => out.initial = Some(a),
                        Err(e) => out.note = Some(format!("line {line}: {e}")),
                    }
                    created_at = c.call.received;
                    out.ops
                        .push(op(vec![line], &c.call, Some(1), Kind::Create(view.clone())));
                }
            }
            Record::Bid(b) => requests
                .entry((b.bidder.id.as_str(), b.request_id.as_str()))
                .or_default()
                .push((line, b)),
            Record::View(v) => {
                if let Answer::Ok(view) = &v.answer {
                    out.ops.push(op(
                        vec![line],
                        &v.call,
                        Some(view.seq),
                        Kind::View(view.clone()),
                    ));
                }
            }
            Record::Snapshot(s) => {
                if let Answer::Ok(body) = &s.answer {
                    out.ops.push(op(
                        vec![line],
                        &s.call,
                        Some(body.auction.seq),
                        Kind::Snapshot(body.clone()),
                    ));
                }
            }
            Record::HistoryPage(h) => {
                if let Answer::Ok(page) = &h.answer {
                    out.ops.push(op(
                        vec![line],
                        &h.call,
                        None,
                        Kind::Page {
                            limit: h.limit,
                            before_seq: h.before_seq,
                            page: page.clone(),
                        },
                    ));
                }
            }
            Record::Admin(a) => match &a.answer {
                Answer::Ok(view) => out.ops.push(op(
                    vec![line],
                    &a.call,
                    Some(view.seq),
                    Kind::AdminDone(a.action, view.clone()),
                )),
                Answer::Error(e) if e.code == ErrorCode::Closed => {
                    out.ops
                        .push(op(vec![line], &a.call, None, Kind::AdminClosed(a.action)))
                }
                Answer::Error(e) if !unknown_code(e.code) => {}
                _ => {
                    let mut o = op(
                        vec![line],
                        &a.call,
                        None,
                        Kind::Unknown(Effect::Admin(a.action)),
                    );
                    o.end = None;
                    out.ops.push(o);
                }
            },
        }
    }
    if out.initial.is_none() && out.note.is_none() {
        out.note = Some("the history has no successful creation of this auction".into());
    }
    for (_, mut attempts) in requests {
        attempts.sort_by_key(|(line, b)| (b.call.sent, *line));
        request_ops(&mut out, &attempts, created_at);
    }
    out
}

/// Error codes after which the request may have been decided.
fn unknown_code(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::OutcomeUnknown | ErrorCode::Internal)
}

fn request_ops(
    out: &mut AuctionOps,
    attempts: &[(usize, &crate::history::Bid)],
    created_at: Option<i64>,
) {
    let Some(&(first_line, first)) = attempts.first() else {
        return;
    };
    let req = match bid_request(first) {
        Ok(r) => r,
        Err(e) => {
            out.note.get_or_insert(format!("line {first_line}: {e}"));
            return;
        }
    };
    let classified: Vec<(usize, &crate::history::Bid, Attempt)> = attempts
        .iter()
        .map(|&(line, b)| {
            let a = match &b.answer {
                Answer::Ok(r) if r.outcome == "not_found" => {
                    if created_at.is_some_and(|c| c < b.call.sent) {
                        out.violations.push(Violation {
                            auction: out.id.clone(),
                            kind: ViolationKind::NotFound,
                            lines: vec![line],
                            message: format!(
                                "line {line}: a bid sent at {:.3} s was answered not_found, but the auction was created by {:.3} s",
                                b.call.sent as f64 / 1e6,
                                created_at.unwrap_or(0) as f64 / 1e6
                            ),
                        });
                    }
                    Attempt::Refused
                }
                Answer::Ok(r) => match &r.auction {
                    Some(view) => Attempt::Decided(
                        Box::new(Answered {
                            line,
                            view: view.clone(),
                            sent: b.call.sent,
                            received: b.call.received.unwrap_or(b.call.sent),
                        }),
                        r.outcome.as_str(),
                    ),
                    None => Attempt::Unknown,
                },
                Answer::Error(e) if unknown_code(e.code) => Attempt::Unknown,
                Answer::Error(_) => Attempt::Refused,
                Answer::Lost(_) => Attempt::Unknown,
            };
            (line, b, a)
        })
        .collect();
    let client = first.call.client.clone();
    // The first decision: the earliest answer that is not `closed`.
    let mut first_decision: Option<(&str, u64)> = None;
    let mut primary: Vec<Answered> = Vec::new();
    let mut closed_answers = 0;
    let by_receipt = {
        let mut v: Vec<&(usize, &crate::history::Bid, Attempt)> = classified.iter().collect();
        v.sort_by_key(|(line, b, _)| (b.call.received.unwrap_or(i64::MAX), *line));
        v
    };
    for (line, b, a) in by_receipt {
        let Attempt::Decided(answered, outcome) = a else {
            continue;
        };
        if *outcome == "closed" {
            closed_answers += 1;
            if let Some(("accepted", seq)) = first_decision {
                out.violations.push(Violation {
                    auction: out.id.clone(),
                    kind: ViolationKind::DecidedTwice,
                    lines: primary.iter().map(|p| p.line).chain([*line]).collect(),
                    message: format!(
                        "request {} of {} was answered accepted at seq {seq} (line {}), then closed at seq {} (line {line}): an accepted request must keep its answer",
                        b.request_id, b.bidder.id, primary[0].line, answered.view.seq
                    ),
                });
            }
            let decided = Decision {
                req: req.clone(),
                request_id: b.request_id.clone(),
                outcome: "closed".into(),
                answers: vec![(**answered).clone()],
            };
            out.ops.push(Op {
                lines: vec![*line],
                client: b.call.client.clone(),
                start: b.call.sent,
                end: Some(answered.received),
                pos: Some(answered.view.seq),
                kind: Kind::Decision(decided),
            });
            continue;
        }
        match first_decision {
            None => {
                first_decision = Some((outcome, answered.view.seq));
                primary.push((**answered).clone());
            }
            Some((o, seq)) if o == *outcome && seq == answered.view.seq => {
                primary.push((**answered).clone())
            }
            Some((o, seq)) => out.violations.push(Violation {
                auction: out.id.clone(),
                kind: ViolationKind::DecidedTwice,
                lines: vec![primary[0].line, *line],
                message: format!(
                    "request {} of {} was decided twice: {o} at seq {seq} (line {}) and {outcome} at seq {} (line {line})",
                    b.request_id, b.bidder.id, primary[0].line, answered.view.seq
                ),
            }),
        }
    }
    let unknown_sent: Vec<i64> = classified
        .iter()
        .filter(|(_, _, a)| matches!(a, Attempt::Unknown))
        .map(|(_, b, _)| b.call.sent)
        .collect();
    match first_decision {
        Some((outcome, seq)) => {
            let decided_end = primary.iter().map(|p| p.received).min().unwrap_or(0);
            // Any attempt that carried this decision, or whose answer was lost, may have
            // been the one that made it.
            let start = primary
                .iter()
                .map(|p| p.sent)
                .chain(unknown_sent.iter().copied())
                .min()
                .unwrap_or(decided_end);
            let mut lines: Vec<usize> = primary.iter().map(|p| p.line).collect();
            lines.sort_unstable();
            out.ops.push(Op {
                lines,
                client,
                start,
                end: Some(decided_end),
                pos: Some(seq),
                kind: Kind::Decision(Decision {
                    req,
                    request_id: first.request_id.clone(),
                    outcome: outcome.to_string(),
                    answers: primary,
                }),
            });
        }
        None if !unknown_sent.is_empty() => out.ops.push(Op {
            lines: classified
                .iter()
                .filter(|(_, _, a)| matches!(a, Attempt::Unknown))
                .map(|(l, _, _)| *l)
                .collect(),
            client,
            start: unknown_sent.iter().copied().min().unwrap_or(0),
            end: None,
            pos: None,
            kind: Kind::Unknown(Effect::Bid {
                req,
                request_id: first.request_id.clone(),
                may_accept: closed_answers == 0,
            }),
        }),
        None => {}
    }
}

fn bid_request(b: &crate::history::Bid) -> Result<BidRequest, String> {
    Ok(BidRequest {
        bidder: Bidder {
            id: BidderId::parse(&b.bidder.id).map_err(|e| e.to_string())?,
            name: b.bidder.name.as_str().into(),
        },
        amount: Money::new(b.amount).map_err(|e| e.to_string())?,
        kind: b.kind,
        expected_seq: b.expected_seq,
    })
}

/// The auction as created: settings from the creation's answer (and the reserve, which no
/// answer shows, from its request).
fn initial_auction(id: &str, req: &CreateAuction, view: &AuctionView) -> Result<Auction, String> {
    let money = |what: &str, v: i64| Money::new(v).map_err(|e| format!("{what}: {e}"));
    let increment = match &view.increment_table {
        Some(bands) => IncrementPolicy::Table {
            bands: bands
                .iter()
                .map(|b| {
                    Ok(IncrementBand {
                        from: b.from,
                        increment: money("increment", b.increment)?,
                    })
                })
                .collect::<Result<_, String>>()?,
        },
        None => IncrementPolicy::Fixed {
            amount: money("increment", view.increment)?,
        },
    };
    let reserve = match &req.reserve {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(money(
            "reserve",
            v.as_i64().ok_or("the reserve is not an integer")?,
        )?),
    };
    let spec = AuctionSpec {
        title: view.title.clone(),
        description: view.description.clone(),
        currency: Currency::parse(&view.currency).map_err(|e| e.to_string())?,
        category: None,
        starting_price: money("starting_price", view.starting_price)?,
        increment,
        starts_at: view.starts_at,
        ends_at: view.original_ends_at,
        reserve,
        buy_now: view.buy_now.map(|b| money("buy_now", b)).transpose()?,
        soft_close: view.soft_close.as_ref().map(|s| SoftClose {
            window_ms: s.window_ms,
            extend_ms: s.extend_ms,
            max_extension_ms: s.max_extension_ms,
        }),
    };
    let mut a = Auction::new(AuctionId::parse(id).map_err(|e| e.to_string())?, spec)
        .map_err(|e| format!("the created auction's settings: {e}"))?;
    if view.status != "scheduled" {
        a.state.status = Status::Open;
    }
    Ok(a)
}
