//! Support for the fuzz targets (`fuzz/`) and the property tests: a reference model of the
//! rules, written from the rules as stated rather than from the implementation. Behind the
//! `fuzzing` feature: not part of the normal API.

use crate::{AuctionSpec, IncrementPolicy, Money};

/// A deliberately simple model of proxy bidding, written from the rule as stated rather
/// than from the implementation: every bidder's latest accepted maximum is remembered;
/// the winner is the earliest of the highest maxima; the price is one increment above the
/// second-highest maximum, capped at the highest, never below the starting price, and
/// lifted to the reserve when the winner's maximum reaches it.
///
/// One rule makes it depend on the order of events: a leader raising their own maximum
/// does not move the price (except up to the reserve). When the price was capped at the
/// leader's old maximum, the formula over the new set of maxima would give more, so the
/// model re-prices only when someone else's maximum joins the set.
pub struct Reference {
    pub start: i64,
    /// (from, increment), `from` ascending, first at 0.
    pub bands: Vec<(i64, i64)>,
    pub reserve: Option<i64>,
    /// (bidder, maximum, order in which it was placed)
    pub maxima: Vec<(usize, i64, usize)>,
    /// The price as last set; `None` before the first maximum.
    pub price: Option<i64>,
}

impl Reference {
    pub fn new(spec: &AuctionSpec) -> Self {
        let bands = match &spec.increment {
            IncrementPolicy::Fixed { amount } => vec![(0, amount.minor_units())],
            IncrementPolicy::Table { bands } => bands
                .iter()
                .map(|b| (b.from, b.increment.minor_units()))
                .collect(),
        };
        Reference {
            start: spec.starting_price.minor_units(),
            bands,
            reserve: spec.reserve.map(Money::minor_units),
            maxima: Vec::new(),
            price: None,
        }
    }

    pub fn increment(&self, price: i64) -> i64 {
        let mut inc = self.bands[0].1;
        for &(from, i) in &self.bands {
            if from <= price {
                inc = i;
            }
        }
        inc
    }

    /// (bidder, maximum) of the winner: highest maximum, earliest on ties.
    pub fn winner(&self) -> Option<(usize, i64)> {
        let mut best: Option<(usize, i64, usize)> = None;
        for &(b, max, order) in &self.maxima {
            if best.is_none_or(|(_, bm, bo)| max > bm || (max == bm && order < bo)) {
                best = Some((b, max, order));
            }
        }
        best.map(|(b, max, _)| (b, max))
    }

    /// The price the formula gives for the current set of maxima.
    pub fn formula(&self) -> Option<i64> {
        let (w, highest) = self.winner()?;
        let second = self.maxima.iter().filter(|e| e.0 != w).map(|e| e.1).max();
        let mut p = match second {
            None => self.start,
            Some(s) => highest.min(s + self.increment(s)),
        };
        p = p.max(self.start);
        if let Some(r) = self.reserve {
            if highest >= r {
                p = p.max(r);
            }
        }
        Some(p)
    }

    pub fn min_bid(&self) -> i64 {
        self.price.map_or(self.start, |p| p + self.increment(p))
    }

    /// Places a maximum; returns whether the bid should be accepted: a leader's raise
    /// must be above their current maximum, anyone else must end up leading.
    pub fn place(&mut self, bidder: usize, max: i64, order: usize) -> bool {
        let leading = self.winner().map(|w| w.0) == Some(bidder);
        let current = self.maxima.iter().position(|e| e.0 == bidder);
        let ok = if leading {
            max > self.maxima[current.unwrap()].1
        } else {
            max >= self.min_bid()
        };
        if ok {
            if let Some(i) = current {
                self.maxima.remove(i);
            }
            self.maxima.push((bidder, max, order));
            self.price = if leading {
                // Only the reserve can lift the price when the leader raises.
                let reserve = self.reserve.filter(|&r| max >= r).unwrap_or(0);
                self.price.map(|p| p.max(reserve))
            } else {
                self.formula()
            };
        }
        if leading {
            ok
        } else {
            self.winner().map(|w| w.0) == Some(bidder)
        }
    }
}
