//! A distributed test's own Redis key prefix and PostgreSQL schema, shared by every test
//! target that uses the local Redis and PostgreSQL (`#[path]`-included by `api`,
//! `api_distributed` and `ops`; through `common/mod.rs` by the multi-node targets).

#![allow(dead_code)] // each test binary uses part of it

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A distributed test's Redis key prefix and PostgreSQL schema, removed when dropped.
pub struct Isolation {
    pub prefix: String,
    pub schema: String,
}

impl Isolation {
    pub async fn new() -> Self {
        Self::for_family("gapi").await
    }

    /// A prefix `{family}-{ms}-{uuid}` (old keys of the family from crashed runs are swept
    /// once per process) and a schema `{family}_{uuid}`.
    pub async fn for_family(family: &str) -> Self {
        Isolation {
            prefix: gavel_engine::conformance::redis_test_prefix(&redis_url(), family).await,
            schema: format!("{family}_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The flags that put a `gavel serve` process on this prefix and schema.
    pub fn serve_args(&self) -> Vec<String> {
        [
            "--redis",
            &redis_url(),
            "--database",
            &database_url(),
            "--redis-prefix",
            &self.prefix,
            "--database-schema",
            &self.schema,
            "--drain-interval-ms",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

impl Drop for Isolation {
    fn drop(&mut self) {
        remove(&self.prefix, &self.schema);
    }
}

/// Deletes the keys under `prefix` and drops `schema` (best effort).
pub fn remove(prefix: &str, schema: &str) {
    let (prefix, schema) = (prefix.to_string(), schema.to_string());
    // Its own thread and runtime: this may run inside the test's runtime.
    let _ = std::thread::spawn(move || {
        if let Ok(mut c) = redis::Client::open(redis_url()).and_then(|c| c.get_connection()) {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:*"))
                .query(&mut c)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut c);
            }
        }
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if let Ok((client, conn)) =
                tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await
            {
                tokio::spawn(conn);
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .await;
            }
        });
    })
    .join();
}
