//! `gavel verify`: checks an auction's verifiable log end to end, and receipts against it
//! (`docs/verification.md`).
//!
//! The log comes from a server (`--server`, every page of `GET /api/auctions/{id}/log`) or
//! from a file (`--log`, a `LogPage` with every entry, as `--save` writes it). The public
//! key comes from `--public-key` or, with `--server`, from `GET /api/keys`. Everything is
//! recomputed here: each entry's hash from its content and its predecessor (SHA-256), the
//! signed head, each receipt's signature and its entry. The first thing wrong is reported
//! with the entry's seq, and the exit status is non-zero.

use crate::signing::{head_message, key_id, parse_public_key, verify_signature};
use anyhow::{bail, Context};
use clap::Args;
use ed25519_dalek::VerifyingKey;
use gavel_core::chain::{self, ChainHash, LogEntry, LogKind};
use gavel_core::{AuctionId, BidderId, CloseReason, Currency, Money};
use gavel_protocol::{KeysResponse, LogEntryView, LogPage, Receipt};
use std::path::PathBuf;

#[derive(Args, Clone, Debug)]
pub struct VerifyArgs {
    /// The auction whose log to check.
    #[arg(long, env = "GAVEL_VERIFY_AUCTION")]
    pub auction: String,

    /// Fetch the log (and, without --public-key, the key) from this Gavel server, e.g.
    /// `http://127.0.0.1:3000`.
    #[arg(long, env = "GAVEL_VERIFY_SERVER", conflicts_with = "log")]
    pub server: Option<String>,

    /// Read the log from this file (a `LogPage` with every entry, as --save writes it).
    #[arg(long, env = "GAVEL_VERIFY_LOG")]
    pub log: Option<PathBuf>,

    /// The server's Ed25519 public key (64 hex digits, from `GET /api/keys`). Required
    /// with --log; with --server it pins the key instead of asking the server for it.
    #[arg(long, env = "GAVEL_VERIFY_PUBLIC_KEY")]
    pub public_key: Option<String>,

    /// A receipt to check against the log: a file holding a receipt, a bid result with
    /// one, or an array of either. May be given several times.
    #[arg(long = "receipt", env = "GAVEL_VERIFY_RECEIPT", value_delimiter = ',')]
    pub receipts: Vec<PathBuf>,

    /// Write the fetched log to this file (for a later `--log` check).
    #[arg(long, env = "GAVEL_VERIFY_SAVE")]
    pub save: Option<PathBuf>,
}

/// What a check found: `Ok` lines to print, or the first failure.
#[derive(Debug)]
pub struct Report {
    pub lines: Vec<String>,
    pub failure: Option<String>,
}

/// Runs the command; `Ok(true)` when everything verified.
pub async fn run(args: VerifyArgs) -> anyhow::Result<bool> {
    let id = AuctionId::parse(&args.auction).context("--auction")?;
    let (page, fetched_key) = match (&args.server, &args.log) {
        (Some(server), _) => {
            let base = server.trim_end_matches('/');
            let page = fetch_log(base, &id).await?;
            let key = if args.public_key.is_none() {
                Some(fetch_key(base).await?)
            } else {
                None
            };
            (page, key)
        }
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let page: LogPage = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a log page", file.display()))?;
            (page, None)
        }
        (None, None) => bail!("give --server URL or --log FILE"),
    };
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_string_pretty(&page)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let key = match (&args.public_key, fetched_key) {
        (Some(hex), _) => parse_public_key(hex).map_err(anyhow::Error::msg)?,
        (None, Some(k)) => k,
        (None, None) => bail!("--log needs --public-key (the server's key, from GET /api/keys)"),
    };
    let mut receipts = Vec::new();
    for path in &args.receipts {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let found =
            receipts_in(&text).with_context(|| format!("{} holds no receipt", path.display()))?;
        receipts.extend(found);
    }
    let report = check(&id, &page, &key, &receipts);
    for line in &report.lines {
        println!("{line}");
    }
    match &report.failure {
        None => Ok(true),
        Some(f) => {
            println!("FAILED: {f}");
            Ok(false)
        }
    }
}

pub async fn fetch_log(base: &str, id: &AuctionId) -> anyhow::Result<LogPage> {
    let client = reqwest::Client::new();
    let mut after = 0u64;
    let mut all: Option<LogPage> = None;
    loop {
        let url = format!("{base}/api/auctions/{id}/log?after_seq={after}&limit=1000");
        let resp = client.get(&url).send().await.with_context(|| url.clone())?;
        if !resp.status().is_success() {
            bail!("{url}: HTTP {}: {}", resp.status(), resp.text().await?);
        }
        let page: LogPage = resp.json().await.with_context(|| url.clone())?;
        let next = page.next_after_seq;
        match &mut all {
            None => all = Some(page),
            Some(a) => {
                a.entries.extend(page.entries);
                a.head = page.head;
            }
        }
        match next {
            Some(n) if n > after => after = n,
            _ => break,
        }
    }
    let mut page = all.expect("at least one page");
    page.next_after_seq = None;
    Ok(page)
}

pub async fn fetch_key(base: &str) -> anyhow::Result<VerifyingKey> {
    let url = format!("{base}/api/keys");
    let keys: KeysResponse = reqwest::get(&url)
        .await
        .with_context(|| url.clone())?
        .json()
        .await
        .with_context(|| url.clone())?;
    let k = keys.keys.first().context("the server lists no key")?;
    parse_public_key(&k.public_key).map_err(anyhow::Error::msg)
}

/// The receipts in a file: a receipt, a bid result carrying one, or an array of either.
pub fn receipts_in(text: &str) -> anyhow::Result<Vec<Receipt>> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    let items = match v {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    let mut out = Vec::new();
    for item in items {
        let r = item.get("receipt").cloned().unwrap_or(item);
        out.push(serde_json::from_value(r)?);
    }
    if out.is_empty() {
        bail!("no receipt");
    }
    Ok(out)
}

/// An entry as the server sent it, read back into the canonical form.
fn parse_entry(v: &LogEntryView) -> Result<(LogEntry, ChainHash), String> {
    let bidder = |s: &Option<String>| {
        s.as_ref()
            .map(BidderId::parse)
            .transpose()
            .map_err(|e| e.to_string())
    };
    let money = |m: Option<i64>| m.map(Money::new).transpose().map_err(|e| e.to_string());
    Ok((
        LogEntry {
            seq: v.seq,
            at: v.at,
            kind: v.kind.parse::<LogKind>().map_err(|e| e.to_string())?,
            bidder: bidder(&v.bidder)?,
            amount: money(v.amount)?,
            price: money(v.price)?,
            leader: bidder(&v.leader)?,
            bid_count: v.bid_count,
            ends_at: v.ends_at,
            extended: v.extended,
            close_reason: v
                .close_reason
                .as_deref()
                .map(str::parse::<CloseReason>)
                .transpose()
                .map_err(|e| e.to_string())?,
            winner: bidder(&v.winner)?,
            final_price: money(v.final_price)?,
            currency: v
                .currency
                .as_deref()
                .map(Currency::parse)
                .transpose()
                .map_err(|e| e.to_string())?,
            starting_price: money(v.starting_price)?,
            starts_at: v.starts_at,
            buy_now: money(v.buy_now)?,
        },
        ChainHash::parse(&v.hash).map_err(|e| format!("hash: {e}"))?,
    ))
}

/// The whole check, on data already in hand.
pub fn check(id: &AuctionId, page: &LogPage, key: &VerifyingKey, receipts: &[Receipt]) -> Report {
    let mut lines = Vec::new();
    let fail = |lines: Vec<String>, what: String| Report {
        lines,
        failure: Some(what),
    };
    if page.auction_id != id.as_str() {
        return fail(
            lines,
            format!("the log is of auction {}, not {id}", page.auction_id),
        );
    }
    let mut entries = Vec::with_capacity(page.entries.len());
    for v in &page.entries {
        match parse_entry(v) {
            Ok(e) => entries.push(e),
            Err(e) => return fail(lines, format!("entry seq {}: unreadable: {e}", v.seq)),
        }
    }
    let last = match chain::verify_log(id, entries.iter().cloned()) {
        Ok(last) => last,
        Err(broken) => return fail(lines, broken.to_string()),
    };
    let count = entries.len() as u64;
    lines.push(format!(
        "log of {id}: {count} entries, every hash links (seq 1 to {count})"
    ));
    let Some(head) = &page.head else {
        return fail(lines, "the log carries no signed head".into());
    };
    let kid = key_id(key);
    if head.key_id != kid {
        return fail(
            lines,
            format!(
                "the head is signed by key {}, not by the server's key {kid}",
                head.key_id
            ),
        );
    }
    let head_hash = match ChainHash::parse(&head.hash) {
        Ok(h) => h,
        Err(e) => return fail(lines, format!("the signed head's hash: {e}")),
    };
    if let Err(e) = verify_signature(
        key,
        &head_message(&head.auction_id, head.seq, &head_hash),
        &head.signature,
    ) {
        return fail(lines, format!("signed head (seq {}): {e}", head.seq));
    }
    if head.auction_id != id.as_str() {
        return fail(
            lines,
            format!("the signed head names auction {}", head.auction_id),
        );
    }
    if count > head.seq {
        return fail(
            lines,
            format!(
                "entry seq {}: beyond the signed head (seq {}): an entry was added",
                head.seq + 1,
                head.seq
            ),
        );
    }
    if count < head.seq {
        return fail(
            lines,
            format!(
                "entry seq {}: missing: the signed head is at seq {} (in distributed mode, \
                 entries appear once the drainer has archived them)",
                count + 1,
                head.seq
            ),
        );
    }
    if last != Some(head_hash) {
        return fail(
            lines,
            format!(
                "entry seq {}: the log ends at hash {}, the signed head says {head_hash}: \
                 the log was rewritten",
                head.seq,
                last.map_or("none".into(), |h| h.to_hex())
            ),
        );
    }
    lines.push(format!(
        "signed head: seq {} hash {head_hash}, key {kid}: ok",
        head.seq
    ));
    for r in receipts {
        match check_receipt(id, r, key, &kid, &entries) {
            Ok(()) => lines.push(format!(
                "receipt: {} bid {} {} at seq {}: ok",
                r.bidder_id, r.amount, r.currency, r.seq
            )),
            Err(e) => return fail(lines, format!("receipt for seq {}: {e}", r.seq)),
        }
    }
    Report {
        lines,
        failure: None,
    }
}

fn check_receipt(
    id: &AuctionId,
    r: &Receipt,
    key: &VerifyingKey,
    kid: &str,
    entries: &[(LogEntry, ChainHash)],
) -> Result<(), String> {
    if r.auction_id != id.as_str() {
        return Err(format!("it is for auction {}", r.auction_id));
    }
    if r.key_id != kid {
        return Err(format!("signed by key {}, not {kid}", r.key_id));
    }
    let parsed = chain::Receipt {
        auction_id: AuctionId::parse(&r.auction_id).map_err(|e| e.to_string())?,
        seq: r.seq,
        amount: Money::new(r.amount).map_err(|e| e.to_string())?,
        currency: Currency::parse(&r.currency).map_err(|e| e.to_string())?,
        bidder_id: BidderId::parse(&r.bidder_id).map_err(|e| e.to_string())?,
        at: r.at,
        hash: ChainHash::parse(&r.hash).map_err(|e| e.to_string())?,
    };
    verify_signature(key, &parsed.message(), &r.signature)
        .map_err(|e| format!("{e}: the receipt was altered or not issued by this server"))?;
    let Some((entry, hash)) = entries.iter().find(|(e, _)| e.seq == r.seq) else {
        return Err(format!(
            "no entry seq {} in the log: the accepted bid is not in the log",
            r.seq
        ));
    };
    parsed.matches(entry, hash).map_err(|e| {
        format!(
            "the log's entry seq {} differs from the signed receipt: {e}: the bid is not in \
             the log as it was accepted",
            r.seq
        )
    })
}
