//! The harness runs each target on the backends of its mode: a suite that silently ran
//! embedded twice would prove nothing about distributed mode.

use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_under_test_keeps_its_auctions_where_its_mode_says() {
    let app = spawn_app().await;
    let a = app.create_auction(json!({})).await;
    let id = a["id"].as_str().unwrap().to_string();
    let sqlite = app._data_dir.path().join("gavel.db");
    match MODE {
        Mode::Embedded => {
            assert!(app.isolation.is_none());
            assert!(
                sqlite.exists(),
                "the SQLite archive is in the data directory"
            );
        }
        Mode::Distributed => {
            assert!(!sqlite.exists(), "no SQLite archive in distributed mode");
            let iso = app.isolation.as_ref().unwrap();
            // Redis decides: the auction's hash is under the test's prefix.
            let mut c = redis::Client::open(redis_url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let spec: Option<String> = redis::cmd("HGET")
                .arg(format!("{}:{{{id}}}:a", iso.prefix))
                .arg("spec")
                .query_async(&mut c)
                .await
                .unwrap();
            assert!(spec.unwrap().contains("Test lot"));
            // The drainer archives it into the test's schema.
            let (pg, conn) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let sql = format!("SELECT count(*) FROM {}.auctions WHERE id = $1", iso.schema);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let n: i64 = pg.query_one(&sql, &[&id]).await.unwrap().get(0);
                if n == 1 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the auction never reached PostgreSQL"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    app.stop().await;
}
