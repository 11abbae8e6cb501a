//! What the admin CLI prints: tables and details for people, JSON and CSV for programs;
//! times in UTC (RFC 3339), amounts as decimals of the auction's currency.

use super::money::format_amount;
use gavel_protocol::{AuctionView, BidView};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Pretty JSON with a final newline.
pub fn json<T: Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("views serialize");
    s.push('\n');
    s
}

/// `ms` since the Unix epoch as RFC 3339 UTC with milliseconds (`2026-12-02T08:00:00.000Z`).
pub fn time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// A time given on the command line: RFC 3339 (`2026-12-24T18:00:00Z`,
/// `2026-12-24T19:00:00+01:00`) or Unix milliseconds. Returns Unix milliseconds.
pub fn parse_time(flag: &str, raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw
            .parse()
            .map_err(|_| format!("--{flag}: {raw:?} is too large"));
    }
    let t = OffsetDateTime::parse(raw, &Rfc3339).map_err(|e| {
        format!("--{flag}: {raw:?} is not a time: give RFC 3339 (2026-12-24T18:00:00Z) or Unix milliseconds ({e})")
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("--{flag}: {raw:?} is out of range"))
}

fn money(v: i64, currency: &str) -> String {
    format!("{} {currency}", format_amount(v, currency))
}

/// Columns padded to their widest cell; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut out = String::new();
        for (i, (cell, w)) in cells.into_iter().zip(&widths).enumerate() {
            if i + 1 == n {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// One auction per line.
pub fn auction_table(auctions: &[AuctionView]) -> String {
    if auctions.is_empty() {
        return "no auctions\n".to_string();
    }
    let rows: Vec<Vec<String>> = auctions
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                status(a),
                a.price
                    .map(|p| money(p, &a.currency))
                    .unwrap_or_else(|| "-".into()),
                a.bid_count.to_string(),
                time(a.ends_at),
                a.title.clone(),
            ]
        })
        .collect();
    table(
        &["ID", "STATUS", "PRICE", "BIDS", "ENDS (UTC)", "TITLE"],
        &rows,
    )
}

fn status(a: &AuctionView) -> String {
    match &a.closing {
        Some(c) => format!("closed ({})", c.reason),
        None => a.status.clone(),
    }
}

/// Every field of one auction, one per line.
pub fn auction_details(a: &AuctionView) -> String {
    let c = a.currency.as_str();
    let mut rows: Vec<(&str, String)> = vec![
        ("id", a.id.clone()),
        ("title", a.title.clone()),
        ("status", status(a)),
        ("currency", c.to_string()),
        ("starting price", money(a.starting_price, c)),
        (
            "price",
            a.price
                .map(|p| money(p, c))
                .unwrap_or_else(|| "- (no bid yet)".into()),
        ),
        (
            "leader",
            a.leader
                .as_ref()
                .map(|l| format!("{} ({})", l.name, l.id))
                .unwrap_or_else(|| "-".into()),
        ),
        ("bids", a.bid_count.to_string()),
        ("increment", money(a.increment, c)),
        ("minimum bid", money(a.min_bid, c)),
        (
            "reserve",
            match (a.has_reserve, a.reserve_met) {
                (false, _) => "none".into(),
                (true, Some(true)) => "met".into(),
                _ => "not met".into(),
            },
        ),
        (
            "buy now",
            a.buy_now
                .map(|b| {
                    let open = if a.buy_now_available {
                        ""
                    } else {
                        " (no longer available)"
                    };
                    format!("{}{open}", money(b, c))
                })
                .unwrap_or_else(|| "none".into()),
        ),
        ("starts", time(a.starts_at)),
        ("ends", time(a.ends_at)),
    ];
    if a.ends_at != a.original_ends_at {
        rows.push(("original end", time(a.original_ends_at)));
    }
    if let Some(s) = &a.soft_close {
        rows.push((
            "soft close",
            format!(
                "bids in the last {} s extend by {} s{}",
                s.window_ms / 1000,
                s.extend_ms / 1000,
                s.max_extension_ms
                    .map(|m| format!(", at most {} s", m / 1000))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(cl) = &a.closing {
        rows.push(("closed", format!("{} ({})", time(cl.closed_at), cl.reason)));
        rows.push((
            "winner",
            cl.winner
                .as_ref()
                .map(|w| format!("{} ({})", w.name, w.id))
                .unwrap_or_else(|| "none".into()),
        ));
        rows.push((
            "final price",
            cl.final_price
                .map(|p| money(p, c))
                .unwrap_or_else(|| "-".into()),
        ));
    }
    if let Some(c) = &a.category {
        rows.push(("category", c.clone()));
    }
    if !a.description.is_empty() {
        rows.push(("description", a.description.clone()));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

/// One exported bid (the JSON export's objects and the CSV's columns, in this order).
#[derive(Serialize)]
struct ExportedBid<'a> {
    auction_id: &'a str,
    seq: u64,
    /// RFC 3339 UTC.
    time: String,
    /// Unix milliseconds (server UTC).
    at_ms: i64,
    bidder_id: &'a str,
    bidder_name: &'a str,
    /// Integer minor units.
    amount_minor: i64,
    /// Decimal in the currency.
    amount: String,
    currency: &'a str,
    kind: &'a str,
}

fn exported<'a>(a: &'a AuctionView, b: &'a BidView) -> ExportedBid<'a> {
    ExportedBid {
        auction_id: &a.id,
        seq: b.seq,
        time: time(b.at),
        at_ms: b.at,
        bidder_id: &b.bidder.id,
        bidder_name: &b.bidder.name,
        amount_minor: b.amount,
        amount: format_amount(b.amount, &a.currency),
        currency: &a.currency,
        kind: &b.kind,
    }
}

pub fn bids_json(a: &AuctionView, bids: &[BidView]) -> String {
    json(&bids.iter().map(|b| exported(a, b)).collect::<Vec<_>>())
}

/// RFC 4180 CSV with a header line.
pub fn bids_csv(a: &AuctionView, bids: &[BidView]) -> String {
    let mut out = String::from(
        "auction_id,seq,time,at_ms,bidder_id,bidder_name,amount_minor,amount,currency,kind\r\n",
    );
    for b in bids {
        let e = exported(a, b);
        let cells = [
            e.auction_id.to_string(),
            e.seq.to_string(),
            e.time,
            e.at_ms.to_string(),
            e.bidder_id.to_string(),
            e.bidder_name.to_string(),
            e.amount_minor.to_string(),
            e.amount,
            e.currency.to_string(),
            e.kind.to_string(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A CSV cell, quoted when it holds a comma, quote or line break (quotes doubled). A cell
/// starting with `=`, `+`, `-` or `@` (a spreadsheet formula) is prefixed with `'`, so a
/// bidder's display name cannot run as a formula when the export is opened.
fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) && v.parse::<f64>().is_err() {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_rfc3339_or_milliseconds_and_print_in_utc() {
        assert_eq!(
            parse_time("t", "2026-12-24T18:00:00Z"),
            Ok(1_798_135_200_000)
        );
        assert_eq!(
            parse_time("t", "2026-12-24T19:00:00+01:00"),
            Ok(1_798_135_200_000)
        );
        assert_eq!(parse_time("t", "1798135200000"), Ok(1_798_135_200_000));
        assert!(parse_time("t", "tomorrow").is_err());
        assert!(parse_time("t", "2026-12-24").is_err());
        assert_eq!(time(1_798_135_200_123), "2026-12-24T18:00:00.123Z");
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("-5"), "-5");
    }

    #[test]
    fn tables_align_their_columns() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        );
        assert_eq!(t, "A     BB\nlong  x\ns     y\n");
    }
}
