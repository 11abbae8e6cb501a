//! The history format: JSON Lines, one record per line, documented in
//! `docs/verification.md`.
//!
//! A history is what black-box clients saw: each operation with the client's send and
//! receive times and the server's answer exactly as it came back (or that none came). Wire
//! bodies are the protocol's own types (`gavel-protocol`), so a recorder stores answers
//! without translating them and the checker reads them the way a client would.

use gavel_core::BidKind;
use gavel_protocol::{AuctionView, BidHistory, BidResult, BidView, CreateAuction, ErrorDetail};
use serde::{Deserialize, Serialize};
use std::io::BufRead;

/// The format version this crate writes and reads.
pub const FORMAT: u32 = 1;

/// One line of a history.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The first line: what the recorder promises about its clock.
    History(Header),
    /// An admin created an auction (`POST /api/auctions`).
    Create(Create),
    /// One attempt at a bid (HTTP or WebSocket). Retries are further attempts with the
    /// same bidder and request id.
    Bid(Bid),
    /// `GET /api/auctions/{id}`, or one auction's entry of `GET /api/auctions`.
    View(View),
    /// A WebSocket `snapshot` answering a `subscribe`.
    Snapshot(Snapshot),
    /// `GET /api/auctions/{id}/bids`.
    HistoryPage(HistoryPage),
    /// `POST /api/auctions/{id}/cancel` or `/end`.
    Admin(Admin),
}

/// The header line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// The most the server's clock may differ from the recorder's, in ms. 0 when both read
    /// the same clock (one machine); a few ms covers rounding and the time between reading
    /// the clock and writing the request.
    pub clock_skew_ms: i64,
    /// Whether admin actions may have happened that the history does not record (an
    /// operator acting during a benchmark). Then the checker infers a cancel or early end
    /// from the closings answers show; otherwise every admin action must be in the history.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unrecorded_admin: bool,
    /// Who recorded it (free text, e.g. the command line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Which door an operation went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Http,
    Ws,
}

/// When and where an operation ran; common to every operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Call {
    pub auction: String,
    /// Which client ran it (free text; for reports).
    pub client: String,
    pub via: Via,
    /// Which server node it went to, when there are several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<usize>,
    /// When the client started sending the request: UTC microseconds on the recorder's
    /// clock.
    pub sent: i64,
    /// When the answer arrived (or the client gave up waiting); `null` when unknown.
    pub received: Option<i64>,
}

/// What came back.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer<T> {
    /// The body of a successful answer, or of a decided bid (any outcome).
    Ok(T),
    /// An error body (HTTP) or a WebSocket `error` message carrying the request's id.
    Error(ErrorDetail),
    /// No answer: a timeout, a dropped connection. The text says which.
    Lost(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Create {
    #[serde(flatten)]
    pub call: Call,
    pub request: CreateAuction,
    pub answer: Answer<AuctionView>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bid {
    #[serde(flatten)]
    pub call: Call,
    /// The signed-in user who bid (id and display name, from their session).
    pub bidder: gavel_protocol::UserRef,
    pub request_id: String,
    pub amount: i64,
    pub kind: BidKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<u64>,
    pub answer: Answer<BidResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct View {
    #[serde(flatten)]
    pub call: Call,
    pub answer: Answer<AuctionView>,
}

/// The parts of a `snapshot` message the checker reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotBody {
    pub auction: AuctionView,
    pub server_time: i64,
    pub recent_bids: Vec<BidView>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(flatten)]
    pub call: Call,
    pub answer: Answer<SnapshotBody>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistoryPage {
    #[serde(flatten)]
    pub call: Call,
    pub limit: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_seq: Option<u64>,
    pub answer: Answer<BidHistory>,
}

/// An admin action on a running auction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminAction {
    Cancel,
    EndEarly,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Admin {
    #[serde(flatten)]
    pub call: Call,
    pub action: AdminAction,
    pub answer: Answer<AuctionView>,
}

impl Record {
    /// The common part of an operation; `None` for the header.
    pub fn call(&self) -> Option<&Call> {
        match self {
            Record::History(_) => None,
            Record::Create(r) => Some(&r.call),
            Record::Bid(r) => Some(&r.call),
            Record::View(r) => Some(&r.call),
            Record::Snapshot(r) => Some(&r.call),
            Record::HistoryPage(r) => Some(&r.call),
            Record::Admin(r) => Some(&r.call),
        }
    }

    /// The record as one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("history records always serialize")
    }
}

/// A parsed history: the header and every operation with its line number (1-based).
#[derive(Clone, Debug)]
pub struct History {
    pub header: Header,
    pub records: Vec<(usize, Record)>,
}

/// Why a history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading the history: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: {source}")]
    Line {
        line: usize,
        source: serde_json::Error,
    },
    #[error("the first line must be the header {{\"type\":\"history\",\"format\":{FORMAT},...}}")]
    NoHeader,
    #[error("line {0}: a second header")]
    SecondHeader(usize),
    #[error("format {0} is not supported (this checker reads format {FORMAT})")]
    Format(u32),
}

impl History {
    /// Reads JSON Lines. Blank lines are skipped.
    pub fn read(input: impl BufRead) -> Result<History, HistoryError> {
        let mut header = None;
        let mut records = Vec::new();
        for (i, line) in input.lines().enumerate() {
            let line = line?;
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let record: Record = serde_json::from_str(&line)
                .map_err(|source| HistoryError::Line { line: n, source })?;
            match record {
                Record::History(h) if header.is_none() && records.is_empty() => {
                    if h.format != FORMAT {
                        return Err(HistoryError::Format(h.format));
                    }
                    header = Some(h);
                }
                Record::History(_) => return Err(HistoryError::SecondHeader(n)),
                _ if header.is_none() => return Err(HistoryError::NoHeader),
                r => records.push((n, r)),
            }
        }
        Ok(History {
            header: header.ok_or(HistoryError::NoHeader)?,
            records,
        })
    }

    /// Parses a history held in a string.
    pub fn parse(text: &str) -> Result<History, HistoryError> {
        History::read(text.as_bytes())
    }

    /// Builds a history from records in memory (line numbers as if written out).
    pub fn from_records(header: Header, records: impl IntoIterator<Item = Record>) -> History {
        History {
            header,
            records: records
                .into_iter()
                .enumerate()
                .map(|(i, r)| (i + 2, r))
                .collect(),
        }
    }

    /// The history as JSON Lines, header first.
    pub fn to_jsonl(&self) -> String {
        let mut out = Record::History(self.header.clone()).to_line();
        out.push('\n');
        for (_, r) in &self.records {
            out.push_str(&r.to_line());
            out.push('\n');
        }
        out
    }
}
