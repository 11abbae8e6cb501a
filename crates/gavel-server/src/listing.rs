//! Pages of auctions for `GET /api/auctions` and the lobby, read from indexes.
//!
//! Two sources, each ordered by an index: the live auctions (scheduled or open) by current
//! end time come from the engine ([`Engine::list_live`]); the closed ones, most recently
//! closed first, from the archive ([`Archive::closed_auctions`]). Without a status filter a
//! listing runs through the live ones first and then the closed ones, and the cursor
//! remembers which part it is in. Nothing here reads every auction.

use gavel_archive::Archive;
use gavel_core::{Auction, AuctionId, Millis, Status};
use gavel_engine::{Cause, Engine, EngineError};

/// Page size when the client gives none.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest page a client may ask for.
pub const MAX_LIMIT: usize = 200;
/// Live auctions read at most per request when a status filter skips some: a page may then
/// end short (even empty) with a cursor to go on from.
const MAX_SCAN: usize = 5_000;

/// Which auctions a listing holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Live first (by end time), then closed (most recently closed first).
    All,
    /// Scheduled or open.
    Live,
    Scheduled,
    Open,
    Closed,
}

impl Filter {
    /// From the `status` query parameter (`None`: every auction).
    pub fn parse(status: Option<&str>) -> Option<Filter> {
        Some(match status {
            None => Filter::All,
            Some("live") => Filter::Live,
            Some("scheduled") => Filter::Scheduled,
            Some("open") => Filter::Open,
            Some("closed") => Filter::Closed,
            Some(_) => return None,
        })
    }

    fn keeps(self, a: &Auction, now: Millis) -> bool {
        match self {
            Filter::All => true,
            Filter::Live => a.status_at(now) != Status::Closed,
            Filter::Scheduled => a.status_at(now) == Status::Scheduled,
            Filter::Open => a.status_at(now) == Status::Open,
            Filter::Closed => a.state.closing.is_some(),
        }
    }

    fn has_live_part(self) -> bool {
        self != Filter::Closed
    }

    fn has_closed_part(self) -> bool {
        matches!(self, Filter::All | Filter::Closed)
    }
}

/// Where the next page starts. On the wire an opaque string: `l~<ends_at>~<id>` in the live
/// part, `c~` at the start of the closed part, `c~<closed_at>~<id>` inside it (`~` never
/// occurs in an id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    Live(Millis, AuctionId),
    Closed(Option<(Millis, AuctionId)>),
}

impl Cursor {
    pub fn parse(raw: &str) -> Option<Cursor> {
        let mut parts = raw.splitn(3, '~');
        let part = parts.next()?;
        let at = parts.next()?;
        let id = parts.next();
        let position = || -> Option<(Millis, AuctionId)> {
            Some((at.parse().ok()?, AuctionId::parse(id?).ok()?))
        };
        match (part, at, id) {
            ("l", _, Some(_)) => position().map(|(at, id)| Cursor::Live(at, id)),
            ("c", "", None) => Some(Cursor::Closed(None)),
            ("c", _, Some(_)) => position().map(|p| Cursor::Closed(Some(p))),
            _ => None,
        }
    }

    pub fn encode(&self) -> String {
        match self {
            Cursor::Live(at, id) => format!("l~{at}~{id}"),
            Cursor::Closed(None) => "c~".into(),
            Cursor::Closed(Some((at, id))) => format!("c~{at}~{id}"),
        }
    }
}

/// One page, and where the next one starts (`None`: this was the last).
#[derive(Debug)]
pub struct Page {
    pub auctions: Vec<Auction>,
    pub next: Option<Cursor>,
}

/// Why a listing could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The cursor is not one this listing handed out (or belongs to another filter).
    #[error("the cursor is not valid for this listing")]
    Cursor,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

fn archive_error(e: gavel_archive::ArchiveError) -> ListError {
    ListError::Engine(EngineError::Unavailable(Cause::new("archive", e)))
}

fn closed_position(a: &Auction) -> Option<(Millis, AuctionId)> {
    a.state
        .closing
        .as_ref()
        .map(|c| (c.closed_at, a.id.clone()))
}

/// Reads one page of at most `limit` auctions.
pub async fn page(
    engine: &dyn Engine,
    archive: &dyn Archive,
    filter: Filter,
    cursor: Option<Cursor>,
    limit: usize,
    now: Millis,
) -> Result<Page, ListError> {
    let mut out = Vec::with_capacity(limit.min(MAX_LIMIT));
    let closed_from = match cursor {
        Some(Cursor::Live(..)) if !filter.has_live_part() => return Err(ListError::Cursor),
        Some(Cursor::Closed(_)) if !filter.has_closed_part() => return Err(ListError::Cursor),
        Some(Cursor::Closed(from)) => from,
        live_or_start => {
            let mut after = match live_or_start {
                Some(Cursor::Live(at, id)) => Some((at, id)),
                _ => None,
            };
            if filter.has_live_part() {
                let mut scanned = 0;
                loop {
                    // One more than needed: whether anything follows this page.
                    let want = limit + 1 - out.len();
                    let batch = engine.list_live(after.clone(), want).await?;
                    let exhausted = batch.len() < want;
                    for a in batch {
                        if out.len() == limit {
                            // Something follows: the next page starts after the last one.
                            let next = after.map(|(at, id)| Cursor::Live(at, id));
                            return Ok(Page {
                                auctions: out,
                                next,
                            });
                        }
                        after = Some((a.state.ends_at, a.id.clone()));
                        scanned += 1;
                        if filter.keeps(&a, now) {
                            out.push(a);
                        }
                    }
                    if exhausted {
                        break;
                    }
                    if scanned >= MAX_SCAN {
                        let next = after.map(|(at, id)| Cursor::Live(at, id));
                        return Ok(Page {
                            auctions: out,
                            next,
                        });
                    }
                }
            }
            if !filter.has_closed_part() {
                return Ok(Page {
                    auctions: out,
                    next: None,
                });
            }
            if out.len() == limit {
                let any_closed = !archive
                    .closed_auctions(None, 1)
                    .await
                    .map_err(archive_error)?
                    .is_empty();
                return Ok(Page {
                    auctions: out,
                    next: any_closed.then_some(Cursor::Closed(None)),
                });
            }
            None
        }
    };
    let room = limit - out.len();
    let mut closed = archive
        .closed_auctions(closed_from, u32::try_from(room + 1).unwrap_or(u32::MAX))
        .await
        .map_err(archive_error)?;
    let more = closed.len() > room;
    closed.truncate(room);
    let next = if more {
        closed
            .last()
            .and_then(closed_position)
            .map(|p| Cursor::Closed(Some(p)))
    } else {
        None
    };
    out.extend(closed);
    Ok(Page {
        auctions: out,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_what_they_wrote() {
        let id = AuctionId::parse("a-1.b:c_d").unwrap();
        for c in [
            Cursor::Live(1_767_225_600_000, id.clone()),
            Cursor::Closed(None),
            Cursor::Closed(Some((-5, id.clone()))),
        ] {
            assert_eq!(Cursor::parse(&c.encode()), Some(c));
        }
    }

    #[test]
    fn a_cursor_that_was_not_handed_out_is_refused() {
        for raw in [
            "",
            "l",
            "l~",
            "l~12",
            "l~x~a",
            "l~12~",
            "l~12~a~b",
            "c~x~a",
            "c~12",
            "x~1~a",
            "c~~a",
            "l~12~bad id",
        ] {
            assert_eq!(Cursor::parse(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn statuses_read_as_filters() {
        assert_eq!(Filter::parse(None), Some(Filter::All));
        assert_eq!(Filter::parse(Some("open")), Some(Filter::Open));
        assert_eq!(Filter::parse(Some("live")), Some(Filter::Live));
        assert_eq!(Filter::parse(Some("OPEN")), None);
        assert_eq!(Filter::parse(Some("ended")), None);
    }
}
