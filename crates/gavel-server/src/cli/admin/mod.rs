//! The admin CLI: `gavel auctions create|list|show|cancel|end` and `gavel bids export`,
//! talking to a running server over its HTTP API with the admin token. Readable tables by
//! default, `--json` for scripts; exit codes in [`client::exit`].

mod client;
pub mod money;
mod output;

use clap::{Args, Subcommand, ValueEnum};
use client::{AdminError, Client};
use gavel_core::{AuctionId, Currency};
use gavel_protocol::{AuctionList, AuctionView, BidHistory, CreateAuction, SoftCloseView};
use std::path::PathBuf;

/// Where the server is and how to sign in to it (every admin command takes these).
#[derive(Args, Debug)]
pub struct Connection {
    /// The Gavel server's base URL.
    #[arg(
        long,
        env = "GAVEL_SERVER",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub server: String,
    /// The server's admin token (prefer the environment variable: a flag shows in `ps`).
    #[arg(long, env = "GAVEL_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,
    /// Print JSON (the server's own objects) instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AuctionsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: AuctionsCommand,
}

#[derive(Subcommand, Debug)]
pub enum AuctionsCommand {
    /// Create an auction (amounts as decimals in its currency, e.g. --starting-price 12.50).
    Create(Box<CreateArgs>),
    /// List auctions: live ones by end time, then closed ones, newest first.
    List(ListArgs),
    /// Show one auction.
    Show {
        /// The auction's id.
        id: String,
    },
    /// Cancel an auction: it closes with no winner.
    Cancel {
        /// The auction's id.
        id: String,
    },
    /// End an auction now: the current leader wins (if the reserve is met).
    End {
        /// The auction's id.
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Title shown to bidders.
    #[arg(long)]
    pub title: String,
    /// Longer text shown with the auction.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Catalogue section, a slug such as `watches` (1–40 of a-z, 0-9, -).
    #[arg(long)]
    pub category: Option<String>,
    /// ISO 4217 code; amounts are read with its number of decimals (USD 2, JPY 0, KWD 3).
    #[arg(long, default_value = "USD")]
    pub currency: String,
    /// Opening price, e.g. 12.50.
    #[arg(long, allow_hyphen_values = true)]
    pub starting_price: String,
    /// Fixed bid increment, e.g. 0.50.
    #[arg(long, allow_hyphen_values = true)]
    pub increment: String,
    /// Lowest price that sells (hidden from bidders).
    #[arg(long, allow_hyphen_values = true)]
    pub reserve: Option<String>,
    /// Price at which a bidder may buy at once.
    #[arg(long, allow_hyphen_values = true)]
    pub buy_now: Option<String>,
    /// Start: RFC 3339 (2026-12-24T18:00:00Z) or Unix milliseconds. Default: now.
    #[arg(long)]
    pub starts_at: Option<String>,
    /// End: RFC 3339 or Unix milliseconds. Give this or --duration.
    #[arg(long, conflicts_with = "duration")]
    pub ends_at: Option<String>,
    /// Length from the start: a number and a unit (ms, s, m, h, d), e.g. 2h.
    #[arg(long)]
    pub duration: Option<String>,
    /// Soft close: a bid this close to the end (e.g. 2m)...
    #[arg(long, requires = "soft_close_extend")]
    pub soft_close_window: Option<String>,
    /// ...moves the end this much later (e.g. 2m)...
    #[arg(long, requires = "soft_close_window")]
    pub soft_close_extend: Option<String>,
    /// ...at most this much in total (e.g. 30m; default: no cap).
    #[arg(long, requires = "soft_close_window")]
    pub soft_close_max: Option<String>,
    /// The auction's id (1–64 of A-Za-z0-9-_.:); generated when absent.
    #[arg(long)]
    pub id: Option<String>,
}

/// The listing filters of `GET /api/auctions?status=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListStatus {
    Live,
    Scheduled,
    Open,
    Closed,
}

impl ListStatus {
    fn as_str(self) -> &'static str {
        match self {
            ListStatus::Live => "live",
            ListStatus::Scheduled => "scheduled",
            ListStatus::Open => "open",
            ListStatus::Closed => "closed",
        }
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// live (scheduled and open), scheduled, open or closed. Default: all.
    #[arg(long, value_enum)]
    pub status: Option<ListStatus>,
    /// At most this many auctions (following the server's pages).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Args, Debug)]
pub struct BidsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: BidsCommand,
}

#[derive(Subcommand, Debug)]
pub enum BidsCommand {
    /// Export an auction's accepted bids (its public history), oldest first.
    Export(ExportArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The auction's id.
    #[arg(long)]
    pub auction: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Only bids placed at or after this time (RFC 3339 or Unix milliseconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Only bids placed before this time (RFC 3339 or Unix milliseconds).
    #[arg(long)]
    pub until: Option<String>,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Runs `gavel auctions …` and returns the exit code.
pub async fn run_auctions(args: AuctionsArgs) -> i32 {
    finish(auctions(args).await)
}

/// Runs `gavel bids …` and returns the exit code.
pub async fn run_bids(args: BidsArgs) -> i32 {
    finish(bids(args).await)
}

fn finish(result: Result<String, AdminError>) -> i32 {
    match result {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn bad(message: impl Into<String>) -> AdminError {
    AdminError::BadInput(message.into())
}

fn auction_path(id: &str) -> Result<String, AdminError> {
    AuctionId::parse(id).map_err(|e| bad(format!("auction id {id:?}: {e}")))?;
    Ok(format!("/api/auctions/{id}"))
}

async fn auctions(args: AuctionsArgs) -> Result<String, AdminError> {
    let AuctionsArgs { conn, command } = args;
    let client = Client::new(&conn.server, conn.admin_token)?;
    let json = conn.json;
    match command {
        AuctionsCommand::Create(c) => {
            let req = create_request(&c)?;
            client.require_token()?;
            let a: AuctionView = client.post("/api/auctions", &req).await?;
            Ok(if json {
                output::json(&a)
            } else {
                format!("created auction {}\n{}", a.id, output::auction_details(&a))
            })
        }
        AuctionsCommand::List(l) => {
            if l.limit == 0 {
                return Err(bad("--limit must be at least 1"));
            }
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            while all.len() < l.limit {
                let page_size = (l.limit - all.len()).min(200);
                let mut path = format!("/api/auctions?limit={page_size}");
                if let Some(s) = l.status {
                    path.push_str(&format!("&status={}", s.as_str()));
                }
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={}", query_value(c)?));
                }
                let page: AuctionList = client.get(&path).await?;
                all.extend(page.auctions);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            all.truncate(l.limit);
            Ok(if json {
                output::json(&all)
            } else {
                output::auction_table(&all)
            })
        }
        AuctionsCommand::Show { id } => {
            let a: AuctionView = client.get(&auction_path(&id)?).await?;
            Ok(if json {
                output::json(&a)
            } else {
                output::auction_details(&a)
            })
        }
        AuctionsCommand::Cancel { id } => close(&client, &id, "cancel", "cancelled", json).await,
        AuctionsCommand::End { id } => close(&client, &id, "end", "ended", json).await,
    }
}

/// `POST /api/auctions/{id}/cancel` or `/end`.
async fn close(
    client: &Client,
    id: &str,
    action: &str,
    done: &str,
    json: bool,
) -> Result<String, AdminError> {
    let path = format!("{}/{action}", auction_path(id)?);
    client.require_token()?;
    let a: AuctionView = client.post(&path, &serde_json::json!({})).await?;
    Ok(if json {
        output::json(&a)
    } else {
        format!("{done} auction {}\n{}", a.id, output::auction_details(&a))
    })
}

/// A query-string value: listing statuses and cursors are URL-safe; anything else is a
/// typo and refused rather than encoded.
fn query_value(v: &str) -> Result<&str, AdminError> {
    if v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    {
        Ok(v)
    } else {
        Err(bad(format!("{v:?} is not a valid value here")))
    }
}

/// The create request, with every amount and time converted and checked locally.
fn create_request(c: &CreateArgs) -> Result<CreateAuction, AdminError> {
    let currency = Currency::parse(&c.currency)
        .map_err(|e| bad(format!("--currency: {e}")))?
        .as_str()
        .to_string();
    let amount = |flag: &str, raw: &str| -> Result<serde_json::Value, AdminError> {
        money::parse_amount(raw, &currency)
            .map(serde_json::Value::from)
            .map_err(|e| bad(format!("--{flag}: {e}")))
    };
    let optional = |flag: &str, raw: &Option<String>| -> Result<_, AdminError> {
        raw.as_deref().map(|r| amount(flag, r)).transpose()
    };
    if c.title.trim().is_empty() {
        return Err(bad("--title must not be empty"));
    }
    let duration_ms = |flag: &str, raw: &str| -> Result<i64, AdminError> {
        let d = crate::config::parse_duration(raw).map_err(|e| bad(format!("--{flag}: {e}")))?;
        i64::try_from(d.as_millis()).map_err(|_| bad(format!("--{flag}: {raw:?} is too long")))
    };
    let (ends_at, duration) = match (&c.ends_at, &c.duration) {
        (Some(e), None) => (Some(output::parse_time("ends-at", e).map_err(bad)?), None),
        (None, Some(d)) => {
            let ms = duration_ms("duration", d)?;
            if ms <= 0 {
                return Err(bad("--duration must be more than zero"));
            }
            (None, Some(ms))
        }
        _ => return Err(bad("give --ends-at or --duration")),
    };
    let soft_close = match &c.soft_close_window {
        Some(w) => Some(SoftCloseView {
            window_ms: duration_ms("soft-close-window", w)?,
            extend_ms: duration_ms(
                "soft-close-extend",
                c.soft_close_extend.as_deref().unwrap_or_default(),
            )?,
            max_extension_ms: c
                .soft_close_max
                .as_deref()
                .map(|m| duration_ms("soft-close-max", m))
                .transpose()?,
        }),
        None => None,
    };
    if let Some(id) = &c.id {
        AuctionId::parse(id).map_err(|e| bad(format!("--id {id:?}: {e}")))?;
    }
    Ok(CreateAuction {
        id: c.id.clone(),
        title: c.title.clone(),
        description: c.description.clone(),
        category: c.category.clone(),
        currency: Some(currency.clone()),
        starting_price: amount("starting-price", &c.starting_price)?,
        increment: Some(amount("increment", &c.increment)?),
        increment_table: None,
        starts_at: c
            .starts_at
            .as_deref()
            .map(|s| output::parse_time("starts-at", s))
            .transpose()
            .map_err(bad)?,
        ends_at,
        duration_ms: duration,
        reserve: optional("reserve", &c.reserve)?,
        buy_now: optional("buy-now", &c.buy_now)?,
        soft_close,
    })
}

async fn bids(args: BidsArgs) -> Result<String, AdminError> {
    let BidsArgs { conn, command } = args;
    let BidsCommand::Export(e) = command;
    let client = Client::new(&conn.server, conn.admin_token)?;
    let since = e
        .since
        .as_deref()
        .map(|s| output::parse_time("since", s))
        .transpose()
        .map_err(bad)?;
    let until = e
        .until
        .as_deref()
        .map(|s| output::parse_time("until", s))
        .transpose()
        .map_err(bad)?;
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Err(bad("--since must be before --until"));
        }
    }
    let path = auction_path(&e.auction)?;
    let auction: AuctionView = client.get(&path).await?;
    // The history comes newest first, a page at a time; times only grow with seq, so the
    // walk stops at the first page that reaches back before --since.
    let mut bids = Vec::new();
    let mut before: Option<u64> = None;
    'pages: loop {
        let mut page_path = format!("{path}/bids?limit=200");
        if let Some(b) = before {
            page_path.push_str(&format!("&before_seq={b}"));
        }
        let page: BidHistory = client.get(&page_path).await?;
        for b in page.bids {
            if since.is_some_and(|s| b.at < s) {
                break 'pages;
            }
            if until.is_none_or(|u| b.at < u) {
                bids.push(b);
            }
        }
        match page.next_before_seq {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    bids.reverse();
    let text = match e.format {
        ExportFormat::Csv => output::bids_csv(&auction, &bids),
        ExportFormat::Json => output::bids_json(&auction, &bids),
    };
    match &e.output {
        Some(file) => {
            std::fs::write(file, &text)
                .map_err(|err| AdminError::Output(format!("{}: {err}", file.display())))?;
            Ok(if conn.json {
                String::new()
            } else {
                format!(
                    "exported {} bid(s) of auction {} to {}\n",
                    bids.len(),
                    auction.id,
                    file.display()
                )
            })
        }
        None => Ok(text),
    }
}
