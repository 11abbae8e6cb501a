//! The conformance suite on the real local PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), each test in a schema of its own, plus what
//! only PostgreSQL has: one statement per batch, concurrent migrations, seq clashes.

use super::*;
use crate::conformance::{fixture::Fixture, Harness};
use std::sync::Arc;

pub(crate) fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema per test; `open` reopens the same schema. Schemas of earlier runs older
/// than an hour are dropped on the way.
struct PgHarness {
    schema: String,
}

impl PgHarness {
    async fn new() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let schema = format!("gtest_{secs}_{}", uuid_like());
        drop_old_schemas(secs).await;
        PgHarness { schema }
    }

    async fn open_pg(&self) -> PostgresArchive {
        PostgresArchive::connect(&database_url(), Some(&self.schema))
            .await
            .expect("PostgreSQL at DATABASE_URL is reachable")
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn raw() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&database_url(), NoTls)
        .await
        .expect("PostgreSQL is reachable");
    tokio::spawn(conn);
    client
}

async fn drop_old_schemas(now_secs: u64) {
    let client = raw().await;
    let rows = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'gtest\\_%'",
            &[],
        )
        .await
        .unwrap();
    for row in rows {
        let name: String = row.get(0);
        let born: Option<u64> = name.split('_').nth(1).and_then(|s| s.parse().ok());
        if born.is_some_and(|b| b + 3600 < now_secs) {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
}

#[async_trait]
impl Harness for PgHarness {
    async fn open(&self) -> Arc<dyn Archive> {
        Arc::new(self.open_pg().await)
    }
}

crate::archive_conformance_tests!(PgHarness::new().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_apply_each_migration_once() {
    let h = PgHarness::new().await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let schema = h.schema.clone();
            tokio::spawn(async move {
                PostgresArchive::connect(&database_url(), Some(&schema))
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("every node starts");
    }
    let client = raw().await;
    let n: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM {}.gavel_migrations", h.schema),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, MIGRATIONS.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_exactly_one_statement_and_a_clash_is_reported() {
    let h = PgHarness::new().await;
    let archive = h.open_pg().await;
    let mut a = Fixture::new("pg-one-statement");
    archive.create_auction(a.auction()).await.unwrap();
    let client = raw().await;
    let mut batch = vec![a.open()];
    batch.extend((0..100).map(|_| a.bid()));
    batch.push(a.close());
    archive.record_batch(&batch).await.unwrap();
    assert_eq!(archive.stats().batches, 1);
    assert_eq!(archive.stats().bids, 100);

    let mut clash = batch[5].clone();
    clash.bid_id = Some("someone-else".into());
    archive.record_batch(&[clash]).await.unwrap();
    assert_eq!(archive.stats().bids, 100, "the stored bid stays");
    let n: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.bids WHERE auction_id = $1",
                h.schema
            ),
            &[&a.id().as_str()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auctions_spec_is_sent_once_per_archive_and_a_missing_row_heals() {
    let h = PgHarness::new().await;
    let archive = h.open_pg().await;
    let client = raw().await;
    let mut a = Fixture::new("pg-spec-once");
    let sent = |x: &PostgresArchive| x.specs_sent.load(Ordering::Relaxed);
    archive.record_batch(&[a.open()]).await.unwrap();
    assert_eq!(
        sent(&archive),
        1,
        "the first batch creates the row, spec included"
    );
    for _ in 0..3 {
        archive.record_batch(&[a.bid(), a.bid()]).await.unwrap();
    }
    assert_eq!(sent(&archive), 1, "later batches leave it out");
    let q = format!(
        "SELECT spec::text, seq FROM {}.auctions WHERE id = $1",
        h.schema
    );
    let id = a.id().as_str().to_string();
    let row = client.query_opt(&q, &[&id]).await.unwrap().expect("row");
    let (spec, seq): (String, i64) = (row.get(0), row.get(1));
    let spec: gavel_core::AuctionSpec = serde_json::from_str(&spec).unwrap();
    assert_eq!(&spec, &*a.auction().spec);
    assert_eq!(seq, a.auction().state.seq as i64);
    // Another archive (a node restarted) sends it once more, then no more.
    let other = h.open_pg().await;
    other.record_batch(&[a.bid()]).await.unwrap();
    other.record_batch(&[a.bid()]).await.unwrap();
    assert_eq!(sent(&other), 1);
    // The row disappears behind the archive's back: the next batch fails (nothing is lost:
    // the drainer retries it), and the retry sends the spec again.
    client
        .batch_execute(&format!(
            "DELETE FROM {s}.bids WHERE auction_id = '{id}'; DELETE FROM {s}.auctions WHERE id = '{id}'",
            s = h.schema,
            id = a.id()
        ))
        .await
        .unwrap();
    let change = a.bid();
    assert!(archive
        .record_batch(std::slice::from_ref(&change))
        .await
        .is_err());
    archive.record_batch(&[change]).await.unwrap();
    assert_eq!(sent(&archive), 2);
    let row = client.query_opt(&q, &[&id]).await.unwrap();
    let seq: i64 = row.expect("the row is back").get(1);
    assert_eq!(seq, a.auction().state.seq as i64);
}

#[test]
fn schema_names_are_plain_identifiers() {
    assert!(valid_schema("gtest_1_2"));
    for bad in ["", "Upper", "a-b", "a;drop", "1abc"] {
        assert!(!valid_schema(bad), "{bad:?}");
    }
}
