//! The rules of an auction, tested through the public API of `gavel-core`.
//!
//! One test binary (not one per file) so the suite links once. Each module covers one
//! area of the rules; `helpers` builds auctions and bids with readable defaults, and
//! `properties` checks the invariants over random bid sequences with proptest.

mod helpers;

mod bidding;
mod buy_now;
mod increments;
mod lifecycle;
mod properties;
mod proxy;
mod reserve;
mod soft_close;
mod spec;
