//! Which Redis the engine talks to, chosen once at start-up: one server, or a Redis Cluster.
//!
//! [`Target::detect`] decides: explicit cluster seeds (`--redis-cluster`) mean a cluster;
//! otherwise the `--redis` URL's server is asked `INFO cluster`, and a server answering
//! `cluster_enabled:1` is used as the seed of a cluster. Everything else in the engine
//! talks through a [`Conn`], which is a `ConnectionManager` on one server (exactly what ran
//! before cluster support) or a `redis::cluster_async::ClusterConnection` (follows `MOVED`
//! and `ASK`, refreshes the slot map, retries `TRYAGAIN` during a slot migration).
//!
//! One thing a cluster connection refuses that the engine does everywhere: a plain
//! (non-transaction) pipeline whose commands live in different slots (a commit batch over
//! several auctions, a page of hashes). [`Conn`] splits such a pipeline into one
//! sub-pipeline per slot, runs them concurrently and puts the replies back in order. That
//! is what a pipeline on one server means too (no atomicity, replies in order); per slot,
//! commands keep their order, which is all the engine relies on (decisions on one auction
//! are chained in one batch).

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;

/// A command connection to `url`'s server, or to its cluster if it is a cluster node (what
/// the engine uses, for tools and tests that read or write Gavel's keys directly).
pub async fn connect(url: &str) -> RedisResult<Conn> {
    Target::detect(url, &[])
        .await?
        .connect(Some(Duration::from_secs(5)))
        .await
}

/// Where the engine's Redis is.
#[derive(Clone)]
pub(crate) enum Target {
    /// One server (or a proxy in front of one): as before cluster support.
    Single(redis::Client),
    /// A Redis Cluster, reached through these seed nodes.
    Cluster { seeds: Vec<String> },
}

/// What the start-up probe found.
pub(crate) fn cluster_enabled(info: &str) -> bool {
    info.lines().any(|l| l.trim_end() == "cluster_enabled:1")
}

impl Target {
    /// One server or a cluster: explicit seeds win; otherwise the URL's server says whether
    /// it is a cluster node.
    pub(crate) async fn detect(url: &str, seeds: &[String]) -> RedisResult<Target> {
        if !seeds.is_empty() {
            return Ok(Target::Cluster {
                seeds: seeds.to_vec(),
            });
        }
        let client = redis::Client::open(url)?;
        let mut probe = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| {
            redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out connecting to Redis",
            ))
        })??;
        let info: Result<String, _> = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut probe)
            .await;
        let info = match info {
            Ok(info) => info,
            // A user without INFO (an ACL): one server as before; a cluster behind such a
            // user is named with `--redis-cluster`.
            Err(e) if e.code().is_some() => String::new(),
            Err(e) => return Err(e),
        };
        Ok(if cluster_enabled(&info) {
            Target::Cluster {
                seeds: vec![url.to_string()],
            }
        } else {
            Target::Single(client)
        })
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster { .. })
    }

    /// A cluster client with these timeouts (`None`: no response timeout, for blocking
    /// reads). `push` makes it a RESP3 client whose pushes (sharded Pub/Sub) go there.
    pub(crate) fn cluster_client(
        seeds: &[String],
        response_timeout: Option<Duration>,
        push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
    ) -> RedisResult<ClusterClient> {
        let mut b = ClusterClientBuilder::new(seeds.to_vec())
            .connection_timeout(Duration::from_secs(2))
            // MOVED/ASK/TRYAGAIN are retried within this budget: a slot migration of one
            // auction's keys takes milliseconds.
            .retries(12)
            .min_retry_wait(10)
            .max_retry_wait(500);
        b = match response_timeout {
            Some(t) => b.response_timeout(t).overall_response_timeout(Some(t * 2)),
            // Blocking reads: a day is "never" for an XREADGROUP BLOCK of at most seconds.
            None => b
                .response_timeout(Duration::from_secs(86_400))
                .overall_response_timeout(None),
        };
        if let Some(tx) = push {
            b = b
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(tx);
        }
        b.build()
    }

    /// A command connection; `None`: no response timeout (blocking reads).
    pub(crate) async fn connect(&self, response_timeout: Option<Duration>) -> RedisResult<Conn> {
        match self {
            Target::Single(client) => Ok(Conn::Single(
                ConnectionManager::new_with_config(
                    client.clone(),
                    ConnectionManagerConfig::new()
                        .set_response_timeout(response_timeout)
                        .set_connection_timeout(Some(Duration::from_secs(2)))
                        .set_number_of_retries(1)
                        .set_max_delay(Duration::from_millis(500)),
                )
                .await?,
            )),
            Target::Cluster { seeds } => {
                let client = Self::cluster_client(seeds, response_timeout, None)?;
                let conn =
                    tokio::time::timeout(Duration::from_secs(10), client.get_async_connection())
                        .await
                        .map_err(|_| {
                            redis::RedisError::from(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "timed out connecting to the Redis Cluster",
                            ))
                        })??;
                Ok(Conn::Cluster(conn))
            }
        }
    }
}

/// A connection to one server or to a cluster. Cheap to clone (both are multiplexed).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// The slot a command goes to, if it names a key: the first key of the commands the engine
/// pipelines (the redis crate keeps its own router private).
fn route_of(cmd: &Cmd) -> Option<Slot> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            redis::Arg::Simple(b) => Some(b),
            _ => None,
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    let key = match name.as_slice() {
        b"PING" | b"TIME" | b"INFO" | b"SCRIPT" | b"CONFIG" | b"CLUSTER" | b"ECHO" => None,
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" => {
            let n: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if n == 0 {
                None
            } else {
                args.get(3).copied()
            }
        }
        b"XREAD" | b"XREADGROUP" => {
            let at = args
                .iter()
                .position(|a| a.eq_ignore_ascii_case(b"STREAMS"))?;
            args.get(at + 1).copied()
        }
        _ => args.get(1).copied(),
    }?;
    Some(Slot::for_key(key))
}

/// Groups a plain pipeline's commands by slot, in order: `None` if it is one group already.
fn split_by_slot(pipeline: &Pipeline) -> Option<Vec<(Vec<usize>, Pipeline)>> {
    if pipeline.is_transaction() {
        return None;
    }
    let mut groups: Vec<(Option<Slot>, Vec<usize>, Pipeline)> = Vec::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        let route = route_of(cmd);
        // Commands without a slot (PING, TIME) ride with the first group.
        let at = match route {
            None => (!groups.is_empty()).then_some(0),
            Some(r) => groups
                .iter()
                .position(|(g, _, _)| *g == Some(r) || g.is_none()),
        };
        match at {
            Some(at) => {
                let g = &mut groups[at];
                if g.0.is_none() {
                    g.0 = route;
                }
                g.1.push(i);
                g.2.add_command(cmd.clone());
            }
            None => {
                let mut p = redis::pipe();
                p.add_command(cmd.clone());
                groups.push((route, vec![i], p));
            }
        }
    }
    (groups.len() > 1).then(|| groups.into_iter().map(|(_, i, p)| (i, p)).collect())
}

/// A redirection answered to one command of a pipeline: the command did not run there.
/// The cluster connection follows these for single commands, not inside a pipeline.
fn redirected(v: &Value) -> bool {
    use redis::ServerErrorKind as K;
    matches!(v, Value::ServerError(e) if matches!(
        e.kind(),
        Some(K::Moved | K::Ask | K::TryAgain | K::ClusterDown)
    ))
}

/// A pipeline on the cluster: per slot (see the module doc), then every command answered
/// with a redirection is sent again on its own, in order, through the cluster connection,
/// which follows `MOVED`/`ASK` and waits out `TRYAGAIN` (a slot moving while a batch was
/// on its way). A redirected command did not run, and in one slot every command after it
/// was redirected too, so sending them again in order keeps the batch's meaning.
async fn cluster_pipeline(
    c: ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    if pipeline.is_transaction() {
        let mut c = c;
        return c.req_packed_commands(pipeline, offset, count).await;
    }
    let groups = split_by_slot(pipeline)
        .unwrap_or_else(|| vec![((0..pipeline.len()).collect(), pipeline.clone())]);
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let calls = groups.into_iter().map(|(indexes, p)| {
        let mut c = c.clone();
        let commands = &commands;
        async move {
            let len = p.len();
            let mut values = c.req_packed_commands(&p, 0, len).await?;
            for (at, i) in indexes.iter().enumerate() {
                if redirected(&values[at]) {
                    metrics::counter!("gavel_redis_cluster_redirects_total").increment(1);
                    values[at] = c.req_packed_command(commands[*i]).await?;
                }
            }
            Ok::<_, redis::RedisError>((indexes, values))
        }
    });
    let mut out = vec![Value::Nil; pipeline.len()];
    for r in futures::future::join_all(calls).await {
        let (indexes, values) = r?;
        for (i, v) in indexes.into_iter().zip(values) {
            out[i] = v;
        }
    }
    Ok(out.into_iter().skip(offset).take(count).collect())
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => {
                let c = c.clone();
                Box::pin(cluster_pipeline(c, pipeline, offset, count))
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_probe_reads_cluster_enabled() {
        assert!(cluster_enabled("# Cluster\r\ncluster_enabled:1\r\n"));
        assert!(!cluster_enabled("# Cluster\r\ncluster_enabled:0\r\n"));
        assert!(!cluster_enabled(""));
    }

    #[test]
    fn a_pipeline_over_several_slots_is_split_per_slot_in_order() {
        let mut p = redis::pipe();
        p.get("g:{a}:x")
            .get("g:{b}:x")
            .get("g:{a}:y")
            .cmd("PING")
            .get("g:{b}:y");
        let groups = split_by_slot(&p).expect("two slots");
        let indexes: Vec<Vec<usize>> = groups.iter().map(|(i, _)| i.clone()).collect();
        assert_eq!(indexes, vec![vec![0, 2, 3], vec![1, 4]]);
        let mut one = redis::pipe();
        one.get("g:{a}:x").get("g:{a}:y").cmd("PING");
        assert!(split_by_slot(&one).is_none(), "one slot stays one pipeline");
        let mut atomic = redis::pipe();
        atomic.atomic().get("g:{a}:x").get("g:{b}:x");
        assert!(
            split_by_slot(&atomic).is_none(),
            "a transaction is never split"
        );
    }
}
