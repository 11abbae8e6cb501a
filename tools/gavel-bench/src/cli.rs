//! Command line: one subcommand per scenario, the same options for each, plus `render`.
//!
//! Options a scenario does not give a value to take that scenario's default (see
//! [`crate::scenario`]), so `gavel-bench ladder --spawn target/release/gavel` is a complete
//! standard run.

use clap::{Args, Parser, Subcommand};
use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "gavel-bench",
    version,
    about = "Load generator for Gavel: glass-to-glass latency, throughput and correctness"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Watchers on one auction, 100 → 1,000 → 10,000 → as many as file descriptors allow.
    Ladder(Opts),
    /// Many bidders bid the same amount at the same instant: exactly one may win each round.
    FinalSecond(Opts),
    /// Rising bid rates with 1,000 watchers until the server stops keeping up.
    Sustained(Opts),
    /// 10,000 auctions with a few watchers each.
    ManyAuctions(Opts),
    /// Idle watcher connections: server memory per connection.
    Idle(Opts),
    /// One step with exactly the shape given by the options.
    Custom(Opts),
    /// The kernel's own cost of a fan-out on this machine: one frame written to each of N
    /// loopback sockets and read back, with no server (a floor for the server's figures).
    Floor(crate::floor::FloorArgs),
    /// Turn --json reports into a Markdown table and an SVG latency chart.
    Render(RenderArgs),
    /// A worker process of `--workers` (started by gavel-bench itself; speaks JSON lines on
    /// standard input and output).
    #[command(name = "__worker", hide = true)]
    Worker,
    /// A worker process of `floor --workers`.
    #[command(name = "__floor-worker", hide = true)]
    FloorWorker(crate::floor::FloorWorkerArgs),
}

#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Server base URL (http://host:port); repeat for several nodes. Watchers and bidders are
    /// spread over them round-robin.
    #[arg(long = "server", value_name = "URL")]
    pub servers: Vec<String>,

    /// Start this `gavel` binary on a free loopback port with a temporary data directory
    /// (implies --server-pid and --archive-db).
    #[arg(long, value_name = "PATH", conflicts_with = "servers")]
    pub spawn: Option<PathBuf>,

    /// Extra flag for the spawned server (repeat), e.g. --spawn-arg=--batch-window-ms=5.
    #[arg(long = "spawn-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub spawn_args: Vec<String>,

    /// The server's admin token (creates the auctions). Generated when spawning.
    #[arg(long, env = "GAVEL_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Read the server's RSS and CPU time from /proc/PID. Repeat to add up several processes
    /// (both nodes, Redis, PostgreSQL in distributed mode).
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,

    /// The server's SQLite archive (embedded mode): check it holds exactly the accepted bids
    /// at the end.
    #[arg(long, value_name = "PATH")]
    pub archive_db: Option<PathBuf>,

    /// The PostgreSQL archive (distributed mode), checked like --archive-db through the
    /// `psql` client, after waiting for the drainers to catch up.
    #[arg(long, value_name = "URL", conflicts_with = "archive_db")]
    pub archive_pg: Option<String>,

    /// Schema of the PostgreSQL archive's tables.
    #[arg(long, default_value = "public")]
    pub archive_schema: String,

    /// Watcher connections (the ladder uses --steps instead).
    #[arg(long)]
    pub watchers: Option<usize>,

    /// Ladder steps: watcher counts, `max` for as many as file descriptors allow.
    #[arg(long, value_delimiter = ',')]
    pub steps: Option<Vec<String>>,

    /// Auctions to create and spread watchers and bids over.
    #[arg(long)]
    pub auctions: Option<usize>,

    /// Auctions each watcher connection subscribes to.
    #[arg(long)]
    pub subs_per_conn: Option<usize>,

    /// Bidder connections (each its own signed-in user).
    #[arg(long)]
    pub bidders: Option<usize>,

    /// Aggregate bid rate, bids per second, scheduled in advance (open loop).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Sustained: the rates to climb through, bids per second.
    #[arg(long, value_delimiter = ',')]
    pub rates: Option<Vec<f64>>,

    /// Seconds of bidding per step.
    #[arg(long)]
    pub duration: Option<f64>,

    /// Final-second: rounds of simultaneous identical bids.
    #[arg(long)]
    pub rounds: Option<usize>,

    /// Seconds to wait after a step's last scheduled bid for answers and updates.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,

    /// First client source address; connections move to the next address every
    /// --conns-per-source (one address has ~28k ephemeral ports towards one server port).
    #[arg(long, default_value = "127.0.0.1")]
    pub source_base: Ipv4Addr,

    #[arg(long, default_value_t = 25_000)]
    pub conns_per_source: usize,

    /// Connections opened at once (by each worker, with --workers).
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,

    /// Hold the watchers in N worker processes (copies of this program), each under its own
    /// open-files limit; their histograms and checks are merged into one report. The bidders
    /// stay in this process. 0: this process holds everything.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,

    /// Write the report as JSON to this file (`-` for standard output).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Write the run's history (every creation, bid attempt and end-of-run read, JSON Lines)
    /// to this file, for `gavel-check FILE`. Costs the tool a full parse of every answer.
    #[arg(long, value_name = "PATH")]
    pub record: Option<PathBuf>,

    /// The most the servers' clocks may differ from this machine's (ms), written into the
    /// recorded history. 2 covers servers on this machine (a distributed node's view of
    /// Redis's clock is an estimate); raise it for remote servers.
    #[arg(long, default_value_t = 2)]
    pub record_clock_skew_ms: i64,

    /// A label stored in the report (e.g. the command's purpose).
    #[arg(long)]
    pub label: Option<String>,

    /// No progress line.
    #[arg(long, short)]
    pub quiet: bool,

    /// Keep the spawned server's data directory (and log) after the run.
    #[arg(long)]
    pub keep_data: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RenderArgs {
    /// Reports written with --json.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the Markdown table here.
    #[arg(long)]
    pub table: PathBuf,
    /// Write the SVG chart (glass-to-glass percentiles against watchers, from ladder
    /// reports) here.
    #[arg(long)]
    pub svg: PathBuf,
}
