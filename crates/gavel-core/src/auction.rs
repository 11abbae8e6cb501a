//! What an auction is: its fixed settings (`AuctionSpec`) and its changing state.

use crate::ids::{AuctionId, Bidder};
use crate::money::{Currency, Money};
use crate::names::named_enum;
use crate::text;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Server UTC time in milliseconds since the Unix epoch.
pub type Millis = i64;

/// The longest an auction may last, and the farthest from now its start may be: 365 days.
pub const MAX_SPAN_MS: Millis = 365 * 86_400_000;

/// How much a new bid must exceed the current price by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IncrementPolicy {
    /// The same increment at every price.
    Fixed { amount: Money },
    /// Price bands, like the large platforms use: from `from` (inclusive) upwards the
    /// increment is `increment`, until the next band starts. The first band starts at 0.
    Table { bands: Vec<IncrementBand> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementBand {
    /// Lowest price (minor units) this band applies to; 0 for the first band.
    pub from: i64,
    pub increment: Money,
}

impl IncrementPolicy {
    /// The increment that applies when the current price is `price`.
    pub fn at(&self, price: Money) -> Money {
        match self {
            IncrementPolicy::Fixed { amount } => *amount,
            IncrementPolicy::Table { bands } => bands
                .iter()
                .rev()
                .find(|b| b.from <= price.minor_units())
                .or(bands.first())
                .map(|b| b.increment)
                .unwrap_or(Money::new(1).expect("1 is a valid amount")),
        }
    }

    fn validate(&self) -> Result<(), SpecError> {
        if let IncrementPolicy::Table { bands } = self {
            let first = bands
                .first()
                .ok_or(SpecError::IncrementTable("it has no bands"))?;
            if first.from != 0 {
                return Err(SpecError::IncrementTable("the first band must start at 0"));
            }
            if bands.windows(2).any(|w| w[1].from <= w[0].from) {
                return Err(SpecError::IncrementTable(
                    "bands must start at strictly increasing prices",
                ));
            }
            if bands.len() > 64 {
                return Err(SpecError::IncrementTable("it has more than 64 bands"));
            }
        }
        Ok(())
    }
}

/// Anti-sniping: a price-moving bid within the last `window_ms` moves the end to
/// `now + extend_ms`, but never beyond the original end plus `max_extension_ms` (if set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftClose {
    pub window_ms: i64,
    pub extend_ms: i64,
    #[serde(default)]
    pub max_extension_ms: Option<i64>,
}

/// The settings an auction is created with. They never change afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionSpec {
    pub title: String,
    pub description: String,
    /// The catalogue section the marketplace files it under (see [`valid_category`]);
    /// searches filter on it. Absent from the JSON of a spec that has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub currency: Currency,
    pub starting_price: Money,
    pub increment: IncrementPolicy,
    pub starts_at: Millis,
    pub ends_at: Millis,
    /// Hidden minimum for a sale. Watchers only learn whether it is met.
    #[serde(default)]
    pub reserve: Option<Money>,
    /// Price at which a bidder may end the auction at once (see `rules::buy_now_available`).
    #[serde(default)]
    pub buy_now: Option<Money>,
    #[serde(default)]
    pub soft_close: Option<SoftClose>,
}

/// Why a spec cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("title must be 1 to 200 characters, with a visible one")]
    Title,
    #[error("title must not contain control characters (NUL, newline) or direction overrides")]
    TitleControl,
    #[error("description must be at most 5000 characters")]
    Description,
    #[error(
        "description must not contain control characters other than tab and line breaks, \
         nor direction overrides"
    )]
    DescriptionControl,
    #[error("the reserve must be at least the starting price")]
    Reserve,
    #[error("starts_at must be within 365 days of now")]
    Start,
    #[error("ends_at must be after starts_at")]
    Window,
    #[error("the auction may last at most 365 days")]
    TooLong,
    #[error("increment table is invalid: {0}")]
    IncrementTable(&'static str),
    #[error("buy-now price must be at least the starting price (and the reserve, if any)")]
    BuyNow,
    #[error("soft close needs a positive window and extension, each at most one day")]
    SoftClose,
    #[error(
        "category must be 1 to 40 characters of a-z, 0-9 and '-', starting and ending \
         with a letter or digit"
    )]
    Category,
}

/// Whether `c` is a usable category: a slug of 1 to 40 characters (`a-z`, `0-9`, `-`),
/// starting and ending with a letter or digit, so it needs no escaping in a URL and reads
/// the same in every database.
pub fn valid_category(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    (1..=40).contains(&bytes.len())
        && bytes.iter().all(|&b| alnum(b) || b == b'-')
        && bytes.first().copied().is_some_and(alnum)
        && bytes.last().copied().is_some_and(alnum)
}

impl AuctionSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        let title_len = self.title.trim().chars().count();
        if title_len == 0 || title_len > 200 || !text::has_visible(&self.title) {
            return Err(SpecError::Title);
        }
        if text::has_control(&self.title) {
            return Err(SpecError::TitleControl);
        }
        if self.description.chars().count() > 5000 {
            return Err(SpecError::Description);
        }
        if text::has_control_except_layout(&self.description) {
            return Err(SpecError::DescriptionControl);
        }
        if self.category.as_deref().is_some_and(|c| !valid_category(c)) {
            return Err(SpecError::Category);
        }
        if self.reserve.is_some_and(|r| r < self.starting_price) {
            return Err(SpecError::Reserve);
        }
        if self.ends_at <= self.starts_at {
            return Err(SpecError::Window);
        }
        if self.ends_at.saturating_sub(self.starts_at) > MAX_SPAN_MS {
            return Err(SpecError::TooLong);
        }
        self.increment.validate()?;
        if let Some(buy_now) = self.buy_now {
            if buy_now < self.starting_price || self.reserve.is_some_and(|r| buy_now < r) {
                return Err(SpecError::BuyNow);
            }
        }
        if let Some(sc) = self.soft_close {
            const DAY: i64 = 86_400_000;
            let ok = (1..=DAY).contains(&sc.window_ms)
                && (1..=DAY).contains(&sc.extend_ms)
                && sc
                    .max_extension_ms
                    .is_none_or(|m| (0..=365 * DAY).contains(&m));
            if !ok {
                return Err(SpecError::SoftClose);
            }
        }
        Ok(())
    }
}

/// Lifecycle as of the last recorded state change. The clock may have moved on: use
/// [`Auction::status_at`] for the status "now".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Scheduled,
    Open,
    Closed,
}

named_enum!(Status, "status", {
    Scheduled => "scheduled",
    Open => "open",
    Closed => "closed",
});

/// How an auction came to an end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Its end time passed.
    Ended,
    /// A bidder paid the buy-now price.
    BuyNow,
    /// An admin ended it before its end time; the leader (if the reserve is met) wins.
    EndedEarly,
    /// An admin cancelled it; nobody wins.
    Cancelled,
}

named_enum!(CloseReason, "close reason", {
    Ended => "ended",
    BuyNow => "buy_now",
    EndedEarly => "ended_early",
    Cancelled => "cancelled",
});

/// The final result, fixed when the auction closes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closing {
    pub reason: CloseReason,
    pub closed_at: Millis,
    /// `None` when nobody bid, the reserve was not met, or the auction was cancelled.
    pub winner: Option<Bidder>,
    pub final_price: Option<Money>,
    /// The admin who cancelled or ended it early.
    #[serde(default)]
    pub by: Option<String>,
}

/// Everything about an auction that changes. Each change bumps `seq` by exactly one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionState {
    pub status: Status,
    /// The current (leading) price; `None` before the first bid.
    pub price: Option<Money>,
    pub leader: Option<Bidder>,
    /// The leader's proxy maximum. Secret: never shown to anyone but the leader.
    #[serde(default)]
    pub leader_max: Option<Money>,
    pub bid_count: u64,
    pub seq: u64,
    /// The current end time (soft close may have moved it from `spec.ends_at`).
    pub ends_at: Millis,
    #[serde(default)]
    pub closing: Option<Closing>,
    /// The head of the auction's verifiable log ([`crate::chain`]): the hash of the entry
    /// at `seq` and its time. Set by the authority in the step that decides the change;
    /// `None` only for a state that was never sealed (stored before the log existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<crate::chain::ChainLink>,
}

/// An auction: id, settings, state.
///
/// The settings are shared (`Arc`): they never change, while the state is copied on every
/// decision, so a copy of an auction never copies its title and description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auction {
    pub id: AuctionId,
    pub spec: Arc<AuctionSpec>,
    pub state: AuctionState,
}

impl Auction {
    /// A new auction at `seq` 1 (its creation is its first state change).
    pub fn new(id: AuctionId, spec: AuctionSpec) -> Result<Self, SpecError> {
        spec.validate()?;
        let ends_at = spec.ends_at;
        Ok(Auction {
            id,
            spec: Arc::new(spec),
            state: AuctionState {
                status: Status::Scheduled,
                price: None,
                leader: None,
                leader_max: None,
                bid_count: 0,
                seq: 1,
                ends_at,
                closing: None,
                chain: None,
            },
        })
    }

    /// A new auction created at `now`: already `Open` if its start has come, so no
    /// separate "opened" change follows its creation. Its start must be within
    /// [`MAX_SPAN_MS`] of `now` (and its end within that of its start), so every time it will
    /// ever hold stays far from the integer limits wherever it is stored.
    pub fn new_at(id: AuctionId, spec: AuctionSpec, now: Millis) -> Result<Self, SpecError> {
        if spec.starts_at.abs_diff(now) > MAX_SPAN_MS as u64 {
            return Err(SpecError::Start);
        }
        let mut a = Auction::new(id, spec)?;
        if now >= a.spec.starts_at {
            a.state.status = Status::Open;
        }
        Ok(a)
    }

    /// The status by the authority's clock `now`: the clock decides, whether or not a
    /// timer has announced the change yet.
    pub fn status_at(&self, now: Millis) -> Status {
        if self.state.closing.is_some() || now >= self.state.ends_at {
            Status::Closed
        } else if now < self.spec.starts_at {
            Status::Scheduled
        } else {
            Status::Open
        }
    }

    /// The increment that applies at the current price.
    pub fn increment(&self) -> Money {
        self.spec
            .increment
            .at(self.state.price.unwrap_or(self.spec.starting_price))
    }

    /// The lowest amount a new (non-leading) bid may have.
    pub fn min_bid(&self) -> Money {
        match self.state.price {
            None => self.spec.starting_price,
            Some(price) => price.saturating_add(self.spec.increment.at(price)),
        }
    }

    /// `None` when the auction has no reserve; otherwise whether the price has reached it.
    pub fn reserve_met(&self) -> Option<bool> {
        self.spec
            .reserve
            .map(|r| self.state.price.is_some_and(|p| p >= r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_times_are_refused_without_overflowing() {
        let spec = AuctionSpec {
            title: "Lot".into(),
            description: String::new(),
            currency: Currency::parse("USD").unwrap(),
            category: None,
            starting_price: Money::new(100).unwrap(),
            increment: IncrementPolicy::Fixed {
                amount: Money::new(1).unwrap(),
            },
            starts_at: i64::MIN,
            ends_at: i64::MAX,
            reserve: None,
            buy_now: None,
            soft_close: None,
        };
        assert_eq!(spec.validate(), Err(SpecError::TooLong));
    }

    fn lot() -> AuctionSpec {
        AuctionSpec {
            title: "Lot".into(),
            description: String::new(),
            currency: Currency::parse("USD").unwrap(),
            category: None,
            starting_price: Money::new(100).unwrap(),
            increment: IncrementPolicy::Fixed {
                amount: Money::new(1).unwrap(),
            },
            starts_at: NOW,
            ends_at: NOW + 1000,
            reserve: None,
            buy_now: None,
            soft_close: None,
        }
    }

    const NOW: Millis = 1_800_000_000_000;

    fn id() -> AuctionId {
        AuctionId::parse("lot").unwrap()
    }

    #[test]
    fn a_start_more_than_a_year_from_now_is_refused() {
        let far = AuctionSpec {
            starts_at: 9_223_372_036_854_775_797,
            ends_at: i64::MAX,
            ..lot()
        };
        assert_eq!(Auction::new_at(id(), far, NOW), Err(SpecError::Start));
        let long_ago = AuctionSpec {
            starts_at: NOW - MAX_SPAN_MS - 1,
            ..lot()
        };
        assert_eq!(Auction::new_at(id(), long_ago, NOW), Err(SpecError::Start));
        let in_a_year = AuctionSpec {
            starts_at: NOW + MAX_SPAN_MS,
            ends_at: NOW + 2 * MAX_SPAN_MS,
            ..lot()
        };
        assert!(Auction::new_at(id(), in_a_year, NOW).is_ok());
    }

    #[test]
    fn a_reserve_below_the_starting_price_is_refused() {
        let low = AuctionSpec {
            reserve: Some(Money::new(99).unwrap()),
            ..lot()
        };
        assert_eq!(low.validate(), Err(SpecError::Reserve));
        let equal = AuctionSpec {
            reserve: Some(Money::new(100).unwrap()),
            ..lot()
        };
        assert_eq!(equal.validate(), Ok(()));
    }

    #[test]
    fn titles_refuse_controls_overrides_and_invisible_text() {
        for title in ["a\u{0}b", "two\nlines", "Rolex \u{202E}ekaf", "tab\there"] {
            let spec = AuctionSpec {
                title: title.into(),
                ..lot()
            };
            assert_eq!(spec.validate(), Err(SpecError::TitleControl), "{title:?}");
        }
        let invisible = AuctionSpec {
            title: "\u{200B}\u{200D}".into(),
            ..lot()
        };
        assert_eq!(invisible.validate(), Err(SpecError::Title));
        let described = AuctionSpec {
            description: "Line one\nLine two".into(),
            ..lot()
        };
        assert_eq!(described.validate(), Ok(()));
        let hidden = AuctionSpec {
            description: "\u{202E}".into(),
            ..lot()
        };
        assert_eq!(hidden.validate(), Err(SpecError::DescriptionControl));
    }

    #[test]
    fn a_category_must_be_a_short_lowercase_slug() {
        for ok in ["watches", "a", "mid-century-2", &"x".repeat(40)] {
            let spec = AuctionSpec {
                category: Some(ok.into()),
                ..lot()
            };
            assert_eq!(spec.validate(), Ok(()), "{ok:?}");
        }
        for bad in [
            "",
            "Watches",
            "-art",
            "art-",
            "art deco",
            "art/deco",
            "é",
            &"x".repeat(41),
        ] {
            let spec = AuctionSpec {
                category: Some(bad.into()),
                ..lot()
            };
            assert_eq!(spec.validate(), Err(SpecError::Category), "{bad:?}");
        }
        let json = serde_json::to_string(&lot()).unwrap();
        assert!(
            !json.contains("category"),
            "absent, not null, when unset: {json}"
        );
    }
}
