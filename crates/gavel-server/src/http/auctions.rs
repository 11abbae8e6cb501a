//! Auctions: list, search, read, history, create, bid, cancel, end early.

use super::{Admin, ApiError, JsonBody, Path, Query, User};
use crate::bidding::{self, BidError, RawBid};
use crate::listing::{self, Cursor, Filter, ListError};
use crate::views;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gavel_archive::search::{self, SearchQuery, SearchSort, SearchStatus};
use gavel_core::{
    Auction, AuctionId, AuctionSpec, Currency, IncrementBand, IncrementPolicy, Money, SoftClose,
};
use gavel_engine::AdminAction;
use gavel_protocol::{
    parse_amount, AuctionList, AuctionView, BidHistory, BidResult, CategoryCount, CategoryList,
    CreateAuction, ErrorCode, PlaceBid, SearchResults,
};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// One page of auctions: live ones by end time, then closed ones, most recently closed
/// first (see `listing.rs`).
pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<AuctionList>, ApiError> {
    let filter = Filter::parse(q.status.as_deref()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidStatus,
            "status must be live, scheduled, open or closed",
        )
    })?;
    let limit = q.limit.unwrap_or(listing::DEFAULT_LIMIT);
    if !(1..=listing::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {}", listing::MAX_LIMIT),
        ));
    }
    let bad_cursor = || {
        ApiError::new(
            ErrorCode::InvalidQuery,
            "cursor must be a next_cursor this listing returned",
        )
    };
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| Cursor::parse(c).ok_or_else(bad_cursor))
        .transpose()?;
    let now = state.engine.now();
    let page = listing::page(
        state.engine.as_ref(),
        state.archive.as_ref(),
        filter,
        cursor,
        limit,
        now,
    )
    .await
    .map_err(|e| match e {
        ListError::Cursor => bad_cursor(),
        ListError::Engine(e) => e.into(),
    })?;
    Ok(Json(AuctionList {
        auctions: page
            .auctions
            .iter()
            .map(|a| views::auction_view(a, now, None))
            .collect(),
        server_time: now,
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

fn parse_id(id: &str) -> Result<AuctionId, ApiError> {
    AuctionId::parse(id).map_err(|_| ApiError::new(ErrorCode::NotFound, "no such auction"))
}

pub(crate) async fn load(state: &AppState, id: &str) -> Result<Auction, ApiError> {
    let id = parse_id(id)?;
    state
        .engine
        .auction(&id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such auction"))
}

pub async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<AuctionView>, ApiError> {
    let a = load(&state, &id).await?;
    Ok(Json(views::auction_view(&a, state.engine.now(), None)))
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    limit: Option<u32>,
    before_seq: Option<u64>,
}

pub async fn history(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<BidHistory>, ApiError> {
    let a = load(&state, &id).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            "limit must be 1 to 200",
        ));
    }
    let bids = state
        .archive
        .bids(&a.id, q.before_seq, limit + 1)
        .await
        .map_err(ApiError::internal)?;
    let more = bids.len() > limit as usize;
    let bids: Vec<_> = bids
        .iter()
        .take(limit as usize)
        .map(views::bid_view)
        .collect();
    let next_before_seq = if more {
        bids.last().map(|b| b.seq)
    } else {
        None
    };
    Ok(Json(BidHistory {
        bids,
        next_before_seq,
    }))
}

fn invalid(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

fn money_field(name: &str, v: Option<&serde_json::Value>) -> Result<Money, ApiError> {
    let raw =
        parse_amount(v).map_err(|e| invalid(ErrorCode::InvalidAmount, format!("{name}: {e}")))?;
    Money::new(raw).map_err(|e| invalid(ErrorCode::InvalidAmount, format!("{name}: {e}")))
}

fn optional_money(name: &str, v: Option<&serde_json::Value>) -> Result<Option<Money>, ApiError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => money_field(name, Some(v)).map(Some),
    }
}

/// Builds a validated auction from a create request.
pub fn auction_from_request(req: CreateAuction, now: i64) -> Result<Auction, ApiError> {
    let id = match req.id {
        Some(id) => {
            AuctionId::parse(id).map_err(|e| invalid(ErrorCode::InvalidAuction, e.to_string()))?
        }
        None => AuctionId::parse(format!("a-{}", uuid::Uuid::now_v7().simple()))
            .expect("generated ids are valid"),
    };
    let currency = Currency::parse(req.currency.as_deref().unwrap_or("USD"))
        .map_err(|e| invalid(ErrorCode::InvalidAuction, e.to_string()))?;
    let starting_price = money_field("starting_price", Some(&req.starting_price))?;
    let increment = match (req.increment, req.increment_table) {
        (Some(v), None) => IncrementPolicy::Fixed {
            amount: money_field("increment", Some(&v))?,
        },
        (None, Some(bands)) => IncrementPolicy::Table {
            bands: bands
                .into_iter()
                .map(|b| {
                    Ok(IncrementBand {
                        from: b.from,
                        increment: Money::new(b.increment).map_err(|e| {
                            invalid(ErrorCode::InvalidAmount, format!("increment_table: {e}"))
                        })?,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
        },
        (None, None) => {
            return Err(invalid(
                ErrorCode::InvalidAuction,
                "give an increment or an increment_table",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                ErrorCode::InvalidAuction,
                "give an increment or an increment_table, not both",
            ))
        }
    };
    let starts_at = req.starts_at.unwrap_or(now);
    let ends_at = match (req.ends_at, req.duration_ms) {
        (Some(end), None) => end,
        (None, Some(d)) if d > 0 => starts_at.saturating_add(d),
        (None, Some(_)) => {
            return Err(invalid(
                ErrorCode::InvalidAuction,
                "duration_ms must be positive",
            ))
        }
        _ => {
            return Err(invalid(
                ErrorCode::InvalidAuction,
                "give ends_at or duration_ms (exactly one)",
            ))
        }
    };
    if ends_at <= now {
        return Err(invalid(
            ErrorCode::InvalidAuction,
            "the auction must end in the future",
        ));
    }
    let spec = AuctionSpec {
        title: req.title.trim().to_string(),
        description: req.description,
        category: req.category,
        currency,
        starting_price,
        increment,
        starts_at,
        ends_at,
        reserve: optional_money("reserve", req.reserve.as_ref())?,
        buy_now: optional_money("buy_now", req.buy_now.as_ref())?,
        soft_close: req.soft_close.map(|s| SoftClose {
            window_ms: s.window_ms,
            extend_ms: s.extend_ms,
            max_extension_ms: s.max_extension_ms,
        }),
    };
    Auction::new_at(id, spec, now).map_err(|e| invalid(ErrorCode::InvalidAuction, e.to_string()))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    JsonBody(req): JsonBody<CreateAuction>,
) -> Result<(StatusCode, Json<AuctionView>), ApiError> {
    let now = state.engine.now();
    let auction = auction_from_request(req, now)?;
    let created = state.engine.create_auction(auction).await?;
    tracing::info!(auction = %created.id, by = %admin.id, "auction created");
    Ok((
        StatusCode::CREATED,
        Json(views::auction_view(&created, now, None)),
    ))
}

impl From<BidError> for ApiError {
    fn from(e: BidError) -> Self {
        ApiError::new(e.code, e.message)
    }
}

pub async fn bid(
    State(state): State<Arc<AppState>>,
    User(user): User,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<PlaceBid>,
) -> Result<(StatusCode, Json<BidResult>), ApiError> {
    let answer = bidding::place(
        &state,
        &user,
        RawBid {
            auction_id: &id,
            amount: Some(&req.amount),
            request_id: &req.request_id,
            expected_seq: req.expected_seq,
            kind: req.kind.as_deref(),
        },
    )
    .await?;
    Ok((answer.http_status, Json(answer.result)))
}

async fn admin_close(
    state: &AppState,
    admin: &crate::auth::Principal,
    id: &str,
    action: AdminAction,
) -> Result<Json<AuctionView>, ApiError> {
    let id = parse_id(id)?;
    match state.engine.admin_close(&id, action, &admin.id).await? {
        Ok(a) => {
            tracing::info!(auction = %id, by = %admin.id, ?action, "admin closed auction");
            Ok(Json(views::auction_view(&a, state.engine.now(), None)))
        }
        Err(_) => Err(ApiError::new(
            ErrorCode::Closed,
            "the auction has already ended",
        )),
    }
}

pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> Result<Json<AuctionView>, ApiError> {
    admin_close(&state, &admin, &id, AdminAction::Cancel).await
}

pub async fn end_early(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    Path(id): Path<String>,
) -> Result<Json<AuctionView>, ApiError> {
    admin_close(&state, &admin, &id, AdminAction::EndEarly).await
}

#[derive(Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    category: Option<String>,
    status: Option<String>,
    min_price: Option<i64>,
    max_price: Option<i64>,
    ending_within_ms: Option<i64>,
    sort: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

/// Page size of a search when the client gives none.
pub const SEARCH_DEFAULT_LIMIT: u32 = 24;
/// The longest free-text query read, in characters (the words past it are dropped).
const MAX_QUERY_CHARS: usize = 200;

/// Reads a search's query string into an archive query at `now`.
fn search_query(p: SearchParams, now: i64) -> Result<SearchQuery, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::InvalidQuery, m);
    let text = p.q.unwrap_or_default();
    let text: String = text.chars().take(MAX_QUERY_CHARS).collect();
    if let Some(c) = &p.category {
        if !gavel_core::valid_category(c) {
            return Err(bad(
                "category must be 1 to 40 characters of a-z, 0-9 and '-'".into(),
            ));
        }
    }
    let status = match p.status.as_deref() {
        None => SearchStatus::Any,
        Some(s) => s.parse().map_err(|()| {
            ApiError::new(
                ErrorCode::InvalidStatus,
                "status must be any, live, scheduled, open or closed",
            )
        })?,
    };
    let sort = match p.sort.as_deref() {
        None => SearchSort::Ending,
        Some(s) => s
            .parse()
            .map_err(|()| bad("sort must be ending, newest, price_asc or price_desc".into()))?,
    };
    for (name, v) in [("min_price", p.min_price), ("max_price", p.max_price)] {
        if v.is_some_and(|v| !(0..=gavel_protocol::MAX_AMOUNT).contains(&v)) {
            return Err(bad(format!(
                "{name} must be 0 to {} (minor units)",
                gavel_protocol::MAX_AMOUNT
            )));
        }
    }
    let ends_before = match p.ending_within_ms {
        None => None,
        Some(ms) if (1..=gavel_core::MAX_SPAN_MS).contains(&ms) => Some(now.saturating_add(ms)),
        Some(_) => {
            return Err(bad(format!(
                "ending_within_ms must be 1 to {}",
                gavel_core::MAX_SPAN_MS
            )))
        }
    };
    let limit = p.limit.unwrap_or(SEARCH_DEFAULT_LIMIT);
    if !(1..=search::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {}", search::MAX_LIMIT),
        ));
    }
    let offset = p.offset.unwrap_or(0);
    if offset.saturating_add(limit) > search::MAX_DEPTH {
        return Err(bad(format!(
            "offset + limit must be at most {}: narrow the search instead",
            search::MAX_DEPTH
        )));
    }
    Ok(SearchQuery {
        words: search::words(&text),
        category: p.category,
        status,
        min_price: p.min_price,
        max_price: p.max_price,
        ends_before,
        sort,
        now,
        offset,
        limit,
    })
}

/// `GET /api/search`: free text, category, status, price and end-time filters, sorted and
/// paged by the archive's indexes (see `gavel_archive::search`). A live auction is shown
/// as the engine holds it now; the filters and the order read the archived state, which in
/// distributed mode is as of the drainer's last write.
pub async fn search(
    State(state): State<Arc<AppState>>,
    Query(p): Query<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
    let now = state.engine.now();
    let mut query = search_query(p, now)?;
    let limit = query.limit;
    // One more than asked: whether another page follows.
    query.limit += 1;
    let mut found = state
        .archive
        .search(&query)
        .await
        .map_err(ApiError::internal)?;
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let mut auctions = Vec::with_capacity(found.len());
    for stored in found {
        let current = if stored.state.closing.is_none() {
            state.engine.auction(&stored.id).await?.unwrap_or(stored)
        } else {
            stored
        };
        auctions.push(views::auction_view(&current, now, None));
    }
    let next_offset =
        (more && query.offset + limit < search::MAX_DEPTH).then_some(query.offset + limit);
    Ok(Json(SearchResults {
        auctions,
        server_time: now,
        next_offset,
    }))
}

/// `GET /api/categories`: the categories of auctions not closed yet, with their counts.
pub async fn categories(
    State(state): State<Arc<AppState>>,
) -> Result<Json<CategoryList>, ApiError> {
    let categories = state
        .archive
        .categories()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|(category, live)| CategoryCount { category, live })
        .collect();
    Ok(Json(CategoryList { categories }))
}
