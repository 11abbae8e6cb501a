//! The verifiable bid log: every accepted change of an auction is an entry of a per-auction
//! hash chain,
//!
//! ```text
//! hash_0 = SHA-256("gavel-log-v1" ‖ u16 len(auction id) ‖ auction id)
//! hash_n = SHA-256(hash_{n-1} ‖ encode(entry_n))        (n = the change's seq, from 1)
//! ```
//!
//! fixed by the authority in the same step that decides the change: the engines call
//! [`seal`] / [`seal_created`] on the decided state before it is stored, which writes
//! `hash_{n-1}` and the change's entry data into the new state
//! ([`crate::AuctionState::chain`]). Entry `n` and `hash_n` are then pure functions of
//! state `n` ([`LogEntry::of`], [`head`]).
//!
//! Pure: no I/O, no clock, no keys. Signing receipts is the server's business; this module
//! only defines the bytes that are signed ([`Receipt::message`]).
//!
//! # Byte layout of an entry (`encode`, version 1)
//!
//! All integers big-endian. `opt<T>` is one byte `0` (absent) or `1` followed by `T`.
//! `str` is a `u16` byte length followed by UTF-8 bytes.
//!
//! | field          | encoding      | meaning |
//! |----------------|---------------|---------|
//! | version        | `u8` = 1      | layout version |
//! | seq            | `u64`         | the change's seq (1 = creation) |
//! | at             | `i64`         | server UTC ms of the change |
//! | kind           | `u8`          | 1 created, 2 opened, 3 bid, 4 auto, 5 buy_now, 6 max_raised, 7 closed |
//! | bidder         | `opt<str>`    | who placed the bid (bid, auto, buy_now, max_raised) |
//! | amount         | `opt<i64>`    | the bid's amount (bid, auto, buy_now); never a proxy maximum |
//! | price          | `opt<i64>`    | the price after the change |
//! | leader         | `opt<str>`    | the leader after the change |
//! | bid_count      | `u64`         | accepted price-moving bids so far |
//! | ends_at        | `i64`         | the end time after the change (soft close moves it) |
//! | extended       | `u8` (0/1)    | this bid moved the end time |
//! | close_reason   | `opt<u8>`     | 1 ended, 2 buy_now, 3 ended_early, 4 cancelled |
//! | winner         | `opt<str>`    | the winner, once closed |
//! | final_price    | `opt<i64>`    | the final price, once closed |
//! | currency       | `opt<str>`    | created only: ISO currency |
//! | starting_price | `opt<i64>`    | created only |
//! | starts_at      | `opt<i64>`    | created only |
//! | buy_now        | `opt<i64>`    | created only: the buy-now price, if offered |
//!
//! The layout has no proxy maximum and no reserve: the log is public.

use crate::auction::{Auction, CloseReason, Millis};
use crate::ids::{AuctionId, BidderId};
use crate::money::{Currency, Money};
use crate::names::named_enum;
use crate::rules::{Change, EntryKind, Event};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Version byte at the start of every encoded entry.
pub const LAYOUT_VERSION: u8 = 1;

/// Domain-separation prefix of the genesis hash.
const GENESIS_TAG: &[u8] = b"gavel-log-v1";

/// Domain-separation prefix of a signed receipt.
const RECEIPT_TAG: &[u8] = b"gavel-receipt-v1";

/// A SHA-256 chain hash; lowercase hex (64 characters) in JSON and storage.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    pub fn parse(s: &str) -> Result<Self, HexError> {
        let bytes = unhex(s)?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| HexError("expected 32 bytes"))?;
        Ok(ChainHash(arr))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for ChainHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ChainHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ChainHash::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Text that is not the hex it should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid hex: {0}")]
pub struct HexError(pub &'static str);

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Bytes of lowercase or uppercase hex.
pub fn unhex(s: &str) -> Result<Vec<u8>, HexError> {
    if !s.len().is_multiple_of(2) {
        return Err(HexError("odd length"));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(HexError("not a hex digit")),
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// What an auction's state holds of its log: the hash of the log before the change that
/// made this state (`prev` = `hash_{seq-1}`) and what of that change is not in the state
/// itself. With the state, it determines the change's entry, and so `hash_seq`
/// ([`head`]): the head is never stored, so that an authority that fills in the time only
/// as it commits (the Redis engine's commit script stamps its clock) still commits a
/// state that fixes the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    pub prev: ChainHash,
    /// Server UTC ms of the change.
    pub at: Millis,
    pub kind: LogKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidder: Option<BidderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub extended: bool,
}

/// What kind of change an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogKind {
    Created,
    Opened,
    Bid,
    Auto,
    BuyNow,
    MaxRaised,
    Closed,
}

named_enum!(LogKind, "log entry kind", {
    Created => "created",
    Opened => "opened",
    Bid => "bid",
    Auto => "auto",
    BuyNow => "buy_now",
    MaxRaised => "max_raised",
    Closed => "closed",
});

impl LogKind {
    fn code(self) -> u8 {
        LogKind::ALL
            .iter()
            .position(|k| *k == self)
            .expect("listed") as u8
            + 1
    }
}

fn reason_code(r: CloseReason) -> u8 {
    CloseReason::ALL
        .iter()
        .position(|k| *k == r)
        .expect("listed") as u8
        + 1
}

/// One entry of the public log: what a change did, never a proxy maximum or the reserve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub at: Millis,
    pub kind: LogKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidder: Option<BidderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<BidderId>,
    pub bid_count: u64,
    pub ends_at: Millis,
    #[serde(default)]
    pub extended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<CloseReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<BidderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buy_now: Option<Money>,
}

impl LogEntry {
    /// The entry of the change that made `auction`'s state; `None` for a state that was
    /// never sealed.
    pub fn of(auction: &Auction) -> Option<LogEntry> {
        let s = &auction.state;
        let link = s.chain.as_ref()?;
        let created = link.kind == LogKind::Created;
        let closing = s.closing.as_ref();
        Some(LogEntry {
            seq: s.seq,
            at: link.at,
            kind: link.kind,
            bidder: link.bidder.clone(),
            amount: link.amount,
            price: s.price,
            leader: s.leader.as_ref().map(|l| l.id.clone()),
            bid_count: s.bid_count,
            ends_at: s.ends_at,
            extended: link.extended,
            close_reason: closing.map(|c| c.reason),
            winner: closing.and_then(|c| c.winner.as_ref().map(|w| w.id.clone())),
            final_price: closing.and_then(|c| c.final_price),
            currency: created.then_some(auction.spec.currency),
            starting_price: created.then_some(auction.spec.starting_price),
            starts_at: created.then_some(auction.spec.starts_at),
            buy_now: if created { auction.spec.buy_now } else { None },
        })
    }

    /// The canonical bytes (see the module documentation for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(128);
        b.push(LAYOUT_VERSION);
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.at.to_be_bytes());
        b.push(self.kind.code());
        put_opt_str(&mut b, self.bidder.as_ref().map(|x| x.as_str()));
        put_opt_i64(&mut b, self.amount.map(Money::minor_units));
        put_opt_i64(&mut b, self.price.map(Money::minor_units));
        put_opt_str(&mut b, self.leader.as_ref().map(|x| x.as_str()));
        b.extend_from_slice(&self.bid_count.to_be_bytes());
        b.extend_from_slice(&self.ends_at.to_be_bytes());
        b.push(self.extended as u8);
        match self.close_reason {
            None => b.push(0),
            Some(r) => b.extend_from_slice(&[1, reason_code(r)]),
        }
        put_opt_str(&mut b, self.winner.as_ref().map(|x| x.as_str()));
        put_opt_i64(&mut b, self.final_price.map(Money::minor_units));
        put_opt_str(&mut b, self.currency.as_ref().map(|c| c.as_str()));
        put_opt_i64(&mut b, self.starting_price.map(Money::minor_units));
        put_opt_i64(&mut b, self.starts_at);
        put_opt_i64(&mut b, self.buy_now.map(Money::minor_units));
        b
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).expect("ids and currencies are short");
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

fn put_opt_str(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => b.push(0),
        Some(s) => {
            b.push(1);
            put_str(b, s);
        }
    }
}

fn put_opt_i64(b: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => b.push(0),
        Some(v) => {
            b.push(1);
            b.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// `hash_0`: where an auction's chain starts (bound to its id).
pub fn genesis(id: &AuctionId) -> ChainHash {
    let mut h = Sha256::new();
    h.update(GENESIS_TAG);
    let len = u16::try_from(id.as_str().len()).expect("ids are short");
    h.update(len.to_be_bytes());
    h.update(id.as_str().as_bytes());
    ChainHash(h.finalize().into())
}

/// `hash_n = SHA-256(hash_{n-1} ‖ encode(entry_n))`.
pub fn link(prev: &ChainHash, entry: &LogEntry) -> ChainHash {
    let mut h = Sha256::new();
    h.update(prev.0);
    h.update(entry.encode());
    ChainHash(h.finalize().into())
}

/// `hash_seq` of an auction's state: the hash of its log up to and including the change
/// that made it. `None` for a state that was never sealed.
pub fn head(auction: &Auction) -> Option<ChainHash> {
    let entry = LogEntry::of(auction)?;
    let prev = auction.state.chain.as_ref()?.prev;
    Some(link(&prev, &entry))
}

/// What of a change goes into the chain link besides the new state.
fn link_of(event: &Event, after: &Auction, prev: ChainHash, at: Millis) -> ChainLink {
    let (kind, bidder, amount, extended) = match event {
        Event::Created => (LogKind::Created, None, None, false),
        Event::Opened => (LogKind::Opened, None, None, false),
        Event::MaxRaised => (
            LogKind::MaxRaised,
            after.state.leader.as_ref().map(|l| l.id.clone()),
            None,
            false,
        ),
        Event::Closed => (LogKind::Closed, None, None, false),
        Event::Bid { entry, extended } => (
            match entry.kind {
                EntryKind::Bid => LogKind::Bid,
                EntryKind::Auto => LogKind::Auto,
                EntryKind::BuyNow => LogKind::BuyNow,
            },
            Some(entry.bidder.id.clone()),
            Some(entry.amount),
            *extended,
        ),
    };
    ChainLink {
        prev,
        at,
        kind,
        bidder,
        amount,
        extended,
    }
}

/// Seals a decided change onto the log of `before` (the state it was decided on): the new
/// state records `hash_{seq-1}` (computed here from `before`) and the change's entry data.
/// `at` is the authority's time of the decision. Called by the engine in the step that
/// decides the change, before the state is stored. A `before` that was never sealed (stored
/// before the log existed) starts its log at the genesis hash: such a log does not verify
/// from seq 1.
pub fn seal(before: &Auction, change: &mut Change, at: Millis) {
    let prev = head(before).unwrap_or_else(|| genesis(&before.id));
    let link = link_of(&change.event, &change.auction, prev, at);
    change.auction.state.chain = Some(link);
}

/// Seals a new auction's first entry (`created`, seq 1) at time `at`.
pub fn seal_created(auction: &mut Auction, at: Millis) {
    let link = link_of(&Event::Created, auction, genesis(&auction.id), at);
    auction.state.chain = Some(link);
}

/// The first thing wrong with a log, by entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("entry seq {seq}: {what}")]
pub struct BrokenLink {
    /// The seq of the first entry that does not check out (for a missing entry, the seq
    /// that was expected there).
    pub seq: u64,
    pub what: String,
}

/// Checks a log from its first entry: seqs 1, 2, 3, … without gaps, each stored hash equal
/// to the hash recomputed from its content and its predecessor. Returns the last hash.
pub fn verify_log(
    id: &AuctionId,
    entries: impl IntoIterator<Item = (LogEntry, ChainHash)>,
) -> Result<Option<ChainHash>, BrokenLink> {
    let mut prev = genesis(id);
    let mut last = None;
    for (expected_seq, (entry, stored)) in (1u64..).zip(entries) {
        if entry.seq != expected_seq {
            return Err(BrokenLink {
                seq: expected_seq.min(entry.seq),
                what: if entry.seq > expected_seq {
                    format!("missing: the next entry has seq {}", entry.seq)
                } else {
                    format!(
                        "out of order: seq {} where {expected_seq} was expected",
                        entry.seq
                    )
                },
            });
        }
        let computed = link(&prev, &entry);
        if computed != stored {
            return Err(BrokenLink {
                seq: entry.seq,
                what: format!(
                    "its hash {stored} is not SHA-256(previous hash ‖ its content) = {computed}: \
                     the entry or one before it was changed"
                ),
            });
        }
        prev = computed;
        last = Some(computed);
    }
    Ok(last)
}

/// What a signed receipt states: that `bidder`'s bid was accepted at `seq`, leading at
/// `amount`, at server time `at`, and that the log's hash after it was `hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub auction_id: AuctionId,
    pub seq: u64,
    /// The price the bidder leads at after the bid (minor units; a proxy bid's maximum
    /// is never in a receipt).
    pub amount: Money,
    pub currency: Currency,
    pub bidder_id: BidderId,
    pub at: Millis,
    pub hash: ChainHash,
}

impl Receipt {
    /// The receipt for an accepted bid: `after` is the auction's state right after it, as
    /// the engine answered (sealed). `None` when the state carries no chain link or no price.
    pub fn for_accepted(after: &Auction, bidder: &BidderId) -> Option<Receipt> {
        Some(Receipt {
            auction_id: after.id.clone(),
            seq: after.state.seq,
            amount: after.state.price?,
            currency: after.spec.currency,
            bidder_id: bidder.clone(),
            at: after.state.chain.as_ref()?.at,
            hash: head(after)?,
        })
    }

    /// The bytes the server signs: `"gavel-receipt-v1"`, then auction id (`str`), seq
    /// (`u64`), amount (`i64`), currency (`str`), bidder id (`str`), at (`i64`), hash (32
    /// bytes), with the entry layout's conventions.
    pub fn message(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(128);
        b.extend_from_slice(RECEIPT_TAG);
        put_str(&mut b, self.auction_id.as_str());
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.amount.minor_units().to_be_bytes());
        put_str(&mut b, self.currency.as_str());
        put_str(&mut b, self.bidder_id.as_str());
        b.extend_from_slice(&self.at.to_be_bytes());
        b.extend_from_slice(&self.hash.0);
        b
    }

    /// Whether `entry` (stored with `hash`) is the change this receipt describes.
    pub fn matches(&self, entry: &LogEntry, hash: &ChainHash) -> Result<(), String> {
        let mut wrong = Vec::new();
        if entry.seq != self.seq {
            wrong.push(format!("seq {} (receipt {})", entry.seq, self.seq));
        }
        if *hash != self.hash {
            wrong.push(format!("hash {hash} (receipt {})", self.hash));
        }
        if entry.leader.as_ref() != Some(&self.bidder_id) {
            wrong.push(format!(
                "leader {} (receipt bidder {})",
                entry.leader.as_ref().map_or("none", |l| l.as_str()),
                self.bidder_id
            ));
        }
        if entry.price != Some(self.amount) {
            wrong.push(format!(
                "price {} (receipt {})",
                entry.price.map_or("none".to_string(), |p| p.to_string()),
                self.amount
            ));
        }
        if entry.at != self.at {
            wrong.push(format!("time {} (receipt {})", entry.at, self.at));
        }
        if !matches!(
            entry.kind,
            LogKind::Bid | LogKind::Auto | LogKind::BuyNow | LogKind::MaxRaised
        ) {
            wrong.push(format!("kind {} is not a bid", entry.kind));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auction::{AuctionSpec, IncrementPolicy, SoftClose};
    use crate::ids::Bidder;
    use crate::rules::{self, BidKind, BidRequest};
    use proptest::prelude::*;

    const START: Millis = 1_700_000_000_000;

    fn m(v: i64) -> Money {
        Money::new(v).unwrap()
    }

    fn spec() -> AuctionSpec {
        AuctionSpec {
            title: "Lot".into(),
            description: String::new(),
            currency: Currency::parse("EUR").unwrap(),
            category: None,
            starting_price: m(1_000),
            increment: IncrementPolicy::Fixed { amount: m(100) },
            starts_at: START,
            ends_at: START + 60_000,
            reserve: None,
            buy_now: None,
            soft_close: Some(SoftClose {
                window_ms: 10_000,
                extend_ms: 10_000,
                max_extension_ms: None,
            }),
        }
    }

    fn who(id: &str) -> Bidder {
        Bidder {
            id: BidderId::parse(id).unwrap(),
            name: id.into(),
        }
    }

    /// Runs `bids` (bidder, amount, kind, ms after the start) through the rules, sealing
    /// every change as an engine does, then closes; returns each state of the log.
    fn run(bids: &[(&str, i64, BidKind, i64)]) -> Vec<Auction> {
        let mut a = Auction::new_at(AuctionId::parse("lot-7").unwrap(), spec(), START).unwrap();
        seal_created(&mut a, START);
        let mut states = vec![a.clone()];
        for (bidder, amount, kind, dt) in bids {
            let req = BidRequest {
                bidder: who(bidder),
                amount: m(*amount),
                kind: *kind,
                expected_seq: None,
            };
            let now = START + dt;
            if let Some(mut c) = rules::place_bid(&a, &req, now).change {
                seal(&a, &mut c, now);
                a = c.auction;
                states.push(a.clone());
            }
        }
        let end = a.state.ends_at;
        if let Some(mut c) = rules::close_if_due(&a, end) {
            seal(&a, &mut c, end);
            states.push(c.auction);
        }
        states
    }

    fn log_of(states: &[Auction]) -> Vec<(LogEntry, ChainHash)> {
        states
            .iter()
            .map(|s| (LogEntry::of(s).unwrap(), head(s).unwrap()))
            .collect()
    }

    fn sample() -> Vec<Auction> {
        run(&[
            ("u-ann", 1_000, BidKind::Plain, 1_000),
            ("u-bob", 43_210, BidKind::Max, 2_000),
            ("u-ann", 2_000, BidKind::Plain, 55_000),
            ("u-bob", 98_765, BidKind::Max, 56_000),
        ])
    }

    #[test]
    fn a_sealed_log_verifies_and_ends_at_the_head() {
        let states = sample();
        let log = log_of(&states);
        assert_eq!(
            log.iter().map(|(e, _)| e.kind).collect::<Vec<_>>(),
            [
                LogKind::Created,
                LogKind::Bid,
                LogKind::Auto,
                LogKind::Auto,
                LogKind::MaxRaised,
                LogKind::Closed
            ]
        );
        let last = verify_log(&states[0].id, log.clone()).unwrap();
        assert_eq!(last, head(states.last().unwrap()));
        // Each state records the hash of the one before it.
        for w in states.windows(2) {
            assert_eq!(
                w[1].state.chain.as_ref().unwrap().prev,
                head(&w[0]).unwrap()
            );
        }
        // The soft close moved the end, and the entry says so.
        assert!(log[3].0.extended || log[4].0.extended);
    }

    #[test]
    fn no_proxy_maximum_or_reserve_is_in_any_entry() {
        let log = log_of(&sample());
        for (entry, _) in &log {
            let json = serde_json::to_string(entry).unwrap();
            for secret in ["43210", "98765"] {
                assert!(!json.contains(secret), "{secret} in {json}");
            }
            let bytes = entry.encode();
            for secret in [43_210i64, 98_765] {
                let be = secret.to_be_bytes();
                assert!(
                    !bytes.windows(8).any(|w| w == be),
                    "{secret} in entry {}",
                    entry.seq
                );
            }
        }
    }

    #[test]
    fn the_genesis_hash_binds_the_auction_id() {
        let a = genesis(&AuctionId::parse("a").unwrap());
        assert_ne!(a, genesis(&AuctionId::parse("b").unwrap()));
        // A log moved to another auction's id does not verify.
        let log = log_of(&sample());
        let err = verify_log(&AuctionId::parse("other").unwrap(), log).unwrap_err();
        assert_eq!(err.seq, 1);
    }

    #[test]
    fn the_byte_layout_is_the_documented_one() {
        let e = LogEntry {
            seq: 2,
            at: 3,
            kind: LogKind::Bid,
            bidder: Some(BidderId::parse("u-a").unwrap()),
            amount: Some(m(5)),
            price: Some(m(5)),
            leader: Some(BidderId::parse("u-a").unwrap()),
            bid_count: 1,
            ends_at: 9,
            extended: true,
            close_reason: Some(CloseReason::BuyNow),
            winner: None,
            final_price: None,
            currency: None,
            starting_price: None,
            starts_at: None,
            buy_now: None,
        };
        let mut want = vec![1u8];
        want.extend(2u64.to_be_bytes());
        want.extend(3i64.to_be_bytes());
        want.push(3);
        want.extend([1, 0, 3, b'u', b'-', b'a']);
        want.push(1);
        want.extend(5i64.to_be_bytes());
        want.push(1);
        want.extend(5i64.to_be_bytes());
        want.extend([1, 0, 3, b'u', b'-', b'a']);
        want.extend(1u64.to_be_bytes());
        want.extend(9i64.to_be_bytes());
        want.push(1);
        want.extend([1, 2]);
        want.extend([0, 0, 0, 0, 0, 0]);
        assert_eq!(e.encode(), want);
        let mut h = Sha256::new();
        h.update([7u8; 32]);
        h.update(&want);
        assert_eq!(
            link(&ChainHash([7; 32]), &e).0,
            <[u8; 32]>::from(h.finalize())
        );
    }

    #[test]
    fn tampering_is_reported_at_the_entry() {
        let states = sample();
        let id = states[0].id.clone();
        let log = log_of(&states);
        // A changed amount.
        let mut t = log.clone();
        t[2].0.amount = Some(m(1_150));
        assert_eq!(verify_log(&id, t).unwrap_err().seq, 3);
        // A deleted entry.
        let mut t = log.clone();
        t.remove(3);
        let err = verify_log(&id, t).unwrap_err();
        assert_eq!(err.seq, 4);
        assert!(err.what.contains("missing"), "{err}");
        // Two entries swapped.
        let mut t = log.clone();
        t.swap(4, 5);
        assert_eq!(verify_log(&id, t).unwrap_err().seq, 5);
        // Swapped with their seqs renumbered: the hashes no longer link.
        let mut t = log.clone();
        t.swap(4, 5);
        t[4].0.seq = 5;
        t[5].0.seq = 6;
        assert_eq!(verify_log(&id, t).unwrap_err().seq, 5);
        // An inserted entry, everything after it renumbered.
        let mut t = log.clone();
        let mut extra = t[2].clone();
        extra.0.bidder = Some(BidderId::parse("u-eve").unwrap());
        t.insert(3, extra);
        for (i, (e, _)) in t.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        assert_eq!(verify_log(&id, t).unwrap_err().seq, 4);
        // A rehashed forgery verifies on its own, but ends at another head.
        let mut prev = genesis(&id);
        let forged: Vec<_> = log
            .iter()
            .map(|(e, _)| {
                let mut e = e.clone();
                if e.seq == 2 {
                    e.at += 1;
                }
                prev = link(&prev, &e);
                (e, prev)
            })
            .collect();
        assert_ne!(
            verify_log(&id, forged).unwrap(),
            verify_log(&id, log).unwrap()
        );
    }

    #[test]
    fn a_receipt_matches_its_entry_only() {
        let states = sample();
        let log = log_of(&states);
        let bob = BidderId::parse("u-bob").unwrap();
        let r = Receipt::for_accepted(&states[2], &bob).unwrap();
        assert_eq!((r.seq, r.amount, r.at), (3, m(1_100), START + 2_000));
        assert_eq!(r.matches(&log[2].0, &log[2].1), Ok(()));
        assert!(r.matches(&log[3].0, &log[3].1).is_err());
        let mut lie = r.clone();
        lie.amount = m(1_200);
        assert!(lie
            .matches(&log[2].0, &log[2].1)
            .unwrap_err()
            .contains("price"));
        assert_ne!(lie.message(), r.message());
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Receipt>(&json).unwrap(), r);
    }

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let h = ChainHash([0xab; 32]);
        assert_eq!(ChainHash::parse(&h.to_hex()), Ok(h));
        assert!(ChainHash::parse("zz").is_err());
        assert!(ChainHash::parse("abc").is_err());
        assert!(ChainHash::parse("abcd").is_err());
    }

    fn kind() -> impl Strategy<Value = BidKind> {
        prop_oneof![Just(BidKind::Plain), Just(BidKind::Max)]
    }

    proptest! {
        #[test]
        fn any_changed_entry_is_caught_at_or_before_it(
            bids in prop::collection::vec((0usize..3, 1_000i64..20_000, kind()), 1..25),
            pick in any::<prop::sample::Index>(),
            field in 0usize..6,
        ) {
            let names = ["u-a", "u-b", "u-c"];
            let bids: Vec<_> = bids
                .iter()
                .enumerate()
                .map(|(i, (w, amt, k))| (names[*w], *amt, *k, 100 * i as i64 + 1))
                .collect();
            let states = run(&bids);
            let id = states[0].id.clone();
            let log = log_of(&states);
            prop_assert_eq!(verify_log(&id, log.clone()).unwrap(), head(states.last().unwrap()));
            let i = pick.index(log.len());
            let mut t = log.clone();
            let e = &mut t[i].0;
            match field {
                0 => e.at += 1,
                1 => e.bid_count += 1,
                2 => e.ends_at -= 1,
                3 => e.extended = !e.extended,
                4 => e.price = Some(m(e.price.map_or(1, |p| p.minor_units() + 1))),
                _ => e.leader = Some(BidderId::parse("u-z").unwrap()),
            }
            prop_assert_ne!(t[i].0.encode(), log[i].0.encode());
            let err = verify_log(&id, t).unwrap_err();
            prop_assert_eq!(err.seq, i as u64 + 1);
        }
    }
}
