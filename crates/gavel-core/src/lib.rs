//! Gavel's auction rules: money, ids, auctions and every decision about them.
//!
//! Pure and synchronous on purpose: the clock is an argument, nothing here does I/O, so
//! the rules can be tested exhaustively and restated (in Lua) for the Redis engine.

pub mod auction;
pub mod chain;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod ids;
pub mod money;
pub mod names;
pub mod rules;
pub mod text;

pub use auction::{
    valid_category, Auction, AuctionSpec, AuctionState, CloseReason, Closing, IncrementBand,
    IncrementPolicy, Millis, SoftClose, SpecError, Status, MAX_SPAN_MS,
};
pub use ids::{AuctionId, Bidder, BidderId, IdError, RequestId};
pub use money::{Currency, CurrencyError, Money, MoneyError, MAX_AMOUNT};
pub use names::UnknownName;
pub use rules::{
    buy_now_available, cancel, close_if_due, end_early, open_if_due, outcome_code, place_bid,
    BidEntry, BidKind, BidRequest, Change, Decision, EntryKind, Event, Rejection,
};
