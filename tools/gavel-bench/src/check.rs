//! End-of-run checks: learn the outcome of every bid, compare each watcher's final state
//! with the server's, and the archive with the accepted bids.

use crate::bench::Bench;
use crate::ctx::{outcome, Ctx};
use crate::report::{ArchiveCheck, Checks};
use crate::target::Api;
use crate::watcher::Watcher;
use gavel_check::history::Answer;
use gavel_protocol::{AuctionView, PlaceBid};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Bench {
    /// Runs every check; violations are added to the run's list.
    pub async fn check(&mut self) -> Checks {
        *self.phase.lock() = "checking".into();
        let mut checks = Checks::default();
        self.resolve_unknown(&mut checks).await;
        self.compare_watchers(&mut checks).await;
        let rows = if let Some(path) = self.archive.clone() {
            Some(
                sqlite_rows(&path, &self.archive_prefix())
                    .map_err(|e| format!("{e:#} ({})", path.display())),
            )
        } else if let Some(url) = self.opts.archive_pg.clone() {
            Some(self.pg_rows_drained(&url).await)
        } else {
            None
        };
        match rows {
            Some(Ok(rows)) => {
                checks.archive = Some(self.check_archive(rows, checks.unknown_unresolved > 0))
            }
            Some(Err(e)) => self.notes.push(format!("archive not checked: {e}")),
            None => {}
        }
        if let (Some(rec), Some(path)) = (&self.ctx.recorder, &self.opts.record) {
            match rec.finish() {
                Ok(()) => self.notes.push(format!(
                    "history recorded in {} (check it with gavel-check)",
                    path.display()
                )),
                Err(e) => self
                    .ctx
                    .violations
                    .report(|| format!("writing the history to {}: {e}", path.display())),
            }
        }
        checks.violations = self.ctx.violations.count();
        checks.violation_samples = self.ctx.violations.samples();
        checks.events = self.ctx.events.snapshot();
        checks
    }

    /// Bids answered `unavailable` or never answered are sent again over HTTP with the same
    /// request id: the server answers the first decision (or makes it now).
    async fn resolve_unknown(&mut self, checks: &mut Checks) {
        let all = 0..self.ctx.ledger.len();
        let unknown = self
            .ctx
            .ledger
            .with_outcome(all.clone(), &[outcome::PENDING, outcome::UNKNOWN]);
        // The history records the WebSocket attempts that never got an answer as lost.
        for idx in self.ctx.ledger.with_outcome(all, &[outcome::PENDING]) {
            if let Some(b) = self.ctx.ledger.with(idx, |b| b.bidder) {
                let b = &self.bidders[b as usize];
                crate::record::ws_lost(&self.ctx, idx, &b.user, b.server);
            }
        }
        for idx in unknown {
            let Some((auction, amount, bidder)) = self
                .ctx
                .ledger
                .with(idx, |b| (b.auction, b.amount, b.bidder))
            else {
                continue;
            };
            let b = &self.bidders[bidder as usize];
            let body = PlaceBid {
                amount: amount.into(),
                request_id: self.ctx.request_id(idx),
                expected_seq: None,
                kind: None,
            };
            let server = &self.ctx.servers[b.server];
            let id = &self.ctx.auctions[auction as usize];
            let sent = gavel_check::record::now_us();
            let answer = self.api.bid(server, &b.token, id, &body).await;
            crate::record::http_attempt(&self.ctx, idx, &b.user, b.server, sent, answer.clone());
            match answer {
                Answer::Ok(r) => {
                    let code = if r.outcome == "accepted" {
                        outcome::ACCEPTED
                    } else {
                        outcome::REJECTED
                    };
                    self.ctx
                        .ledger
                        .with(idx, |b| b.outcome.store(code, Ordering::Relaxed));
                    checks.unknown_resolved += 1;
                }
                _ => checks.unknown_unresolved += 1,
            }
        }
    }

    /// Compares this process's watchers and the workers' with the servers, and checks that
    /// every node reports the same state.
    async fn compare_watchers(&mut self, checks: &mut Checks) {
        let states = compare_watchers(&self.ctx, &self.api, &self.watchers, checks).await;
        // Every node must agree (distributed mode).
        for (i, other) in states.iter().enumerate().skip(1) {
            for (id, a) in &states[0] {
                if other.get(id).map(|b| (b.seq, b.price)) != Some((a.seq, a.price)) {
                    self.ctx
                        .violations
                        .report(|| format!("server {i} disagrees with server 0 on {id}"));
                }
            }
        }
        if let Some(pool) = self.pool.as_mut() {
            pool.check(&self.ctx, checks).await;
        }
    }

    fn archive_prefix(&self) -> String {
        format!("bench-{}-", self.ctx.run)
    }

    /// The PostgreSQL archive's rows for this run, once the drainers have caught up: the
    /// count reaches the accepted bids, or stops changing for 5 s (at most 2 minutes).
    async fn pg_rows_drained(&self, url: &str) -> Result<Vec<ArchiveRow>, String> {
        let accepted = self
            .ctx
            .ledger
            .with_outcome(0..self.ctx.ledger.len(), &[outcome::ACCEPTED])
            .len();
        let deadline = Instant::now() + Duration::from_secs(120);
        let (mut last, mut since) = (usize::MAX, Instant::now());
        loop {
            let rows = pg_rows(url, &self.opts.archive_schema, &self.archive_prefix())?;
            if rows.len() != last {
                (last, since) = (rows.len(), Instant::now());
            }
            if rows.len() >= accepted
                || since.elapsed() > Duration::from_secs(5)
                || Instant::now() > deadline
            {
                return Ok(rows);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The archive must hold exactly the accepted bids: none missing, none extra, none twice.
    fn check_archive(&self, rows: Vec<ArchiveRow>, some_unknown: bool) -> ArchiveCheck {
        let all = 0..self.ctx.ledger.len();
        let accepted: HashSet<u32> = self
            .ctx
            .ledger
            .with_outcome(all.clone(), &[outcome::ACCEPTED])
            .into_iter()
            .collect();
        let unknown: HashSet<u32> = self
            .ctx
            .ledger
            .with_outcome(all, &[outcome::PENDING, outcome::UNKNOWN])
            .into_iter()
            .collect();
        let mut check = ArchiveCheck {
            accepted: accepted.len() as u64,
            ..ArchiveCheck::default()
        };
        let mut stored: HashSet<u32> = HashSet::new();
        for (auction, amount, rid) in rows {
            check.archived += 1;
            let idx = rid.as_deref().and_then(|r| self.ctx.parse_request_id(r));
            let expected = idx.and_then(|i| {
                self.ctx.ledger.with(i, |b| {
                    (self.ctx.auctions[b.auction as usize].clone(), b.amount)
                })
            });
            match idx {
                Some(i) if !stored.insert(i) => {
                    check.duplicates += 1;
                    self.ctx.violations.report(|| {
                        format!("archive: request {} stored twice", self.ctx.request_id(i))
                    });
                }
                Some(i)
                    if (accepted.contains(&i) || unknown.contains(&i))
                        && expected == Some((auction.clone(), amount)) => {}
                _ => {
                    check.extra += 1;
                    self.ctx.violations.report(|| {
                        format!("archive: bid {amount} on {auction} (request {rid:?}) was never accepted")
                    });
                }
            }
        }
        for i in &accepted {
            if !stored.contains(i) {
                check.missing += 1;
                self.ctx.violations.report(|| {
                    format!(
                        "archive: accepted request {} is missing",
                        self.ctx.request_id(*i)
                    )
                });
            }
        }
        if some_unknown {
            self.ctx
                .events
                .add("archive check: some outcomes unknown, counted as allowed");
        }
        check
    }
}

/// Every node's view of the run's auctions (recorded with `--record`).
async fn server_states(ctx: &Ctx, api: &Api) -> Vec<HashMap<String, AuctionView>> {
    let mut out = Vec::new();
    for (node, s) in ctx.servers.iter().enumerate() {
        let sent = gavel_check::record::now_us();
        let map: HashMap<String, AuctionView> = match api.list(s).await {
            Ok(l) => l
                .auctions
                .into_iter()
                .filter(|a| ctx.index.contains_key(&a.id))
                .map(|a| (a.id.clone(), a))
                .collect(),
            Err(e) => {
                ctx.events.add(&format!("listing auctions failed: {e}"));
                HashMap::new()
            }
        };
        crate::record::views(ctx, node, sent, map.values());
        out.push(map);
    }
    out
}

/// Waits (up to 30 s) until every watcher has caught up with its server, then compares each
/// watcher's final (seq, price, bid count, leader) with its server's; returns the servers'
/// states it compared with.
pub async fn compare_watchers(
    ctx: &Ctx,
    api: &Api,
    watchers: &[Arc<Watcher>],
    checks: &mut Checks,
) -> Vec<HashMap<String, AuctionView>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let states = loop {
        let states = server_states(ctx, api).await;
        let behind = watchers.iter().any(|w| {
            w.seen.lock().iter().any(|s| {
                states[w.server]
                    .get(&ctx.auctions[s.auction as usize])
                    .is_some_and(|a| s.seq < a.seq)
            })
        });
        if !behind || Instant::now() > deadline {
            break states;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for w in watchers {
        for s in w.seen.lock().iter() {
            let id = &ctx.auctions[s.auction as usize];
            checks.watcher_states_checked += 1;
            let Some(a) = states[w.server].get(id) else {
                checks.watcher_state_mismatches += 1;
                ctx.violations.report(|| {
                    format!(
                        "watcher {} watches {id}, which its server does not list",
                        w.id
                    )
                });
                continue;
            };
            let mine = (s.seq, s.price, s.bid_count, s.leader.as_deref());
            let theirs = (
                a.seq,
                a.price,
                a.bid_count,
                a.leader.as_ref().map(|l| l.id.as_str()),
            );
            if mine != theirs {
                checks.watcher_state_mismatches += 1;
                ctx.violations.report(|| {
                    format!(
                        "watcher {} ends on {id} at (seq, price, bids, leader) {mine:?}, the server at {theirs:?}",
                        w.id
                    )
                });
            }
        }
    }
    states
}

/// (auction id, amount, request id) of one stored bid.
type ArchiveRow = (String, i64, Option<String>);

fn sqlite_rows(path: &std::path::Path, prefix: &str) -> anyhow::Result<Vec<ArchiveRow>> {
    let db = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.busy_timeout(Duration::from_secs(10))?;
    let mut stmt = db.prepare(
        "SELECT auction_id, amount, request_id FROM bids WHERE substr(auction_id, 1, ?1) = ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![prefix.len() as i64, prefix], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Reads the rows with the `psql` client (no PostgreSQL driver in the tool).
fn pg_rows(url: &str, schema: &str, prefix: &str) -> Result<Vec<ArchiveRow>, String> {
    let valid = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    };
    if !valid(schema) || !valid(prefix) {
        return Err(format!("unexpected schema {schema:?} or prefix {prefix:?}"));
    }
    let sql = format!(
        "SELECT auction_id, amount, coalesce(request_id, '') FROM \"{schema}\".bids WHERE auction_id LIKE '{prefix}%'"
    );
    let out = std::process::Command::new("psql")
        .args([
            url,
            "-X",
            "-A",
            "-t",
            "-F",
            "\t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &sql,
        ])
        .output()
        .map_err(|e| format!("running psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            let (Some(a), Some(amount), Some(rid)) = (f.next(), f.next(), f.next()) else {
                return Err(format!("unexpected psql row {l:?}"));
            };
            let amount = amount.parse().map_err(|_| format!("bad amount in {l:?}"))?;
            Ok((
                a.to_string(),
                amount,
                (!rid.is_empty()).then(|| rid.to_string()),
            ))
        })
        .collect()
}
