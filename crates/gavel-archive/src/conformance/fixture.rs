//! Realistic archive changes, made by the real rules of `gavel-core`.

use crate::ArchivedChange;
use gavel_core::{
    cancel, close_if_due, end_early, open_if_due, place_bid, Auction, AuctionId, AuctionSpec,
    BidKind, BidRequest, Bidder, BidderId, Change, Currency, IncrementPolicy, Millis, Money,
    RequestId,
};
use std::sync::atomic::{AtomicU64, Ordering};

const START: Millis = 1_700_000_000_000;
const DAY: Millis = 86_400_000;
const BIDDERS: [&str; 2] = ["alice", "bob"];

/// One auction and the clock it is driven by. Each method applies one rule, returns
/// the change as the engine would archive it, and keeps the new state.
pub struct Fixture {
    auction: Auction,
    now: Millis,
    requests: u64,
}

/// An auction id unique in this process and across runs sharing one database.
fn unique_id(name: &str) -> AuctionId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
    AuctionId::parse(format!("{name}-{}-{nanos}-{n}", std::process::id()))
        .expect("a valid auction id")
}

fn money(v: i64) -> Money {
    Money::new(v).expect("a valid amount")
}

fn bidder(id: &str) -> Bidder {
    Bidder {
        id: BidderId::parse(id).expect("a valid bidder id"),
        name: format!("{id} (display name)").into(),
    }
}

impl Fixture {
    pub fn new(name: &str) -> Self {
        let spec = AuctionSpec {
            title: format!("Conformance lot {name}"),
            description: "Made by the archive conformance suite.".into(),
            currency: Currency::parse("USD").expect("USD"),
            category: None,
            starting_price: money(1_000),
            increment: IncrementPolicy::Fixed { amount: money(50) },
            starts_at: START,
            ends_at: START + 30 * DAY,
            reserve: None,
            buy_now: Some(money(500_000)),
            soft_close: None,
        };
        let auction = Auction::new(unique_id(name), spec).expect("a valid spec");
        Fixture {
            auction,
            now: START,
            requests: 0,
        }
    }

    /// An auction with the given listing text and category, ending `ends_in` after the
    /// start (search checks).
    pub fn listed(
        name: &str,
        title: &str,
        description: &str,
        category: Option<&str>,
        ends_in: Millis,
    ) -> Self {
        let mut f = Fixture::new(name);
        let spec = std::sync::Arc::make_mut(&mut f.auction.spec);
        spec.title = title.into();
        spec.description = description.into();
        spec.category = category.map(Into::into);
        spec.ends_at = START + ends_in;
        f.auction.state.ends_at = spec.ends_at;
        f.auction =
            Auction::new(f.auction.id.clone(), (*f.auction.spec).clone()).expect("a valid spec");
        f
    }

    /// The auction's start time.
    pub fn start() -> Millis {
        START
    }

    pub fn id(&self) -> &AuctionId {
        &self.auction.id
    }

    /// The auction as of the last change made.
    pub fn auction(&self) -> &Auction {
        &self.auction
    }

    /// Every bidder `bid` uses.
    pub fn bidders(&self) -> [&'static str; 2] {
        BIDDERS
    }

    fn apply(&mut self, change: Change, request: bool) -> ArchivedChange {
        self.auction = change.auction.clone();
        let seq = self.auction.state.seq;
        let is_bid = matches!(change.event, gavel_core::Event::Bid { .. });
        ArchivedChange {
            bid_id: is_bid.then(|| format!("{}.bid.{seq}", self.auction.id)),
            request_id: request.then(|| {
                self.requests += 1;
                RequestId::parse(format!("req-{}", self.requests)).expect("a request id")
            }),
            auction: change.auction,
            event: change.event,
        }
    }

    /// The start time passes.
    pub fn open(&mut self) -> ArchivedChange {
        let change = open_if_due(&self.auction, self.now).expect("the auction opens");
        self.now += 1_000;
        self.apply(change, false)
    }

    /// The bidder who is not leading bids the minimum: always accepted.
    pub fn bid(&mut self) -> ArchivedChange {
        let leader = self.auction.state.leader.as_ref().map(|l| l.id.as_str());
        let who = if leader == Some(BIDDERS[0]) {
            BIDDERS[1]
        } else {
            BIDDERS[0]
        };
        self.place(who, self.auction.min_bid(), BidKind::Plain)
    }

    /// `who` sets a proxy maximum of `amount` (or, leading already, raises theirs to it).
    pub fn max(&mut self, who: &str, amount: i64) -> ArchivedChange {
        self.place(who, money(amount), BidKind::Max)
    }

    /// `who` pays the buy-now price, which ends the auction.
    pub fn buy_now(&mut self, who: &str) -> ArchivedChange {
        let price = self
            .auction
            .spec
            .buy_now
            .expect("the fixture offers buy-now");
        self.place(who, price, BidKind::BuyNow)
    }

    fn place(&mut self, who: &str, amount: Money, kind: BidKind) -> ArchivedChange {
        let req = BidRequest {
            bidder: bidder(who),
            amount,
            kind,
            expected_seq: None,
        };
        let decision = place_bid(&self.auction, &req, self.now);
        assert_eq!(decision.outcome, Ok(()), "the fixture's bid is accepted");
        self.now += 1_000;
        self.apply(
            decision.change.expect("an accepted bid changes state"),
            true,
        )
    }

    /// Moves the fixture's clock to `START + offset_ms` (for changes made at chosen times).
    pub fn at(&mut self, offset_ms: Millis) -> &mut Self {
        self.now = START + offset_ms;
        self
    }

    /// An admin cancels the auction.
    pub fn cancel(&mut self, admin: &str) -> ArchivedChange {
        let change = cancel(&self.auction, self.now, admin).expect("still open");
        self.apply(change, false)
    }

    /// An admin ends the auction now.
    pub fn end_early(&mut self, admin: &str) -> ArchivedChange {
        let change = end_early(&self.auction, self.now, admin).expect("still open");
        self.apply(change, false)
    }

    /// The end time passes and the closer records it.
    pub fn close(&mut self) -> ArchivedChange {
        self.now = self.auction.state.ends_at;
        let change = close_if_due(&self.auction, self.now).expect("due");
        self.apply(change, false)
    }
}
