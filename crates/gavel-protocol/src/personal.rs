//! The personal channel and the per-user lists (`subscribe_personal`, `GET /api/me/auctions`,
//! the watchlist, next steps): see `docs/protocol.md`, "Personal channel".

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a `notification` tells its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// You led this auction and someone else leads it now.
    Outbid,
    /// The auction closed and you won it.
    Won,
    /// The auction you bid on closed and someone else won it (or nobody did).
    Lost,
    /// The auction ends within the announced threshold (`ending_soon_ms`). Once per auction
    /// and user, even when a soft-close extension moves the end.
    EndingSoon,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 4] = [
        NotificationKind::Outbid,
        NotificationKind::Won,
        NotificationKind::Lost,
        NotificationKind::EndingSoon,
    ];

    /// The kind on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Outbid => "outbid",
            NotificationKind::Won => "won",
            NotificationKind::Lost => "lost",
            NotificationKind::EndingSoon => "ending_soon",
        }
    }
}

impl std::str::FromStr for NotificationKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        NotificationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "not a notification kind: {:?}",
                    s.chars().take(40).collect::<String>()
                )
            })
    }
}

/// Where a user stands in an auction they follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MyStatus {
    /// Live, and you are the leader.
    Leading,
    /// Live, you bid, and someone else leads.
    Outbid,
    /// Closed, and you won.
    Won,
    /// Closed, you bid, and you did not win.
    Lost,
    /// You only watch it (no bid of yours).
    Watching,
}

impl MyStatus {
    pub const ALL: [MyStatus; 5] = [
        MyStatus::Leading,
        MyStatus::Outbid,
        MyStatus::Won,
        MyStatus::Lost,
        MyStatus::Watching,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MyStatus::Leading => "leading",
            MyStatus::Outbid => "outbid",
            MyStatus::Won => "won",
            MyStatus::Lost => "lost",
            MyStatus::Watching => "watching",
        }
    }
}

impl std::str::FromStr for MyStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        MyStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "not a personal status: {:?}",
                    s.chars().take(40).collect::<String>()
                )
            })
    }
}

/// What the winner is told to do after the close (set by the auctioneer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NextStepsView {
    /// Plain text, at most 2000 characters.
    pub text: String,
    /// An `https://` or `http://` link, at most 2000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One auction a user follows (watches or bid on), with where they stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MyAuction {
    pub auction_id: String,
    pub title: String,
    pub currency: String,
    /// On the user's watchlist.
    pub watched: bool,
    /// The user has an accepted bid on it.
    pub bid: bool,
    pub my_status: MyStatus,
    /// `scheduled`, `open` or `closed`, by the server's clock.
    #[schemars(with = "crate::schema::AuctionStatus")]
    pub status: String,
    /// Current (or final) price; `null` before the first bid.
    pub price: Option<i64>,
    /// Current end time (soft close may have moved it).
    pub ends_at: i64,
    pub seq: u64,
    /// The auctioneer's next steps: only on an auction the user won.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_steps: Option<NextStepsView>,
}

/// `GET /api/me/auctions`: the auctions the user watches or bid on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MyAuctions {
    pub auctions: Vec<MyAuction>,
    pub server_time: i64,
}

/// A personal event (`notification` on the WebSocket).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Notification {
    /// Stable across nodes and reconnects: `<auction_id>:<seq>:<kind>` for `outbid`, `won`
    /// and `lost` (the seq of the change that caused it), `<auction_id>:ending_soon` for
    /// `ending_soon`. A client shows each id once.
    pub id: String,
    pub kind: NotificationKind,
    pub auction_id: String,
    pub title: String,
    pub currency: String,
    /// The auction's seq the event was derived from.
    pub seq: u64,
    /// The current (for `won`/`lost`: final) price.
    pub price: Option<i64>,
    /// The auction's current end time.
    pub ends_at: i64,
    /// When the server sent it (server UTC ms).
    pub at: i64,
    /// Only in `won`, when the auctioneer set them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_steps: Option<NextStepsView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_round_trip_through_their_wire_names() {
        for k in NotificationKind::ALL {
            assert_eq!(k.as_str().parse::<NotificationKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for s in MyStatus::ALL {
            assert_eq!(s.as_str().parse::<MyStatus>(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!("soon".parse::<NotificationKind>().is_err());
        assert!("winning".parse::<MyStatus>().is_err());
    }
}
