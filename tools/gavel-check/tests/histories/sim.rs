//! Hand-made histories: a reference auction (the rules plus the views a correct server
//! would show) and a builder that writes the records a client would have recorded, at
//! times the test chooses.

use gavel_check::history::{
    Admin, AdminAction, Answer, Bid, Call, Create, Header, HistoryPage, Record, Snapshot,
    SnapshotBody, Via, View, FORMAT,
};
use gavel_check::{History, Options, Report};
use gavel_core::{
    buy_now_available, rules, Auction, AuctionId, AuctionSpec, BidEntry, BidKind, BidRequest,
    Bidder, BidderId, Currency, IncrementPolicy, Money, SoftClose, Status,
};
use gavel_protocol::{
    AuctionView, BidHistory, BidResult, BidView, ClosingView, CreateAuction, ErrorDetail,
    SoftCloseView, UserRef,
};

/// Server time zero of every test (ms).
pub const T0: i64 = 1_700_000_000_000;
pub const AUCTION: &str = "lot-1";

pub fn bidder(who: &str) -> Bidder {
    Bidder {
        id: BidderId::parse(format!("u-{who}")).unwrap(),
        name: who.into(),
    }
}

fn user(b: &Bidder) -> UserRef {
    UserRef {
        id: b.id.to_string(),
        name: b.name.to_string(),
    }
}

/// Settings for a test auction: open since 1 s before `T0`, ends 60 s after it, 1000
/// start, 100 increment.
pub fn spec() -> AuctionSpec {
    AuctionSpec {
        title: "Lot".into(),
        description: String::new(),
        currency: Currency::parse("USD").unwrap(),
        category: None,
        starting_price: Money::new(1000).unwrap(),
        increment: IncrementPolicy::Fixed {
            amount: Money::new(100).unwrap(),
        },
        starts_at: T0 - 1_000,
        ends_at: T0 + 60_000,
        reserve: None,
        buy_now: None,
        soft_close: None,
    }
}

pub fn soft_close(window_ms: i64, extend_ms: i64) -> Option<SoftClose> {
    Some(SoftClose {
        window_ms,
        extend_ms,
        max_extension_ms: None,
    })
}

/// The view a correct server shows of `a` at `now` to `viewer`.
pub fn view_of(a: &Auction, now: i64, viewer: Option<&str>) -> AuctionView {
    let s = &a.state;
    let status = a.status_at(now);
    AuctionView {
        id: a.id.to_string(),
        title: a.spec.title.clone(),
        description: a.spec.description.clone(),
        category: a.spec.category.clone(),
        currency: a.spec.currency.to_string(),
        starting_price: a.spec.starting_price.minor_units(),
        increment: a.increment().minor_units(),
        increment_table: None,
        starts_at: a.spec.starts_at,
        ends_at: s.ends_at,
        original_ends_at: a.spec.ends_at,
        status: status.as_str().into(),
        price: s.price.map(|p| p.minor_units()),
        leader: s.leader.as_ref().map(user),
        bid_count: s.bid_count,
        seq: s.seq,
        min_bid: a.min_bid().minor_units(),
        has_reserve: a.spec.reserve.is_some(),
        reserve_met: a.reserve_met(),
        buy_now: a.spec.buy_now.map(|b| b.minor_units()),
        buy_now_available: status == Status::Open && buy_now_available(a),
        soft_close: a.spec.soft_close.map(|sc| SoftCloseView {
            window_ms: sc.window_ms,
            extend_ms: sc.extend_ms,
            max_extension_ms: sc.max_extension_ms,
        }),
        closing: s.closing.as_ref().map(|c| ClosingView {
            reason: c.reason.as_str().into(),
            closed_at: c.closed_at,
            winner: c.winner.as_ref().map(user),
            final_price: c.final_price.map(|p| p.minor_units()),
        }),
        your_max: match (&s.leader, s.leader_max, viewer) {
            (Some(l), Some(m), Some(v)) if l.id.as_str() == v => Some(m.minor_units()),
            _ => None,
        },
        log_hash: None,
    }
}

fn entry_view(e: &BidEntry) -> BidView {
    BidView {
        seq: e.seq,
        bidder: user(&e.bidder),
        amount: e.amount.minor_units(),
        kind: e.kind.as_str().into(),
        at: e.at,
    }
}

/// A correct authority for one auction.
#[derive(Clone)]
pub struct Sim {
    pub a: Auction,
    pub entries: Vec<BidEntry>,
}

impl Sim {
    /// The auction as created at `T0 − 10`.
    pub fn new(spec: AuctionSpec) -> Sim {
        Sim {
            a: Auction::new_at(AuctionId::parse(AUCTION).unwrap(), spec, T0 - 10).unwrap(),
            entries: Vec::new(),
        }
    }

    /// Decides a bid at `now` and answers it as the server would (view at `now`).
    pub fn bid(
        &mut self,
        who: &str,
        amount: i64,
        kind: BidKind,
        expected_seq: Option<u64>,
        now: i64,
        rid: &str,
    ) -> BidResult {
        let b = bidder(who);
        let req = BidRequest {
            bidder: b.clone(),
            amount: Money::new(amount).unwrap(),
            kind,
            expected_seq,
        };
        let d = rules::place_bid(&self.a, &req, now);
        if let Some(c) = d.change {
            if let gavel_core::Event::Bid { entry, .. } = &c.event {
                self.entries.push(entry.clone());
            }
            self.a = c.auction;
        }
        BidResult {
            request_id: rid.into(),
            auction_id: AUCTION.into(),
            outcome: match d.outcome {
                Ok(()) => "accepted".into(),
                Err(r) => r.code().into(),
            },
            message: String::new(),
            auction: Some(view_of(&self.a, now, Some(b.id.as_str()))),
            state: None,
            receipt: None,
        }
    }

    /// Opens or closes by the clock at `now`, if due.
    pub fn tick(&mut self, now: i64) -> bool {
        match rules::open_if_due(&self.a, now).or_else(|| rules::close_if_due(&self.a, now)) {
            Some(c) => {
                self.a = c.auction;
                true
            }
            None => false,
        }
    }

    pub fn admin(&mut self, action: AdminAction, now: i64) -> Answer<AuctionView> {
        let r = match action {
            AdminAction::Cancel => rules::cancel(&self.a, now, "admin"),
            AdminAction::EndEarly => rules::end_early(&self.a, now, "admin"),
        };
        match r {
            Ok(c) => {
                self.a = c.auction;
                Answer::Ok(view_of(&self.a, now, None))
            }
            Err(r) => Answer::Error(ErrorDetail {
                code: r.code().parse().unwrap(),
                message: String::new(),
            }),
        }
    }

    pub fn view(&self, now: i64) -> AuctionView {
        view_of(&self.a, now, None)
    }

    pub fn page(&self, limit: u32, before_seq: Option<u64>) -> BidHistory {
        let older: Vec<&BidEntry> = self
            .entries
            .iter()
            .rev()
            .filter(|e| before_seq.is_none_or(|b| e.seq < b))
            .collect();
        let bids: Vec<BidView> = older
            .iter()
            .take(limit as usize)
            .map(|e| entry_view(e))
            .collect();
        BidHistory {
            next_before_seq: (older.len() > limit as usize).then(|| bids.last().unwrap().seq),
            bids,
        }
    }

    pub fn snapshot(&self, now: i64) -> SnapshotBody {
        SnapshotBody {
            auction: view_of(&self.a, now, None),
            server_time: now,
            recent_bids: self.entries.iter().rev().take(20).map(entry_view).collect(),
        }
    }
}

/// Records written as a client would, times in ms after `T0`.
pub struct Log {
    pub records: Vec<Record>,
}

fn call(client: &str, via: Via, sent_ms: i64, received_ms: Option<i64>) -> Call {
    Call {
        auction: AUCTION.into(),
        client: client.into(),
        via,
        node: None,
        sent: (T0 + sent_ms) * 1000,
        received: received_ms.map(|r| (T0 + r) * 1000),
    }
}

pub fn error(code: &str) -> Answer<BidResult> {
    Answer::Error(ErrorDetail {
        code: code.parse().unwrap(),
        message: String::new(),
    })
}

pub fn lost() -> Answer<BidResult> {
    Answer::Lost("no answer within 5 s".into())
}

impl Log {
    /// A log whose first operation creates the auction (sent at −10 ms, answered at −5).
    pub fn new(sim: &Sim) -> Log {
        let view = view_of(&sim.a, T0 - 5, None);
        Log {
            records: vec![Record::Create(Create {
                call: call("admin", Via::Http, -10, Some(-5)),
                request: CreateAuction {
                    id: Some(AUCTION.into()),
                    title: view.title.clone(),
                    starting_price: view.starting_price.into(),
                    reserve: sim.a.spec.reserve.map(|r| r.minor_units().into()),
                    ..CreateAuction::default()
                },
                answer: Answer::Ok(view),
            })],
        }
    }

    /// The line number the next record gets.
    pub fn next_line(&self) -> usize {
        self.records.len() + 2
    }

    #[allow(clippy::too_many_arguments)]
    pub fn bid(
        &mut self,
        who: &str,
        rid: &str,
        amount: i64,
        kind: BidKind,
        expected_seq: Option<u64>,
        via: Via,
        sent_ms: i64,
        received_ms: Option<i64>,
        answer: Answer<BidResult>,
    ) -> usize {
        let line = self.next_line();
        self.records.push(Record::Bid(Bid {
            call: call(who, via, sent_ms, received_ms),
            bidder: user(&bidder(who)),
            request_id: rid.into(),
            amount,
            kind,
            expected_seq,
            answer,
        }));
        line
    }

    /// A plain bid over HTTP answered with `result`.
    pub fn plain(
        &mut self,
        who: &str,
        rid: &str,
        amount: i64,
        sent_ms: i64,
        received_ms: i64,
        result: BidResult,
    ) -> usize {
        self.bid(
            who,
            rid,
            amount,
            BidKind::Plain,
            None,
            Via::Http,
            sent_ms,
            Some(received_ms),
            Answer::Ok(result),
        )
    }

    pub fn view(
        &mut self,
        client: &str,
        sent_ms: i64,
        received_ms: i64,
        view: AuctionView,
    ) -> usize {
        let line = self.next_line();
        self.records.push(Record::View(View {
            call: call(client, Via::Http, sent_ms, Some(received_ms)),
            answer: Answer::Ok(view),
        }));
        line
    }

    pub fn snapshot(
        &mut self,
        client: &str,
        sent_ms: i64,
        received_ms: i64,
        body: SnapshotBody,
    ) -> usize {
        let line = self.next_line();
        self.records.push(Record::Snapshot(Snapshot {
            call: call(client, Via::Ws, sent_ms, Some(received_ms)),
            answer: Answer::Ok(body),
        }));
        line
    }

    pub fn page(
        &mut self,
        client: &str,
        sent_ms: i64,
        received_ms: i64,
        limit: u32,
        before_seq: Option<u64>,
        page: BidHistory,
    ) -> usize {
        let line = self.next_line();
        self.records.push(Record::HistoryPage(HistoryPage {
            call: call(client, Via::Http, sent_ms, Some(received_ms)),
            limit,
            before_seq,
            answer: Answer::Ok(page),
        }));
        line
    }

    pub fn admin(
        &mut self,
        action: AdminAction,
        sent_ms: i64,
        received_ms: i64,
        answer: Answer<AuctionView>,
    ) -> usize {
        let line = self.next_line();
        self.records.push(Record::Admin(Admin {
            call: call("admin", Via::Http, sent_ms, Some(received_ms)),
            action,
            answer,
        }));
        line
    }

    /// Writes the history out as JSON Lines, reads it back and checks it.
    pub fn check(&self) -> Report {
        self.check_with(false)
    }

    /// [`Log::check`], saying whether admin actions may be missing from the history.
    pub fn check_with(&self, unrecorded_admin: bool) -> Report {
        let history = History::from_records(
            Header {
                format: FORMAT,
                clock_skew_ms: 0,
                unrecorded_admin,
                source: Some("hand-made".into()),
            },
            self.records.clone(),
        );
        let text = history.to_jsonl();
        let parsed = History::parse(&text).expect("the history reads back");
        gavel_check::check(&parsed, Options::default())
    }
}
