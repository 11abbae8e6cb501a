//! A concurrent black-box workload that records its history for `gavel-check`.
//!
//! Tens of clients, half over WebSocket and half over HTTP, spread over the given nodes,
//! bid plain and maximum amounts (sometimes with `expected_seq`, sometimes too low, now and
//! then buy-now) on a few auctions with short soft-close windows, read views, snapshots and
//! history pages in between, and retry requests with the same request id: after the
//! answer, over the other transport or node, and at the same time as the first attempt.
//! An admin ends one auction early and then tries to cancel it. Every operation is recorded
//! with its send and receive times, then the clients read every auction's final state.

use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use gavel_check::history::{
    Admin, AdminAction, Answer, Bid, Call, Create, HistoryPage, Record, Snapshot, SnapshotBody,
    Via, View,
};
use gavel_check::record::now_us;
use gavel_check::Recorder;
use gavel_core::BidKind;
use gavel_protocol::{
    AuctionView, BidHistory, BidResult, CreateAuction, ErrorCode, ErrorDetail, UserRef,
};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a client waits for any answer before recording it as lost.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A server node: `http://host:port`.
#[derive(Clone, Debug)]
pub struct Node {
    pub base: String,
}

impl Node {
    fn ws_url(&self, token: &str) -> String {
        format!(
            "{}/ws?token={token}",
            self.base.replacen("http://", "ws://", 1)
        )
    }
}

/// The shape of a run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub clients: usize,
    /// Seconds of bidding; the auctions end around 5–8 s after they are created.
    pub bidding_secs: f64,
    pub seed: u64,
    /// Distinguishes this run's auction ids.
    pub tag: String,
    /// Told the auction ids once they exist (for watchers started beside the workload).
    pub created: Option<tokio::sync::mpsc::UnboundedSender<Vec<String>>>,
}

/// What the run did, for coverage assertions.
#[derive(Debug, Default)]
pub struct Tally {
    pub auctions: Vec<String>,
    pub bids: usize,
    pub outcomes: HashMap<String, usize>,
    pub retries: usize,
    pub reads: usize,
}

fn call(auction: &str, client: &str, via: Via, node: usize, sent: i64) -> Call {
    Call {
        auction: auction.into(),
        client: client.into(),
        via,
        node: Some(node),
        sent,
        received: Some(now_us()),
    }
}

type WsSink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
type Waiter = oneshot::Sender<(i64, Value)>;

/// Who is waiting for which answer on one WebSocket.
#[derive(Default)]
struct Waiting {
    bids: HashMap<String, VecDeque<Waiter>>,
    snapshots: HashMap<String, VecDeque<Waiter>>,
}

/// One open WebSocket: its writer, and who waits for which answer on it.
struct Socket {
    sink: WsSink,
    waiting: Arc<Mutex<Waiting>>,
    alive: Arc<std::sync::atomic::AtomicBool>,
}

/// A client's WebSocket: a writer held by its client and a reader task routing answers.
/// When the connection is gone (its node was killed), the next request opens a new one,
/// to the client's node or else the next one that answers, as a real client reconnects.
struct WsConn {
    nodes: Vec<Node>,
    home: usize,
    token: String,
    socket: tokio::sync::Mutex<Option<Socket>>,
}

impl WsConn {
    /// Opens the first connection (retrying on every node for up to 30 s).
    async fn open(nodes: &[Node], home: usize, token: &str) -> WsConn {
        let conn = WsConn {
            nodes: nodes.to_vec(),
            home,
            token: token.to_string(),
            socket: tokio::sync::Mutex::new(None),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(socket) = conn.connect().await {
                *conn.socket.lock().await = Some(socket);
                return conn;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no node accepted a WebSocket for 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A new connection: the home node first, then the others.
    async fn connect(&self) -> Option<Socket> {
        for k in 0..self.nodes.len() {
            let node = &self.nodes[(self.home + k) % self.nodes.len()];
            let attempt = tokio_tungstenite::connect_async(node.ws_url(&self.token));
            if let Ok(Ok((stream, _))) = tokio::time::timeout(Duration::from_secs(2), attempt).await
            {
                return Some(Self::route(stream));
            }
        }
        None
    }

    fn route(stream: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Socket {
        let (sink, mut stream) = stream.split();
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (w, up) = (waiting.clone(), alive.clone());
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let at = now_us();
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let mut w = w.lock();
                let queue = match v["type"].as_str() {
                    Some("bid_result") | Some("error") if v["request_id"].is_string() => {
                        w.bids.get_mut(v["request_id"].as_str().unwrap_or_default())
                    }
                    Some("snapshot") => w
                        .snapshots
                        .get_mut(v["auction"]["id"].as_str().unwrap_or_default()),
                    Some("error") if v["auction_id"].is_string() => w
                        .snapshots
                        .get_mut(v["auction_id"].as_str().unwrap_or_default()),
                    _ => None,
                };
                if let Some(tx) = queue.and_then(VecDeque::pop_front) {
                    let _ = tx.send((at, v));
                }
            }
            // The connection is gone: every waiter hears nothing (its receiver errors).
            up.store(false, std::sync::atomic::Ordering::SeqCst);
            let mut w = w.lock();
            w.bids.clear();
            w.snapshots.clear();
        });
        Socket {
            sink,
            waiting,
            alive,
        }
    }

    /// Sends `msg` on the live connection (opening a new one if it is gone); the waiting
    /// list of the connection it went out on, `None` when it could not be sent.
    async fn send(&self, msg: &Value, register: impl FnOnce(&mut Waiting)) -> bool {
        let mut socket = self.socket.lock().await;
        let dead = socket
            .as_ref()
            .is_none_or(|s| !s.alive.load(std::sync::atomic::Ordering::SeqCst));
        if dead {
            *socket = self.connect().await;
        }
        let Some(s) = socket.as_mut() else {
            return false;
        };
        register(&mut s.waiting.lock());
        if s.sink.send(Message::text(msg.to_string())).await.is_err() {
            *socket = None;
            return false;
        }
        true
    }

    /// Sends `msg` and waits for the answer routed by `key`; `None` when none came.
    async fn ask(
        &self,
        msg: Value,
        bid_key: Option<&str>,
        snapshot_key: Option<&str>,
    ) -> (i64, Option<(i64, Value)>) {
        let (tx, rx) = oneshot::channel();
        let sent = now_us();
        let ok = self
            .send(&msg, |w| {
                let map = if bid_key.is_some() {
                    &mut w.bids
                } else {
                    &mut w.snapshots
                };
                map.entry(bid_key.or(snapshot_key).unwrap_or_default().to_string())
                    .or_default()
                    .push_back(tx);
            })
            .await;
        if !ok {
            return (sent, None);
        }
        match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
            Ok(Ok(answer)) => (sent, Some(answer)),
            _ => (sent, None),
        }
    }
}

/// A signed-in client.
struct Client {
    name: String,
    user: UserRef,
    token: String,
    node: usize,
    ws: Option<WsConn>,
    rng: StdRng,
    /// The latest view of each auction this client saw.
    known: HashMap<String, AuctionView>,
    next_request: usize,
}

/// Everything the clients share.
struct Shared {
    nodes: Vec<Node>,
    http: reqwest::Client,
    rec: Arc<Recorder>,
    tally: Mutex<Tally>,
}

impl Shared {
    /// Places one bid attempt and records it.
    #[allow(clippy::too_many_arguments)]
    async fn bid(
        &self,
        c: &Client,
        via: Via,
        node: usize,
        auction: &str,
        rid: &str,
        amount: i64,
        kind: BidKind,
        expected_seq: Option<u64>,
    ) -> Option<BidResult> {
        let kind_name = kind.as_str();
        let (sent, answer, received): (i64, Answer<BidResult>, Option<i64>) = match (via, &c.ws) {
            (Via::Ws, Some(ws)) => {
                let mut msg = json!({"type": "bid", "auction_id": auction, "amount": amount,
                    "request_id": rid, "kind": kind_name});
                if let Some(e) = expected_seq {
                    msg["expected_seq"] = e.into();
                }
                let (sent, got) = ws.ask(msg, Some(rid), None).await;
                match got {
                    Some((at, v)) if v["type"] == "bid_result" => (
                        sent,
                        serde_json::from_value(v)
                            .map(Answer::Ok)
                            .unwrap_or_else(|e| {
                                Answer::Lost(format!("unreadable bid_result: {e}"))
                            }),
                        Some(at),
                    ),
                    Some((at, v)) => (sent, Answer::Error(error_detail(&v)), Some(at)),
                    None => (
                        sent,
                        Answer::Lost("no answer within 5 s".into()),
                        Some(now_us()),
                    ),
                }
            }
            _ => {
                let mut body = json!({"amount": amount, "request_id": rid, "kind": kind_name});
                if let Some(e) = expected_seq {
                    body["expected_seq"] = e.into();
                }
                let sent = now_us();
                let r = self
                    .http
                    .post(format!(
                        "{}/api/auctions/{auction}/bids",
                        self.nodes[node].base
                    ))
                    .bearer_auth(&c.token)
                    .json(&body)
                    .send()
                    .await;
                let answer = match r {
                    Ok(r) => match r.json::<Value>().await {
                        Ok(v) if v["outcome"].is_string() => serde_json::from_value(v)
                            .map(Answer::Ok)
                            .unwrap_or_else(|e| Answer::Lost(format!("unreadable result: {e}"))),
                        Ok(v) => Answer::Error(error_detail(&v["error"])),
                        Err(e) => Answer::Lost(format!("unreadable body: {e}")),
                    },
                    Err(e) => Answer::Lost(format!("request failed: {e}")),
                };
                (sent, answer, Some(now_us()))
            }
        };
        let result = match &answer {
            Answer::Ok(r) => Some(r.clone()),
            _ => None,
        };
        {
            let mut t = self.tally.lock();
            t.bids += 1;
            let label = match &answer {
                Answer::Ok(r) => r.outcome.clone(),
                Answer::Error(e) => format!("error:{}", e.code),
                Answer::Lost(_) => "lost".into(),
            };
            *t.outcomes.entry(label).or_default() += 1;
        }
        let mut call = call(auction, &c.name, via, node, sent);
        call.received = received;
        self.rec.record(Record::Bid(Bid {
            call,
            bidder: c.user.clone(),
            request_id: rid.into(),
            amount,
            kind,
            expected_seq,
            answer,
        }));
        result
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: String) -> Answer<T> {
        match self.http.get(url).send().await {
            Ok(r) => match r.json::<Value>().await {
                Ok(v) if v["error"].is_object() => Answer::Error(error_detail(&v["error"])),
                Ok(v) => serde_json::from_value(v)
                    .map(Answer::Ok)
                    .unwrap_or_else(|e| Answer::Lost(format!("unreadable body: {e}"))),
                Err(e) => Answer::Lost(format!("unreadable body: {e}")),
            },
            Err(e) => Answer::Lost(format!("request failed: {e}")),
        }
    }

    async fn view(&self, client: &str, node: usize, auction: &str) -> Option<AuctionView> {
        let sent = now_us();
        let answer: Answer<AuctionView> = self
            .get_json(format!("{}/api/auctions/{auction}", self.nodes[node].base))
            .await;
        let seen = match &answer {
            Answer::Ok(v) => Some(v.clone()),
            _ => None,
        };
        self.rec.record(Record::View(View {
            call: call(auction, client, Via::Http, node, sent),
            answer,
        }));
        self.tally.lock().reads += 1;
        seen
    }

    /// One history page; returns `next_before_seq`.
    async fn page(
        &self,
        client: &str,
        node: usize,
        auction: &str,
        limit: u32,
        before: Option<u64>,
    ) -> Option<u64> {
        let sent = now_us();
        let url = match before {
            Some(b) => format!(
                "{}/api/auctions/{auction}/bids?limit={limit}&before_seq={b}",
                self.nodes[node].base
            ),
            None => format!(
                "{}/api/auctions/{auction}/bids?limit={limit}",
                self.nodes[node].base
            ),
        };
        let answer: Answer<BidHistory> = self.get_json(url).await;
        let next = match &answer {
            Answer::Ok(h) => h.next_before_seq,
            _ => None,
        };
        self.rec.record(Record::HistoryPage(HistoryPage {
            call: call(auction, client, Via::Http, node, sent),
            limit,
            before_seq: before,
            answer,
        }));
        self.tally.lock().reads += 1;
        next
    }

    /// Subscribes for a snapshot, then unsubscribes.
    async fn snapshot(&self, c: &Client, auction: &str) -> Option<AuctionView> {
        let ws = c.ws.as_ref()?;
        let (sent, got) = ws
            .ask(
                json!({"type": "subscribe", "auction_id": auction}),
                None,
                Some(auction),
            )
            .await;
        ws.send(
            &json!({"type": "unsubscribe", "auction_id": auction}),
            |_| {},
        )
        .await;
        let (answer, received) = match got {
            Some((at, v)) if v["type"] == "snapshot" => (
                serde_json::from_value::<SnapshotBody>(v)
                    .map(Answer::Ok)
                    .unwrap_or_else(|e| Answer::Lost(format!("unreadable snapshot: {e}"))),
                at,
            ),
            Some((at, v)) => (Answer::Error(error_detail(&v)), at),
            None => (Answer::Lost("no snapshot within 5 s".into()), now_us()),
        };
        let seen = match &answer {
            Answer::Ok(s) => Some(s.auction.clone()),
            _ => None,
        };
        let mut call = call(auction, &c.name, Via::Ws, c.node, sent);
        call.received = Some(received);
        self.rec.record(Record::Snapshot(Snapshot { call, answer }));
        self.tally.lock().reads += 1;
        seen
    }

    async fn admin(&self, token: &str, auction: &str, action: AdminAction) {
        let path = match action {
            AdminAction::Cancel => "cancel",
            AdminAction::EndEarly => "end",
        };
        // A node that refuses the connection never saw the request: the next one is asked
        // (a node may be down in the chaos run).
        let mut node = 0;
        let (sent, r) = loop {
            let sent = now_us();
            let r = self
                .http
                .post(format!(
                    "{}/api/auctions/{auction}/{path}",
                    self.nodes[node].base
                ))
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await;
            match r {
                Err(e) if e.is_connect() && node + 1 < self.nodes.len() => node += 1,
                r => break (sent, r),
            }
        };
        let answer = match r {
            Ok(r) => match r.json::<Value>().await {
                Ok(v) if v["error"].is_object() => Answer::Error(error_detail(&v["error"])),
                Ok(v) => serde_json::from_value(v)
                    .map(Answer::Ok)
                    .unwrap_or_else(|e| Answer::Lost(format!("unreadable body: {e}"))),
                Err(e) => Answer::Lost(format!("unreadable body: {e}")),
            },
            Err(e) => Answer::Lost(format!("request failed: {e}")),
        };
        self.rec.record(Record::Admin(Admin {
            call: call(auction, "admin", Via::Http, node, sent),
            action,
            answer,
        }));
    }
}

/// An error as answered. A code this version does not know counts as `internal`: the
/// request may have been decided.
fn error_detail(v: &Value) -> ErrorDetail {
    ErrorDetail {
        code: v["code"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(ErrorCode::Internal),
        message: v["message"].as_str().unwrap_or_default().to_string(),
    }
}

/// The auctions of a run: (id suffix, creation body). Times are relative to `now_ms`.
fn auction_bodies(tag: &str, now_ms: i64) -> Vec<CreateAuction> {
    let soft = |window_ms, extend_ms, max_extension_ms| {
        Some(gavel_protocol::SoftCloseView {
            window_ms,
            extend_ms,
            max_extension_ms: Some(max_extension_ms),
        })
    };
    let base = |id: &str| CreateAuction {
        id: Some(format!("lin-{tag}-{id}")),
        title: format!("Linearizability lot {id}"),
        currency: Some("USD".into()),
        starting_price: 1000.into(),
        increment: Some(100.into()),
        ..CreateAuction::default()
    };
    vec![
        CreateAuction {
            duration_ms: Some(5_000),
            soft_close: soft(1_500, 1_000, 2_500),
            ..base("soft")
        },
        CreateAuction {
            increment: None,
            increment_table: Some(vec![
                gavel_protocol::IncrementBandView {
                    from: 0,
                    increment: 100,
                },
                gavel_protocol::IncrementBandView {
                    from: 3_000,
                    increment: 250,
                },
            ]),
            reserve: Some(3_500.into()),
            duration_ms: Some(5_500),
            soft_close: soft(1_000, 700, 2_000),
            ..base("table")
        },
        CreateAuction {
            reserve: Some(6_000.into()),
            buy_now: Some(9_000.into()),
            duration_ms: Some(6_000),
            soft_close: soft(1_200, 800, 2_000),
            ..base("buynow")
        },
        CreateAuction {
            starts_at: Some(now_ms + 1_500),
            ends_at: Some(now_ms + 6_000),
            soft_close: soft(1_000, 600, 1_500),
            ..base("scheduled")
        },
        CreateAuction {
            duration_ms: Some(30_000),
            ..base("ended")
        },
    ]
}

/// Runs the workload against `nodes` and records every operation into `rec`.
pub async fn run(nodes: Vec<Node>, admin_token: &str, plan: Plan, rec: Arc<Recorder>) -> Tally {
    let shared = Arc::new(Shared {
        nodes,
        http: reqwest::Client::builder()
            .timeout(ANSWER_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
        rec,
        tally: Mutex::new(Tally::default()),
    });
    let admin = session(&shared, 0, "Sale clerk", Some(admin_token)).await.1;
    let now_ms = now_us() / 1000;
    let mut views = Vec::new();
    for body in auction_bodies(&plan.tag, now_ms) {
        let (sent, view) = create(&shared, admin_token, &body).await;
        let id = view.id.clone();
        shared.rec.record(Record::Create(Create {
            call: call(&id, "admin", Via::Http, 0, sent),
            request: body,
            answer: Answer::Ok(view.clone()),
        }));
        views.push(view);
    }
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    shared.tally.lock().auctions = ids.clone();
    if let Some(tx) = &plan.created {
        let _ = tx.send(ids.clone());
    }
    let mut clients = Vec::new();
    for i in 0..plan.clients {
        let node = i % shared.nodes.len();
        let name = format!("c{i:02}");
        let (user, token) = session(&shared, node, &name, None).await;
        let ws = if i % 2 == 0 {
            Some(WsConn::open(&shared.nodes, node, &token).await)
        } else {
            None
        };
        clients.push(Client {
            name,
            user,
            token,
            node,
            ws,
            rng: StdRng::seed_from_u64(plan.seed.wrapping_add(i as u64)),
            known: views.iter().map(|v| (v.id.clone(), v.clone())).collect(),
            next_request: 0,
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(plan.bidding_secs);
    let ended = ids[4].clone();
    let admin_task = {
        let shared = shared.clone();
        let admin = admin.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3_000)).await;
            shared.admin(&admin, &ended, AdminAction::EndEarly).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            shared.admin(&admin, &ended, AdminAction::Cancel).await;
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for c in clients {
        let shared = shared.clone();
        let ids = ids.clone();
        tasks.spawn(client_loop(shared, c, ids, deadline));
    }
    let mut clients = Vec::new();
    while let Some(c) = tasks.join_next().await {
        clients.push(c.expect("a client task"));
    }
    admin_task.await.unwrap();
    // Everything ends within seconds; wait until every node shows every auction closed,
    // then read each one's final state and whole history from every node.
    let settle = tokio::time::Instant::now() + Duration::from_secs(15);
    for id in &ids {
        for node in 0..shared.nodes.len() {
            loop {
                let closed = shared
                    .view("final", node, id)
                    .await
                    .is_some_and(|v| v.closing.is_some());
                if closed || tokio::time::Instant::now() > settle {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let mut before = None;
            loop {
                before = shared.page("final", node, id, 20, before).await;
                if before.is_none() {
                    break;
                }
            }
        }
    }
    drop(clients);
    let shared = Arc::try_unwrap(shared).ok().expect("clients are done");
    shared.tally.into_inner()
}

/// Creates an auction, trying each node in turn for up to 30 s (a node may be down, Redis
/// restarting). When an attempt's answer was lost, the auction may exist: it is read back,
/// and its view (nobody can have bid on an id nobody was told) stands for the answer.
/// Returns the first attempt's send time and the view.
async fn create(shared: &Shared, admin_token: &str, body: &CreateAuction) -> (i64, AuctionView) {
    let id = body.id.clone().expect("the workload names its auctions");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let sent = now_us();
    for attempt in 0.. {
        let node = &shared.nodes[attempt % shared.nodes.len()];
        let r = shared
            .http
            .post(format!("{}/api/auctions", node.base))
            .bearer_auth(admin_token)
            .json(body)
            .send()
            .await;
        if let Ok(r) = r {
            if r.status() == 201 {
                if let Ok(view) = r.json::<AuctionView>().await {
                    return (sent, view);
                }
            }
        }
        if attempt > 0 {
            if let Answer::Ok(view) = shared
                .get_json::<AuctionView>(format!("{}/api/auctions/{id}", node.base))
                .await
            {
                return (sent, view);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "creating {id} failed on every node for 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    unreachable!()
}

/// Signs in on `node` (or, when it does not answer, the next ones) within 30 s.
async fn session(
    shared: &Shared,
    node: usize,
    name: &str,
    admin: Option<&str>,
) -> (UserRef, String) {
    let mut body = json!({ "name": name });
    if let Some(a) = admin {
        body["admin_token"] = a.into();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for attempt in 0.. {
        let base = &shared.nodes[(node + attempt) % shared.nodes.len()].base;
        let r = shared
            .http
            .post(format!("{base}/api/session"))
            .json(&body)
            .send()
            .await;
        if let Ok(r) = r {
            if let Ok(v) = r.json::<Value>().await {
                if let (Some(id), Some(n), Some(token)) = (
                    v["user"]["id"].as_str(),
                    v["user"]["name"].as_str(),
                    v["token"].as_str(),
                ) {
                    let user = UserRef {
                        id: id.into(),
                        name: n.into(),
                    };
                    return (user, token.into());
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "signing in {name} failed on every node for 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    unreachable!()
}

/// One client: bids and reads until the deadline.
async fn client_loop(
    shared: Arc<Shared>,
    mut c: Client,
    ids: Vec<String>,
    deadline: tokio::time::Instant,
) -> Client {
    let own = if c.ws.is_some() { Via::Ws } else { Via::Http };
    let other_node = (c.node + 1) % shared.nodes.len();
    while tokio::time::Instant::now() < deadline {
        let auction = ids[c.rng.random_range(0..ids.len())].clone();
        let roll: f64 = c.rng.random();
        if roll < 0.15 {
            let seen = match c.rng.random_range(0..3) {
                0 if c.ws.is_some() => shared.snapshot(&c, &auction).await,
                1 => {
                    let limit = c.rng.random_range(1..=30);
                    shared.page(&c.name, c.node, &auction, limit, None).await;
                    None
                }
                _ => shared.view(&c.name, c.node, &auction).await,
            };
            if let Some(v) = seen {
                c.known.insert(auction.clone(), v);
            }
        } else {
            let v = c.known[&auction].clone();
            let inc = v.increment;
            let (kind, amount) = match c.rng.random_range(0..100) {
                // Buy-now only once bidding is under way, so it does not end the auction
                // before the rest of the workload has happened.
                0..3 if v.buy_now_available && v.bid_count >= 20 => {
                    (BidKind::BuyNow, v.buy_now.unwrap_or(1))
                }
                0..8 => (BidKind::Plain, (v.min_bid - inc).max(1)),
                8..70 => (BidKind::Plain, v.min_bid + inc * c.rng.random_range(0..3)),
                _ => (BidKind::Max, v.min_bid + inc * c.rng.random_range(1..12)),
            };
            let expected = c.rng.random_bool(0.2).then_some(v.seq);
            c.next_request += 1;
            let rid = format!("{}-{}", c.name, c.next_request);
            let retry: f64 = c.rng.random();
            let result = if retry < 0.05 {
                // The same request twice at once: over both transports, or twice on one.
                let second = if c.ws.is_some() && c.rng.random_bool(0.5) {
                    Via::Ws
                } else {
                    Via::Http
                };
                let node2 = if second == Via::Http {
                    other_node
                } else {
                    c.node
                };
                let (a, _) = tokio::join!(
                    shared.bid(&c, own, c.node, &auction, &rid, amount, kind, expected),
                    shared.bid(&c, second, node2, &auction, &rid, amount, kind, expected),
                );
                shared.tally.lock().retries += 1;
                a
            } else {
                let a = shared
                    .bid(&c, own, c.node, &auction, &rid, amount, kind, expected)
                    .await;
                if retry < 0.15 {
                    // Asked again later, through the other door (and node, if there are two).
                    let via = if own == Via::Ws && c.rng.random_bool(0.5) {
                        Via::Http
                    } else {
                        own
                    };
                    let node = if via == Via::Http { other_node } else { c.node };
                    shared
                        .bid(&c, via, node, &auction, &rid, amount, kind, expected)
                        .await;
                    shared.tally.lock().retries += 1;
                }
                a
            };
            if let Some(view) = result.and_then(|r| r.auction) {
                let newer = c.known.get(&auction).is_none_or(|k| k.seq <= view.seq);
                if newer {
                    c.known.insert(auction.clone(), view);
                }
            }
        }
        let pause = c.rng.random_range(10..60);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    c
}
