//! The deployment files (issue 16) checked against the server they deploy, since this
//! project's machines cannot build or run containers:
//!
//! - every metric `deploy/prometheus/alerts.yml` and `deploy/grafana/gavel.json` name is one
//!   a running server exports (its `/metrics` after some traffic), or one listed in
//!   `deploy/metrics-after-events.txt` (and present in the sources), or one agreed with work
//!   not merged yet (`deploy/metrics-pending.txt`);
//! - `Dockerfile`, `deploy/compose.yaml`, `deploy/haproxy/haproxy.cfg` and
//!   `deploy/prometheus/prometheus.yml`: paths they copy or mount exist, every `gavel serve`
//!   flag and `GAVEL_*` variable they use is in `gavel serve --help`, ports agree from the
//!   load balancer to the container, health checks and scrapes use real routes, and Redis
//!   runs with AOF and `noeviction`.
//!
//! Each checker is also shown to fail on a deliberately broken copy.

use serde_yaml::Value as Yaml;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "deploy-test-admin-token";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ---------------------------------------------------------------------------------------
// A running server

struct Server {
    base: String,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = gavel_server::config::ServeConfig::for_data_dir(dir.path().into());
        config.admin_token = Some(ADMIN.into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(gavel_server::run(config, listener, shutdown.clone()));
        let server = Server {
            base,
            shutdown,
            handle,
            _dir: dir,
        };
        for _ in 0..100 {
            if server.status("/healthz").await == 200 {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not start");
    }

    async fn status(&self, path: &str) -> u16 {
        match reqwest::get(format!("{}{path}", self.base)).await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Some traffic, so the metrics that exist from the first request, bid or watcher on
    /// are exported: an auction, a session, a watcher, a bid, a latency report.
    async fn traffic(&self) {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let http = reqwest::Client::new();
        let auction: serde_json::Value = http
            .post(format!("{}/api/auctions", self.base))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"title": "Lot", "starting_price": 1000, "increment": 100, "duration_ms": 600000}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = auction["id"].as_str().unwrap().to_string();
        let session: serde_json::Value = http
            .post(format!("{}/api/session", self.base))
            .json(&serde_json::json!({"name": "Ann"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = session["token"].as_str().unwrap();
        let ws_url = format!("{}/ws", self.base.replace("http://", "ws://"));
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
        let sub = serde_json::json!({"type": "subscribe", "auction_id": id});
        ws.send(Message::text(sub.to_string())).await.unwrap();
        let r = http
            .post(format!("{}/api/auctions/{id}/bids", self.base))
            .bearer_auth(token)
            .json(&serde_json::json!({"amount": 1000, "request_id": "r-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let report = serde_json::json!({"type": "latency_report", "clock_error_ms": 1,
            "auctions": [{"auction_id": id, "counts": vec![1; gavel_protocol::LATENCY_BOUNDS_MS.len() + 1]}]});
        ws.send(Message::text(report.to_string())).await.unwrap();
        // Read until the update and the report's answer have come (the writer records a
        // frame's latency right after writing it).
        let (mut update, mut ok) = (false, false);
        while !(update && ok) {
            let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("messages")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                update |= v["type"] == "update";
                ok |= v["type"] == "ok" && v["what"] == "latency_report";
            }
        }
        // Past the housekeeping tick that exports gauges such as the watcher count.
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handle).await;
    }
}

// ---------------------------------------------------------------------------------------
// Metric names

/// The names of the series in a Prometheus text page.
fn exported_names(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The first column of a documented list (comments and blank lines skipped).
fn listed_names(list: &str) -> BTreeSet<String> {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Every `gavel_*` metric name a file mentions.
fn referenced_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut i = 0;
    while let Some(at) = text[i..].find("gavel_") {
        let start = i + at;
        let preceded =
            start > 0 && (word(bytes[start - 1]) || bytes[start - 1].is_ascii_uppercase());
        let mut end = start;
        while end < bytes.len() && word(bytes[end]) {
            end += 1;
        }
        if !preceded {
            names.insert(text[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    names
}

/// The names of `referenced` that are none of `known` (a histogram's name and its
/// `_bucket`, `_sum` and `_count` series all count as known when one of them is).
fn unknown_names(referenced: &BTreeSet<String>, known: &BTreeSet<String>) -> Vec<String> {
    let is_known = |n: &str| {
        known.contains(n)
            || known.contains(&format!("{n}_bucket"))
            || ["_bucket", "_sum", "_count"].iter().any(|s| {
                n.strip_suffix(s).is_some_and(|base| {
                    known.contains(base) || known.contains(&format!("{base}_bucket"))
                })
            })
    };
    referenced
        .iter()
        .filter(|n| !is_known(n))
        .cloned()
        .collect()
}

/// Every `.rs` file's text under `dir`, tests and benchmarks left out.
fn rust_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.ends_with("tests") || path.ends_with("benches") {
                continue;
            }
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_the_dashboard_use_is_one_gavel_exports() {
    let server = Server::start().await;
    server.traffic().await;
    let page = server.metrics().await;
    server.stop().await;
    let exported = exported_names(&page);
    // The histograms and counters of the traffic above are there.
    for name in [
        "gavel_bids_total",
        "gavel_bid_decision_seconds_bucket",
        "gavel_delivery_seconds_bucket",
        "gavel_client_delivery_seconds_bucket",
        "gavel_connections",
        "gavel_watchers",
    ] {
        assert!(exported.contains(name), "{name} not in /metrics:\n{page}");
    }

    // The documented names must exist in the code (as a metric's name literal).
    let after_events = listed_names(&read("deploy/metrics-after-events.txt"));
    let mut sources = String::new();
    rust_sources(&repo().join("crates"), &mut sources);
    for name in &after_events {
        assert!(
            sources.contains(&format!("\"{name}\"")),
            "deploy/metrics-after-events.txt lists {name}, which no source file names"
        );
    }
    let pending = listed_names(&read("deploy/metrics-pending.txt"));
    if !pending.is_empty() {
        eprintln!("metrics agreed with unmerged work, accepted as named: {pending:?}");
    }

    let known: BTreeSet<String> = exported
        .iter()
        .chain(&after_events)
        .chain(&pending)
        .cloned()
        .collect();
    for file in ["deploy/prometheus/alerts.yml", "deploy/grafana/gavel.json"] {
        let referenced = referenced_names(&read(file));
        assert!(referenced.len() >= 10, "{file}: {referenced:?}");
        let unknown = unknown_names(&referenced, &known);
        assert!(
            unknown.is_empty(),
            "{file} names metrics Gavel does not export: {unknown:?}"
        );
    }

    // The dashboard is a Grafana dashboard: every panel queries Prometheus.
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/gavel.json")).unwrap();
    assert_eq!(dashboard["uid"], "gavel");
    let panels = dashboard["panels"].as_array().unwrap();
    let graphs: Vec<&serde_json::Value> = panels.iter().filter(|p| p["type"] != "row").collect();
    assert!(graphs.len() >= 15, "{} panels", graphs.len());
    for p in graphs {
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", p["title"]);
        assert!(targets
            .iter()
            .all(|t| t["expr"].as_str().is_some_and(|e| !e.is_empty())));
    }

    // The check is not blind: a misspelt metric in a rule is caught, and so is a made-up
    // histogram series.
    let broken = read("deploy/prometheus/alerts.yml")
        .replace("gavel_bid_errors_total", "gavel_bid_error_total");
    assert_eq!(
        unknown_names(&referenced_names(&broken), &known),
        vec!["gavel_bid_error_total".to_string()]
    );
    let broken = read("deploy/grafana/gavel.json").replace(
        "gavel_delivery_seconds_bucket",
        "gavel_deliveries_seconds_bucket",
    );
    assert_eq!(
        unknown_names(&referenced_names(&broken), &known),
        vec!["gavel_deliveries_seconds_bucket".to_string()]
    );
}

#[test]
fn metric_names_are_read_whole_from_expressions() {
    let names = referenced_names(
        r#"sum by (le) (rate(gavel_x_seconds_bucket{instance=~"$i"}[5m])) / GavelAlert gavel_y"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["gavel_x_seconds_bucket", "gavel_y"]
    );
}

// ---------------------------------------------------------------------------------------
// Dockerfile, compose, load balancer, Prometheus

/// What `gavel serve --help` offers.
struct Cli {
    flags: BTreeSet<String>,
    envs: BTreeSet<String>,
}

fn serve_help() -> Cli {
    let out = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let tokens = |prefix: &str, ok: fn(char) -> bool| -> BTreeSet<String> {
        help.match_indices(prefix)
            .map(|(i, _)| help[i..].chars().take_while(|c| ok(*c)).collect::<String>())
            .filter(|t| t.len() > prefix.len())
            .collect()
    };
    Cli {
        flags: tokens("--", |c| c.is_ascii_lowercase() || c == '-'),
        envs: tokens("GAVEL_", |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
        }),
    }
}

/// The port of a `host:port` listen address.
fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit(':').next()?.parse().ok()
}

/// What the Dockerfile sets up, and what is wrong with it.
#[derive(Default)]
struct Image {
    listen_port: Option<u16>,
    health_paths: Vec<String>,
    problems: Vec<String>,
}

fn check_dockerfile(text: &str, cli: &Cli) -> Image {
    let mut image = Image::default();
    let mut p = Vec::new();
    // Logical lines: continuations joined, comments dropped.
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages = 0;
    let mut exposed = None;
    let mut user = None;
    let mut entrypoint = String::new();
    for line in &lines {
        let (instr, rest) = line.split_once(' ').unwrap_or((line, ""));
        match instr.to_ascii_uppercase().as_str() {
            "FROM" => stages += 1,
            "COPY" if !rest.contains("--from=") => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                for src in &parts[..parts.len().saturating_sub(1)] {
                    if !repo().join(src).exists() {
                        p.push(format!("Dockerfile copies {src}, which does not exist"));
                    }
                }
            }
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let Some((k, v)) = pair.split_once('=') else {
                        continue;
                    };
                    if k.starts_with("GAVEL_") && !cli.envs.contains(k) {
                        p.push(format!(
                            "Dockerfile sets {k}, which gavel serve does not read"
                        ));
                    }
                    if k == "GAVEL_LISTEN" {
                        image.listen_port = port_of(v);
                    }
                }
            }
            "EXPOSE" => exposed = rest.trim().parse::<u16>().ok(),
            "USER" => user = Some(rest.trim().to_string()),
            "HEALTHCHECK" => {
                if let Some(i) = rest.find("GET ") {
                    let path: String = rest[i + 4..].chars().take_while(|c| *c != ' ').collect();
                    image.health_paths.push(path);
                } else {
                    p.push("the HEALTHCHECK requests no path".into());
                }
                let port = rest
                    .split("/dev/tcp/127.0.0.1/")
                    .nth(1)
                    .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|s| s.parse::<u16>().ok());
                if port.is_none() || port != image.listen_port {
                    p.push(format!(
                        "the HEALTHCHECK calls port {port:?}, the server listens on {:?}",
                        image.listen_port
                    ));
                }
            }
            "ENTRYPOINT" => entrypoint = rest.to_string(),
            _ => {}
        }
    }
    if stages < 2 {
        p.push("the Dockerfile is not multi-stage".into());
    }
    if exposed.is_none() || exposed != image.listen_port {
        p.push(format!(
            "EXPOSE {exposed:?} but GAVEL_LISTEN's port is {:?}",
            image.listen_port
        ));
    }
    match user.as_deref() {
        None | Some("root") | Some("0") => p.push("the image runs as root".into()),
        _ => {}
    }
    if !(entrypoint.contains("gavel") && entrypoint.contains("\"serve\"")) {
        p.push(format!(
            "the ENTRYPOINT does not run gavel serve: {entrypoint}"
        ));
    }
    if image.health_paths.is_empty() {
        p.push("the Dockerfile has no HEALTHCHECK".into());
    }
    image.problems = p;
    image
}

fn yaml_str(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn yaml_list(v: &Yaml) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().filter_map(yaml_str).collect())
        .unwrap_or_default()
}

/// The host of a `scheme://[user[:pw]@]host[:port]/...` URL, with its port.
fn url_host(url: &str) -> Option<(String, Option<u16>)> {
    let rest = url.split("://").nth(1)?;
    let rest = rest.rsplit('@').next()?;
    let hostport = rest.split('/').next()?;
    let mut parts = hostport.splitn(2, ':');
    let host = parts.next()?.to_string();
    Some((host, parts.next().and_then(|p| p.parse().ok())))
}

/// What the deployment (compose, load balancer, Prometheus) refers to, and what is wrong.
struct Deployment<'a> {
    compose: &'a str,
    haproxy: &'a str,
    prometheus: &'a str,
}

/// Paths (HTTP) the deployment's health checks and scrapes request, with who asks.
type Requests = Vec<(String, String)>;

fn check_deployment(d: &Deployment, cli: &Cli, image: &Image) -> (Requests, Vec<String>) {
    let mut p = Vec::new();
    let mut requests: Requests = image
        .health_paths
        .iter()
        .map(|h| ("Dockerfile HEALTHCHECK".to_string(), h.clone()))
        .collect();
    let deploy = repo().join("deploy");
    let compose: Yaml = match serde_yaml::from_str(d.compose) {
        Ok(c) => c,
        Err(e) => return (requests, vec![format!("compose.yaml is not YAML: {e}")]),
    };
    let services = compose["services"]
        .as_mapping()
        .cloned()
        .unwrap_or_default();
    let service = |n: &str| services.get(n).cloned().unwrap_or(Yaml::Null);
    let names: BTreeSet<String> = services.keys().filter_map(yaml_str).collect();
    for required in ["redis", "postgres", "lb"] {
        if !names.contains(required) {
            p.push(format!("compose.yaml has no {required} service"));
        }
    }
    // Gavel nodes: the services that run the image the Dockerfile builds.
    let mut gavel_ports: HashMap<String, u16> = HashMap::new();
    let mut gavel_image = None;
    for (name, svc) in &services {
        let name = yaml_str(name).unwrap();
        if let Some(build) = svc.get("build") {
            let context = build["context"].as_str().unwrap_or(".");
            let dockerfile = build["dockerfile"].as_str().unwrap_or("Dockerfile");
            let path = deploy.join(context).join(dockerfile);
            if !path.exists()
                || path.canonicalize().ok() != repo().join("Dockerfile").canonicalize().ok()
            {
                p.push(format!(
                    "{name} builds {}, not the repository's Dockerfile",
                    path.display()
                ));
            }
            gavel_image = svc["image"].as_str().map(str::to_string);
        }
        // Bind mounts: their sources must exist.
        for vol in yaml_list(&svc["volumes"]) {
            let src = vol.split(':').next().unwrap_or("");
            if (src.starts_with("./") || src.starts_with("../")) && !deploy.join(src).exists() {
                p.push(format!("{name} mounts {src}, which does not exist"));
            }
        }
        if let Some(deps) = svc.get("depends_on") {
            let deps: Vec<String> = match deps {
                Yaml::Sequence(_) => yaml_list(deps),
                Yaml::Mapping(m) => m.keys().filter_map(yaml_str).collect(),
                _ => vec![],
            };
            for dep in deps {
                if !names.contains(&dep) {
                    p.push(format!("{name} depends on {dep}, which is not a service"));
                }
            }
        }
    }
    let Some(gavel_image) = gavel_image else {
        p.push("no service builds the Gavel image".into());
        return (requests, p);
    };
    for (name, svc) in &services {
        let name = yaml_str(name).unwrap();
        if svc["image"].as_str() != Some(gavel_image.as_str()) {
            continue;
        }
        let env = svc["environment"].as_mapping().cloned().unwrap_or_default();
        let mut port = image.listen_port;
        for (k, v) in &env {
            let k = yaml_str(k).unwrap_or_default();
            if k.starts_with("GAVEL_") && !cli.envs.contains(&k) {
                p.push(format!("{name} sets {k}, which gavel serve does not read"));
            }
            let v = yaml_str(v).unwrap_or_default();
            match k.as_str() {
                "GAVEL_LISTEN" => port = port_of(&v),
                "GAVEL_REDIS_URL" => match url_host(&v) {
                    Some((host, at)) if names.contains(&host) => {
                        let cmd = yaml_list(&service(&host)["command"]).join(" ");
                        if !cmd.contains("--appendonly yes") {
                            p.push(format!("{host} (Redis) runs without --appendonly yes"));
                        }
                        if !cmd.contains("--maxmemory-policy noeviction") {
                            p.push(format!(
                                "{host} (Redis) runs without --maxmemory-policy noeviction"
                            ));
                        }
                        if at.unwrap_or(6379) != 6379 {
                            p.push(format!("{name} calls Redis on port {at:?}"));
                        }
                    }
                    _ => p.push(format!("{name}: GAVEL_REDIS_URL {v} names no service")),
                },
                "GAVEL_DATABASE_URL" => match url_host(&v) {
                    Some((host, at)) if names.contains(&host) => {
                        let img = service(&host)["image"].as_str().unwrap_or("").to_string();
                        if !img.starts_with("postgres") || at.unwrap_or(5432) != 5432 {
                            p.push(format!(
                                "{name}: GAVEL_DATABASE_URL {v} is not the PostgreSQL service"
                            ));
                        }
                    }
                    _ => p.push(format!("{name}: GAVEL_DATABASE_URL {v} names no service")),
                },
                _ => {}
            }
        }
        for arg in yaml_list(&svc["command"]) {
            let flag = arg.split('=').next().unwrap_or("");
            if flag.starts_with("--") && !cli.flags.contains(flag) {
                p.push(format!(
                    "{name} passes {flag}, which gavel serve does not take"
                ));
            }
        }
        for required in [
            "GAVEL_REDIS_URL",
            "GAVEL_DATABASE_URL",
            "GAVEL_JWT_SECRET",
            "GAVEL_NODE_ID",
        ] {
            if !env.contains_key(Yaml::String(required.into())) {
                p.push(format!("{name} (distributed mode) does not set {required}"));
            }
        }
        // Docker must wait for the drain: its stop grace period (default 10 s) longer than
        // the server's own (`--shutdown-grace-secs`, default 30).
        let grace = env
            .get("GAVEL_SHUTDOWN_GRACE_SECS")
            .and_then(yaml_str)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(30);
        let stop = svc["stop_grace_period"]
            .as_str()
            .and_then(|s| s.strip_suffix('s'))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(10);
        if stop <= grace {
            p.push(format!(
                "{name}: stop_grace_period {stop}s does not outlast the shutdown grace of {grace}s"
            ));
        }
        match port {
            Some(port) => {
                gavel_ports.insert(name, port);
            }
            None => p.push(format!("{name}: no listen port")),
        }
    }
    if gavel_ports.len() < 2 {
        p.push(format!(
            "compose.yaml runs {} Gavel nodes, not two",
            gavel_ports.len()
        ));
    }

    // The load balancer: its backends are the Gavel nodes on their ports, its frontend port
    // is published, its health check asks a real route.
    let mut backends = BTreeSet::new();
    for line in d.haproxy.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["server", _, target, ..] => {
                let (host, port) = target.split_once(':').unwrap_or((target, ""));
                match gavel_ports.get(host) {
                    Some(want) if port.parse::<u16>().ok() == Some(*want) => {}
                    Some(want) => p.push(format!(
                        "haproxy sends {host} to port {port}; it listens on {want}"
                    )),
                    None => p.push(format!("haproxy's server {target} is not a Gavel node")),
                }
                backends.insert(host.to_string());
            }
            ["bind", addr, ..] => {
                let port = port_of(addr);
                let published = yaml_list(&service("lb")["ports"]);
                if !published.iter().any(|m| port_of(m) == port) {
                    p.push(format!(
                        "haproxy binds {addr}, which compose.yaml does not publish ({published:?})"
                    ));
                }
            }
            ["option", "httpchk", _method, path, ..] => {
                requests.push(("haproxy health check".into(), path.to_string()));
            }
            _ => {}
        }
    }
    if !d.haproxy.contains("option httpchk") {
        p.push("haproxy checks no node's health".into());
    }
    for node in gavel_ports.keys() {
        if !backends.contains(node) {
            p.push(format!("haproxy does not balance to {node}"));
        }
    }

    // Prometheus: scrapes every node on its port, evaluates the mounted alert rules.
    match serde_yaml::from_str::<Yaml>(d.prometheus) {
        Err(e) => p.push(format!("prometheus.yml is not YAML: {e}")),
        Ok(prom) => {
            let mounted: Vec<String> = yaml_list(&service("prometheus")["volumes"]);
            for rule in yaml_list(&prom["rule_files"]) {
                if !mounted.iter().any(|m| {
                    m.ends_with(&format!(":{rule}:ro")) || m.ends_with(&format!(":{rule}"))
                }) {
                    p.push(format!(
                        "prometheus loads {rule}, which compose.yaml does not mount"
                    ));
                }
            }
            let mut scraped = BTreeSet::new();
            for job in prom["scrape_configs"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
            {
                let path = job["metrics_path"]
                    .as_str()
                    .unwrap_or("/metrics")
                    .to_string();
                requests.push(("prometheus scrape".into(), path));
                for sc in job["static_configs"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default()
                {
                    for target in yaml_list(&sc["targets"]) {
                        let (host, port) = target.split_once(':').unwrap_or((&target, ""));
                        if gavel_ports.get(host).map(|p| p.to_string()) != Some(port.to_string()) {
                            p.push(format!(
                                "prometheus scrapes {target}, which is no Gavel node's port"
                            ));
                        }
                        scraped.insert(host.to_string());
                    }
                }
            }
            for node in gavel_ports.keys() {
                if !scraped.contains(node) {
                    p.push(format!("prometheus does not scrape {node}"));
                }
            }
        }
    }
    (requests, p)
}

fn deployment_files() -> (String, String, String, String) {
    (
        read("Dockerfile"),
        read("deploy/compose.yaml"),
        read("deploy/haproxy/haproxy.cfg"),
        read("deploy/prometheus/prometheus.yml"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_files_refer_only_to_what_exists() {
    let cli = serve_help();
    assert!(cli.flags.contains("--listen") && cli.envs.contains("GAVEL_LISTEN"));
    let (dockerfile, compose, haproxy, prometheus) = deployment_files();
    let image = check_dockerfile(&dockerfile, &cli);
    assert_eq!(image.problems, Vec::<String>::new(), "Dockerfile");
    assert_eq!(image.listen_port, Some(3000));
    let d = Deployment {
        compose: &compose,
        haproxy: &haproxy,
        prometheus: &prometheus,
    };
    let (requests, problems) = check_deployment(&d, &cli, &image);
    assert_eq!(problems, Vec::<String>::new(), "deploy/");
    assert!(requests.len() >= 3, "{requests:?}");
    // The health checks and scrapes ask real routes of a real server.
    let server = Server::start().await;
    for (who, path) in &requests {
        assert_eq!(server.status(path).await, 200, "{who} requests {path}");
    }
    assert_eq!(
        server.status("/api/no-such-route").await,
        404,
        "the check can fail"
    );
    server.stop().await;
}

#[test]
fn broken_container_files_are_caught() {
    let cli = serve_help();
    let (dockerfile, compose, haproxy, prometheus) = deployment_files();
    let problems_of = |dockerfile: &str, compose: &str, haproxy: &str, prometheus: &str| {
        let image = check_dockerfile(dockerfile, &cli);
        let d = Deployment {
            compose,
            haproxy,
            prometheus,
        };
        let mut all = image.problems.clone();
        all.extend(check_deployment(&d, &cli, &image).1);
        all.join("\n")
    };
    let cases: Vec<(&str, String, String, String, String)> = vec![
        (
            "copies web/build",
            dockerfile.replace("COPY web/dist web/dist", "COPY web/build web/dist"),
            compose.clone(),
            haproxy.clone(),
            prometheus.clone(),
        ),
        (
            "GAVEL_LISTN",
            dockerfile.replace("GAVEL_LISTEN=0.0.0.0:3000", "GAVEL_LISTN=0.0.0.0:3000"),
            compose.clone(),
            haproxy.clone(),
            prometheus.clone(),
        ),
        (
            "EXPOSE",
            dockerfile.replace("EXPOSE 3000", "EXPOSE 8000"),
            compose.clone(),
            haproxy.clone(),
            prometheus.clone(),
        ),
        (
            "root",
            dockerfile.replace("USER gavel", "USER root"),
            compose.clone(),
            haproxy.clone(),
            prometheus.clone(),
        ),
        (
            "GAVEL_NODE_NAME",
            dockerfile.clone(),
            compose.replace("GAVEL_NODE_ID: gavel-2", "GAVEL_NODE_NAME: gavel-2"),
            haproxy.clone(),
            prometheus.clone(),
        ),
        (
            "noeviction",
            dockerfile.clone(),
            compose.replace("- noeviction", "- allkeys-lru"),
            haproxy.clone(),
            prometheus.clone(),
        ),
        (
            "appendonly",
            dockerfile.clone(),
            compose.replace(
                "- --appendonly\n      - \"yes\"",
                "- --appendonly\n      - \"no\"",
            ),
            haproxy.clone(),
            prometheus.clone(),
        ),
        (
            "mounts ./haproxy/lb.cfg",
            dockerfile.clone(),
            compose.replace("./haproxy/haproxy.cfg:", "./haproxy/lb.cfg:"),
            haproxy.clone(),
            prometheus.clone(),
        ),
        (
            "port 3001",
            dockerfile.clone(),
            compose.clone(),
            haproxy.replace("gavel-2:3000", "gavel-2:3001"),
            prometheus.clone(),
        ),
        (
            "does not publish",
            dockerfile.clone(),
            compose.replace("\"8080:8080\"", "\"8080:8081\""),
            haproxy.clone(),
            prometheus.clone(),
        ),
        (
            "does not outlast the shutdown grace",
            dockerfile.clone(),
            compose.replacen(
                "GAVEL_SHUTDOWN_GRACE_SECS: \"25\"",
                "GAVEL_SHUTDOWN_GRACE_SECS: \"45\"",
                1,
            ),
            haproxy.clone(),
            prometheus.clone(),
        ),
        (
            "does not scrape gavel-2",
            dockerfile.clone(),
            compose.clone(),
            haproxy.clone(),
            prometheus.replace(", \"gavel-2:3000\"", ""),
        ),
    ];
    for (expect, d, c, h, p) in cases {
        let problems = problems_of(&d, &c, &h, &p);
        assert!(
            problems.contains(expect),
            "a break about {expect:?} went unnoticed; problems:\n{problems}"
        );
    }
}
