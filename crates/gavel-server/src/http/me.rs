//! The signed-in user's own lists (`/api/me/...`: the watchlist, "My bids") and the
//! auctioneer's next steps for a winner (`/api/auctions/{id}/next_steps`).
//!
//! Both modes read the archive: the watchlist is written there directly; "My bids" is the
//! archive's bids (in distributed mode PostgreSQL, up to one drain interval behind) plus
//! the bids this node saw on its change feed (`crate::personal`). Statuses are live: each
//! auction's state is read from the engine (the archive once it left the engine).

use super::{Admin, ApiError, JsonBody, Path, Query, RequestBody, User};
use crate::auth::Role;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gavel_archive::NextSteps;
use gavel_core::{Auction, AuctionId, BidderId};
use gavel_protocol::{ErrorCode, MyAuctions, MyStatus, NextStepsView};
use serde::Deserialize;
use std::sync::Arc;

impl RequestBody for NextStepsView {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MineQuery {
    /// Only the auctions where the user stands so (`leading`, `outbid`, `won`, `lost`,
    /// `watching`), or only the watched ones (`watched`).
    filter: Option<String>,
}

fn user_id(who: &crate::auth::Principal) -> Result<BidderId, ApiError> {
    BidderId::parse(who.id.as_str())
        .map_err(|_| ApiError::new(ErrorCode::Forbidden, "sign in as a user to have lists"))
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, e.to_string())
}

/// `GET /api/me/auctions`: every auction the user watches or bid on, with where they stand.
pub async fn auctions(
    State(state): State<Arc<AppState>>,
    User(who): User,
    Query(q): Query<MineQuery>,
) -> Result<Json<MyAuctions>, ApiError> {
    let user = user_id(&who)?;
    let filter = match q.filter.as_deref() {
        None => None,
        Some("watched") => Some(None),
        Some(s) => Some(Some(s.parse::<MyStatus>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "filter must be leading, outbid, won, lost, watching or watched",
            )
        })?)),
    };
    let (mut auctions, ..) = state
        .personal
        .my_auctions(&user)
        .await
        .map_err(unavailable)?;
    match filter {
        None => {}
        Some(None) => auctions.retain(|a| a.watched),
        Some(Some(status)) => auctions.retain(|a| a.my_status == status),
    }
    Ok(Json(MyAuctions {
        auctions,
        server_time: state.engine.now(),
    }))
}

/// The auction, from the engine or (once it left the engine) the archive.
async fn find(state: &AppState, id: &str) -> Result<Auction, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such auction");
    let id = AuctionId::parse(id).map_err(|_| not_found())?;
    match state.engine.auction(&id).await.map_err(unavailable)? {
        Some(a) => Ok(a),
        None => state
            .archive
            .auction(&id)
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found),
    }
}

async fn set_watched(
    state: &AppState,
    who: &crate::auth::Principal,
    id: &str,
    watched: bool,
) -> Result<StatusCode, ApiError> {
    let user = user_id(who)?;
    let auction = find(state, id).await?;
    state
        .archive
        .set_watched(&user, &auction.id, watched, state.engine.now())
        .await
        .map_err(unavailable)?;
    state.personal.set_watched(user.as_str(), &auction, watched);
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/me/watchlist/{id}`: watch an auction (idempotent).
pub async fn watch(
    State(state): State<Arc<AppState>>,
    User(who): User,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_watched(&state, &who, &id, true).await
}

/// `DELETE /api/me/watchlist/{id}`: stop watching (idempotent).
pub async fn unwatch(
    State(state): State<Arc<AppState>>,
    User(who): User,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_watched(&state, &who, &id, false).await
}

/// `GET /api/auctions/{id}/next_steps`: the auctioneer's next steps, for the winner once
/// the auction has closed, and for admins.
pub async fn next_steps(
    State(state): State<Arc<AppState>>,
    User(who): User,
    Path(id): Path<String>,
) -> Result<Json<NextStepsView>, ApiError> {
    let auction = find(&state, &id).await?;
    let won = auction
        .state
        .closing
        .as_ref()
        .and_then(|c| c.winner.as_ref())
        .is_some_and(|w| w.id.as_str() == who.id);
    if !won && who.role != Role::Admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "next steps are shown to the winner once the auction has closed",
        ));
    }
    match state
        .archive
        .next_steps(&auction.id)
        .await
        .map_err(unavailable)?
    {
        Some(s) => Ok(Json(NextStepsView {
            text: s.text,
            url: s.url,
        })),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            "the auctioneer has set no next steps for this auction",
        )),
    }
}

/// Checks next steps as an admin gave them: bounded plain text, an `http(s)` link.
fn checked(v: NextStepsView) -> Result<NextStepsView, ApiError> {
    let bad = |m: &str| ApiError::new(ErrorCode::InvalidMessage, m.to_string());
    let text = v.text.trim().to_string();
    if text.is_empty() && v.url.is_none() {
        return Err(bad("next steps need a text or a url"));
    }
    if text.chars().count() > NextSteps::MAX_TEXT {
        return Err(bad("text is limited to 2000 characters"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad(
            "text may not hold control characters other than newlines",
        ));
    }
    if let Some(url) = &v.url {
        let ok = url.len() <= NextSteps::MAX_URL
            && (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() > "https://".len()
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(bad(
                "url must be an absolute http:// or https:// link without spaces (at most 2000 characters)",
            ));
        }
    }
    Ok(NextStepsView { text, url: v.url })
}

/// `PUT /api/auctions/{id}/next_steps` (admin): sets what the winner is told to do next.
pub async fn set_next_steps(
    State(state): State<Arc<AppState>>,
    Admin(_): Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NextStepsView>,
) -> Result<StatusCode, ApiError> {
    let auction = find(&state, &id).await?;
    let v = checked(body)?;
    let steps = NextSteps {
        text: v.text,
        url: v.url,
        updated_at: state.engine.now(),
    };
    state
        .archive
        .set_next_steps(&auction.id, Some(&steps))
        .await
        .map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/auctions/{id}/next_steps` (admin).
pub async fn clear_next_steps(
    State(state): State<Arc<AppState>>,
    Admin(_): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let auction = find(&state, &id).await?;
    state
        .archive
        .set_next_steps(&auction.id, None)
        .await
        .map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}
