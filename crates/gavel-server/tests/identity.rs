//! Identity from the marketplace and the browser/proxy boundaries, black-box: the real
//! `gavel serve` started with the flags, keys generated here (`openssl genpkey`), a local
//! JWKS server that rotates keys and goes down, tokens used over HTTP and WebSocket.

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, OctetKeyPairParameters,
    OctetKeyPairType,
};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const ISSUER: &str = "https://idp.test/";
const AUDIENCE: &str = "gavel-test";
const ADMIN_TOKEN: &str = "identity-test-admin-token";

// ---------------------------------------------------------------- keys and tokens

/// A key pair made by `openssl genpkey`.
struct KeyPair {
    alg: Algorithm,
    private_pem: String,
    public_pem: String,
    public_der: Vec<u8>,
}

fn openssl(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn generate(dir: &Path, name: &str, alg: Algorithm) -> KeyPair {
    let key = format!("{name}.key.pem");
    let genpkey: &[&str] = match alg {
        Algorithm::RS256 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        Algorithm::ES256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        Algorithm::ES384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        Algorithm::EdDSA => &["-algorithm", "ED25519"],
        other => panic!("no key for {other:?}"),
    };
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey);
    args.extend_from_slice(&["-out", &key]);
    openssl(&args, dir);
    let public_pem = String::from_utf8(openssl(&["pkey", "-in", &key, "-pubout"], dir)).unwrap();
    let public_der = openssl(&["pkey", "-in", &key, "-pubout", "-outform", "DER"], dir);
    KeyPair {
        alg,
        private_pem: std::fs::read_to_string(dir.join(&key)).unwrap(),
        public_pem,
        public_der,
    }
}

impl KeyPair {
    fn encoding(&self) -> EncodingKey {
        match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(self.private_pem.as_bytes()),
            Algorithm::ES256 | Algorithm::ES384 => {
                EncodingKey::from_ec_pem(self.private_pem.as_bytes())
            }
            Algorithm::EdDSA => EncodingKey::from_ed_pem(self.private_pem.as_bytes()),
            _ => unreachable!(),
        }
        .unwrap()
    }

    fn sign(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_string);
        encode(&h, claims, &self.encoding()).unwrap()
    }

    /// The public key as a JWK with `kid`.
    fn jwk(&self, kid: &str) -> Value {
        let mut jwk = match self.alg {
            Algorithm::EdDSA => Jwk {
                common: CommonParameters {
                    key_algorithm: Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA),
                    ..Default::default()
                },
                algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    // The raw key is the last 32 bytes of the SubjectPublicKeyInfo.
                    x: b64(&self.public_der[self.public_der.len() - 32..]),
                }),
            },
            alg => Jwk::from_encoding_key(&self.encoding(), alg).unwrap(),
        };
        jwk.common.key_id = Some(kid.into());
        serde_json::to_value(jwk).unwrap()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid claims for `sub`, changed by `extra` (a `null` removes a claim).
fn claims(sub: &str, extra: Value) -> Value {
    let mut c = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "name": format!("{sub} name"),
        "iat": now(), "exp": now() + 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

// ---------------------------------------------------------------- the server

struct Server {
    child: Child,
    base: String,
    ws: String,
    port: u16,
    log: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn gavel(args: &[String], dir: &Path, port: u16, log: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gavel"));
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--admin-token", ADMIN_TOKEN, "--bids-per-second", "1000"])
        .args(args)
        .env("RUST_LOG", "info,tower_http=warn")
        .env("NO_COLOR", "1")
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .stdout(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        );
    cmd
}

async fn start(args: &[String]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("gavel.log");
    #[allow(clippy::zombie_processes)] // `Server`'s Drop kills and waits for it.
    let mut child = gavel(args, dir.path(), port, &log).spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // No idle pooled connections: they would hold connection slots of 127.0.0.1.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..300 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "gavel exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Server {
                child,
                ws: format!("ws://127.0.0.1:{port}/ws"),
                base,
                port,
                log,
                http,
                _dir: dir,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "gavel did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

impl Server {
    async fn me(&self, token: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}/api/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// The error code `/api/me` answers `token` with (`None`: accepted).
    async fn refusal(&self, token: &str) -> Option<(u16, String)> {
        let (status, body) = self.me(token).await;
        (status != 200).then(|| (status, body["error"]["code"].as_str().unwrap().to_string()))
    }

    async fn create_auction(&self, token: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/api/auctions", self.base))
            .bearer_auth(token)
            .json(&json!({"title": "Lot", "starting_price": 1000, "increment": 100, "duration_ms": 600000}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket with extra request headers; `Err(status, body)` if refused.
async fn ws_with(url: &str, headers: &[(&'static str, &str)]) -> Result<WsStream, (u16, Value)> {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            let body = r
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((r.status().as_u16(), body))
        }
        Err(e) => panic!("WebSocket {url}: {e}"),
    }
}

async fn recv(ws: &mut WsStream, ty: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {ty} within 10 s"))
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == ty || v["type"] == "error" {
                return v;
            }
        }
    }
}

async fn send(ws: &mut WsStream, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

// ---------------------------------------------------------------- a JWKS server

/// Serves one JWKS document (changeable), counts requests, and can go down.
struct JwksServer {
    url: String,
    body: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(keys: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new(json!({ "keys": keys })));
        let hits = Arc::new(AtomicUsize::new(0));
        let (b, h) = (body.clone(), hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                let (b, h) = (b.clone(), h.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let doc = b.lock().to_string();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}",
                        doc.len()
                    );
                    let _ = tcp.write_all(resp.as_bytes()).await;
                    let _ = tcp.shutdown().await;
                });
            }
        });
        JwksServer {
            url,
            body,
            hits,
            task,
        }
    }

    fn set(&self, keys: Vec<Value>) {
        *self.body.lock() = json!({ "keys": keys });
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops listening: fetches are refused from now on.
    async fn go_down(&self) {
        self.task.abort();
        // The listener is dropped with the task.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let addr = self
            .url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "JWKS still up"
        );
    }
}

// ---------------------------------------------------------------- the tests

/// An HTTP status and error code; `None`: accepted.
type Refusal = Option<(u16, String)>;

fn code(c: &str) -> Refusal {
    Some((401, c.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pem_keys_of_every_type_verify_and_each_bad_token_gets_its_own_code() {
    let keys_dir = tempfile::tempdir().unwrap();
    let d = keys_dir.path();
    let rsa = generate(d, "rsa", Algorithm::RS256);
    let p256 = generate(d, "p256", Algorithm::ES256);
    let p384 = generate(d, "p384", Algorithm::ES384);
    let ed = generate(d, "ed", Algorithm::EdDSA);
    let stranger = generate(d, "stranger", Algorithm::ES256);
    let pem = d.join("idp.pem");
    std::fs::write(
        &pem,
        [&rsa, &p256, &p384, &ed]
            .iter()
            .map(|k| k.public_pem.as_str())
            .collect::<String>(),
    )
    .unwrap();
    let server = start(&args(&[
        "--jwt-public-key",
        pem.to_str().unwrap(),
        "--jwt-issuer",
        ISSUER,
        "--jwt-audience",
        AUDIENCE,
    ]))
    .await;

    // Every key type, with each algorithm its type allows.
    for (key, alg) in [
        (&rsa, Algorithm::RS256),
        (&rsa, Algorithm::RS384),
        (&rsa, Algorithm::RS512),
        (&p256, Algorithm::ES256),
        (&p384, Algorithm::ES384),
        (&ed, Algorithm::EdDSA),
    ] {
        let t = key.sign(alg, None, &claims("alice", json!({})));
        let (status, me) = server.me(&t).await;
        assert_eq!(status, 200, "{alg:?}: {me}");
        assert_eq!(
            me,
            json!({"id": "ext:alice", "name": "alice name", "role": "bidder"}),
            "{alg:?}"
        );
    }

    // Each bad token, its own code.
    let c = |extra| claims("alice", extra);
    let cases: Vec<(&str, String, Refusal)> = vec![
        (
            "expired",
            rsa.sign(Algorithm::RS256, None, &c(json!({"exp": now() - 120}))),
            code("token_expired"),
        ),
        (
            "expired within the leeway",
            rsa.sign(Algorithm::RS256, None, &c(json!({"exp": now() - 10}))),
            None,
        ),
        (
            "no expiry",
            rsa.sign(Algorithm::RS256, None, &c(json!({"exp": null}))),
            code("unauthorized"),
        ),
        (
            "future nbf",
            rsa.sign(Algorithm::RS256, None, &c(json!({"nbf": now() + 600}))),
            code("token_not_yet_valid"),
        ),
        (
            "future iat",
            rsa.sign(Algorithm::RS256, None, &c(json!({"iat": now() + 600}))),
            code("token_not_yet_valid"),
        ),
        (
            "nbf within the leeway",
            rsa.sign(Algorithm::RS256, None, &c(json!({"nbf": now() + 10}))),
            None,
        ),
        (
            "wrong issuer",
            rsa.sign(
                Algorithm::RS256,
                None,
                &c(json!({"iss": "https://evil.test/"})),
            ),
            code("bad_issuer"),
        ),
        (
            "no issuer (as a stale Gavel session)",
            rsa.sign(Algorithm::RS256, None, &c(json!({"iss": null}))),
            code("unauthorized"),
        ),
        (
            "wrong audience",
            rsa.sign(Algorithm::RS256, None, &c(json!({"aud": "other-service"}))),
            code("bad_audience"),
        ),
        (
            "audience list with ours",
            rsa.sign(Algorithm::RS256, None, &c(json!({"aud": ["x", AUDIENCE]}))),
            None,
        ),
        (
            "no audience",
            rsa.sign(Algorithm::RS256, None, &c(json!({"aud": null}))),
            code("bad_audience"),
        ),
        ("alg none", unsigned(&c(json!({}))), code("bad_signature")),
        (
            "HS256 with the public key as secret",
            encode(
                &Header::new(Algorithm::HS256),
                &c(json!({})),
                &EncodingKey::from_secret(rsa.public_pem.as_bytes()),
            )
            .unwrap(),
            code("bad_signature"),
        ),
        (
            "a key the issuer does not have",
            stranger.sign(Algorithm::ES256, None, &c(json!({}))),
            code("bad_signature"),
        ),
    ];
    for (what, token, expected) in &cases {
        assert_eq!(server.refusal(token).await, *expected, "{what}");
    }
    // A forged signature on a valid token.
    let good = rsa.sign(Algorithm::RS256, None, &claims("alice", json!({})));
    let mut forged = good.rsplit_once('.').unwrap().0.to_string();
    forged.push_str(".AAAA");
    assert_eq!(server.refusal(&forged).await, code("bad_signature"));

    // Guests are off by default with external identity on.
    let r = server
        .http
        .post(format!("{}/api/session", server.base))
        .json(&json!({"name": "Mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "guest_sessions_disabled"
    );

    // The admin role administers; a bidder may not.
    let admin = rsa.sign(
        Algorithm::RS256,
        None,
        &claims(
            "ops-1",
            json!({"name": "Olga Ops", "role": ["staff", "gavel:admin"]}),
        ),
    );
    let (status, me) = server.me(&admin).await;
    assert_eq!(
        (status, &me["role"], &me["id"]),
        (200, &json!("admin"), &json!("ext:ops-1"))
    );
    let (status, auction) = server.create_auction(&admin).await;
    assert_eq!(status, 201, "{auction}");
    let (status, refused) = server.create_auction(&good).await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (403, &json!("forbidden"))
    );
    // An external token is not renewed by Gavel.
    let r = server
        .http
        .post(format!("{}/api/session/refresh", server.base))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Over WebSocket: a bad token on connect is told its code, a bad `auth` too, and a good
    // one bids as the mapped user.
    let id = auction["id"].as_str().unwrap();
    let expired = rsa.sign(Algorithm::RS256, None, &c(json!({"exp": now() - 120})));
    let mut ws = ws_with(&format!("{}?token={expired}", server.ws), &[])
        .await
        .unwrap();
    assert!(recv(&mut ws, "hello").await["user"].is_null());
    assert_eq!(recv(&mut ws, "error").await["code"], "token_expired");
    for (token, expected) in [
        (
            rsa.sign(
                Algorithm::RS256,
                None,
                &c(json!({"iss": "https://evil.test/"})),
            ),
            "bad_issuer",
        ),
        (
            rsa.sign(Algorithm::RS256, None, &c(json!({"aud": "x"}))),
            "bad_audience",
        ),
        (unsigned(&c(json!({}))), "bad_signature"),
        (
            rsa.sign(Algorithm::RS256, None, &c(json!({"nbf": now() + 600}))),
            "token_not_yet_valid",
        ),
    ] {
        send(&mut ws, json!({"type": "auth", "token": token})).await;
        assert_eq!(recv(&mut ws, "hello").await["code"], expected);
    }
    let bob = ed.sign(
        Algorithm::EdDSA,
        None,
        &claims("bob", json!({"name": null, "preferred_username": "bobby"})),
    );
    send(&mut ws, json!({"type": "auth", "token": bob})).await;
    let hello = recv(&mut ws, "hello").await;
    assert_eq!(
        hello["user"],
        json!({"id": "ext:bob", "name": "bobby", "role": "bidder"})
    );
    send(
        &mut ws,
        json!({"type": "bid", "auction_id": id, "amount": 1000, "request_id": "b-1"}),
    )
    .await;
    let result = recv(&mut ws, "bid_result").await;
    assert_eq!(result["outcome"], "accepted", "{result}");
    let view: Value = server
        .http
        .get(format!("{}/api/auctions/{id}", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["leader"]["id"], "ext:bob", "{view}");
    assert_eq!(view["leader"]["name"], "bobby", "{view}");
    // Refusals are logged with their reason.
    assert!(
        server.log().contains("external token refused"),
        "{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hmac_provider_with_guests_on_maps_claims_and_marks_guests() {
    let secret = "marketplace-hmac-secret-0123456789abcdef";
    let server = start(&args(&[
        "--jwt-hmac-secret",
        secret,
        "--jwt-issuer",
        ISSUER,
        "--jwt-audience",
        AUDIENCE,
        "--jwt-name-claim",
        "nickname",
        "--jwt-role-claim",
        "realm_access.roles",
        "--jwt-admin-role",
        "auction-admin",
        "--guest-sessions",
        "true",
    ]))
    .await;
    let key = EncodingKey::from_secret(secret.as_bytes());
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let t = encode(
            &Header::new(alg),
            &claims(
                "carol",
                json!({"nickname": "Carol C", "realm_access": {"roles": ["auction-admin"]}}),
            ),
            &key,
        )
        .unwrap();
        assert_eq!(
            server.me(&t).await,
            (
                200,
                json!({"id": "ext:carol", "name": "Carol C", "role": "admin"})
            ),
            "{alg:?}"
        );
    }
    // The default `role` claim means nothing here; no name claim: the id.
    let t = encode(
        &Header::new(Algorithm::HS256),
        &claims("dave", json!({"name": null, "role": "auction-admin"})),
        &key,
    )
    .unwrap();
    assert_eq!(
        server.me(&t).await,
        (
            200,
            json!({"id": "ext:dave", "name": "dave", "role": "bidder"})
        )
    );
    let wrong = encode(
        &Header::new(Algorithm::HS256),
        &claims("dave", json!({})),
        &EncodingKey::from_secret(b"another-secret-another-secret-another"),
    )
    .unwrap();
    assert_eq!(server.refusal(&wrong).await, code("bad_signature"));

    // A guest named like a marketplace user is marked as a guest.
    let r: Value = server
        .http
        .post(format!("{}/api/session", server.base))
        .json(&json!({"name": "Carol C"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["user"]["name"], "Carol C (guest)", "{r}");
    assert!(r["user"]["id"].as_str().unwrap().starts_with("u-"));
    // Gavel's own sessions still work beside external tokens.
    assert_eq!(
        server.me(r["token"].as_str().unwrap()).await.1["name"],
        "Carol C (guest)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_external_identity_is_refused_at_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    for (i, flags) in [
        args(&[
            "--jwt-hmac-secret",
            "marketplace-hmac-secret-0123456789abcdef",
            "--jwt-audience",
            AUDIENCE,
        ]),
        args(&[
            "--jwks-url",
            "http://127.0.0.1:9/jwks.json",
            "--jwt-issuer",
            ISSUER,
        ]),
        args(&["--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE]),
        args(&[
            "--jwt-hmac-secret",
            "short",
            "--jwt-issuer",
            ISSUER,
            "--jwt-audience",
            AUDIENCE,
        ]),
    ]
    .into_iter()
    .enumerate()
    {
        let log = dir.path().join(format!("gavel-{i}.log"));
        let status = gavel(&flags, dir.path(), free_port(), &log)
            .status()
            .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!status.success(), "{flags:?} started");
        assert!(text.contains("external identity"), "{flags:?}: {text}");
        assert!(
            text.contains("--jwt-issuer") || text.contains("at least 32"),
            "{flags:?}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_belong_to_their_issuer_rotate_and_outlive_the_endpoint() {
    let keys_dir = tempfile::tempdir().unwrap();
    let d = keys_dir.path();
    let a1 = generate(d, "a1", Algorithm::RS256);
    let a2 = generate(d, "a2", Algorithm::EdDSA);
    let b1 = generate(d, "b1", Algorithm::ES256);
    let b2 = generate(d, "b2", Algorithm::ES384);
    let jwks_a = JwksServer::start(vec![a1.jwk("a1")]).await;
    let jwks_b = JwksServer::start(vec![b1.jwk("b1"), b2.jwk("b2")]).await;
    const OTHER: &str = "https://other-idp.test/";
    let server = start(&args(&[
        "--jwks-url",
        &format!("{},{}", jwks_a.url, jwks_b.url),
        "--jwt-issuer",
        &format!("{ISSUER},{OTHER}"),
        "--jwt-audience",
        AUDIENCE,
        "--jwks-min-refresh-secs",
        "2",
    ]))
    .await;
    assert_eq!(
        (jwks_a.hits(), jwks_b.hits()),
        (1, 1),
        "fetched once at start"
    );
    let of = |iss: &str, sub: &str| claims(sub, json!({"iss": iss}));

    // Each issuer's own keys; the second issuer's users are namespaced apart.
    let t = a1.sign(Algorithm::RS256, Some("a1"), &of(ISSUER, "u1"));
    assert_eq!(server.me(&t).await.1["id"], "ext:u1");
    let t = b1.sign(Algorithm::ES256, Some("b1"), &of(OTHER, "u1"));
    assert_eq!(server.me(&t).await.1["id"], "ext2:u1");
    let t = b2.sign(Algorithm::ES384, Some("b2"), &of(OTHER, "u1"));
    assert_eq!(server.me(&t).await.1["id"], "ext2:u1");

    // One issuer's kid presented with another issuer: that issuer has no such key.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let t = a1.sign(Algorithm::RS256, Some("a1"), &of(OTHER, "u1"));
    assert_eq!(server.refusal(&t).await, code("unknown_key"));
    assert_eq!(
        jwks_b.hits(),
        2,
        "the other issuer's JWKS was fetched again for it"
    );
    // ... nor does its key verify the other issuer's token under its own kid.
    let t = a1.sign(Algorithm::RS256, Some("b1"), &of(OTHER, "u1"));
    assert_eq!(server.refusal(&t).await, code("bad_signature"));

    // Unknown kids fetch at most once per interval, however many arrive.
    let before = jwks_a.hits();
    for i in 0..5 {
        let t = a1.sign(
            Algorithm::RS256,
            Some(&format!("nope-{i}")),
            &of(ISSUER, "u1"),
        );
        assert_eq!(server.refusal(&t).await, code("unknown_key"));
    }
    assert_eq!(jwks_a.hits(), before + 1, "one fetch for five unknown kids");

    // Rotation: a2 replaces a1 at the provider; the first token with a2 fetches it.
    jwks_a.set(vec![a2.jwk("a2")]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let t2 = a2.sign(Algorithm::EdDSA, Some("a2"), &of(ISSUER, "u2"));
    assert_eq!(
        server.me(&t2).await,
        (
            200,
            json!({"id": "ext:u2", "name": "u2 name", "role": "bidder"})
        )
    );
    // a1 was withdrawn with the same fetch.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let t1 = a1.sign(Algorithm::RS256, Some("a1"), &of(ISSUER, "u1"));
    assert_eq!(server.refusal(&t1).await, code("unknown_key"));

    // The provider goes down: known keys keep working, unknown ones are refused.
    jwks_a.go_down().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let t = a2.sign(Algorithm::EdDSA, Some("a2"), &of(ISSUER, "u3"));
    assert_eq!(server.me(&t).await.0, 200);
    let t = a2.sign(Algorithm::EdDSA, Some("a3"), &of(ISSUER, "u3"));
    assert_eq!(server.refusal(&t).await, code("unknown_key"));
    let t = a2.sign(Algorithm::EdDSA, Some("a2"), &of(ISSUER, "u3"));
    assert_eq!(
        server.me(&t).await.0,
        200,
        "still known after the failed fetch"
    );
    assert!(
        server.log().contains("JWKS fetch failed"),
        "{}",
        server.log()
    );

    // WebSocket: the JWKS-verified user bids.
    let (status, auction) = server.create_auction(ADMIN_TOKEN).await;
    assert_eq!(status, 201);
    let mut ws = ws_with(&format!("{}?token={t}", server.ws), &[])
        .await
        .unwrap();
    assert_eq!(recv(&mut ws, "hello").await["user"]["id"], "ext:u3");
    send(
        &mut ws,
        json!({"type": "bid", "auction_id": auction["id"], "amount": 1000, "request_id": "r1"}),
    )
    .await;
    assert_eq!(recv(&mut ws, "bid_result").await["outcome"], "accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_outside_the_list_cannot_open_websockets_or_pass_preflight() {
    let server = start(&args(&[
        "--allowed-origins",
        "https://shop.example,http://dev.test:*",
    ]))
    .await;
    let own = format!("http://127.0.0.1:{}", server.port);
    // Allowed: listed, any port of a `:*` entry, the server's own origin, and no Origin.
    for origin in ["https://shop.example", "http://dev.test:5173", own.as_str()] {
        let mut ws = ws_with(&server.ws, &[("origin", origin)])
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e:?}"));
        assert_eq!(recv(&mut ws, "hello").await["type"], "hello");
    }
    let mut ws = ws_with(&server.ws, &[]).await.unwrap();
    assert_eq!(recv(&mut ws, "hello").await["type"], "hello");
    // Refused: 403 with a JSON error, and a logged reason.
    for origin in ["https://evil.example", "http://localhost:5173", "null"] {
        let (status, body) = ws_with(&server.ws, &[("origin", origin)])
            .await
            .err()
            .unwrap();
        assert_eq!(
            (status, &body["error"]["code"]),
            (403, &json!("origin_not_allowed")),
            "{origin}"
        );
    }
    assert!(
        server.log().contains("WebSocket upgrade refused"),
        "{}",
        server.log()
    );

    // CORS preflight.
    let preflight = |origin: &'static str| {
        server
            .http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/auctions", server.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let r = preflight("https://shop.example").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert!(r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let r = preflight("https://evil.example").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "origin_not_allowed"
    );
    assert!(server.log().contains("CORS preflight refused"));

    // Simple requests: CORS headers only for an allowed origin; non-browser clients as ever.
    let get = |origin: Option<&'static str>| {
        let mut req = server.http.get(format!("{}/api/auctions", server.base));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let r = get(Some("https://shop.example")).await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["access-control-allow-origin"].to_str().unwrap()
        ),
        (200, "https://shop.example")
    );
    let r = get(Some("https://evil.example")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = get(None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // --demo allows local development origins on any port.
    let demo = start(&args(&["--demo"])).await;
    for origin in ["http://localhost:5173", "http://127.0.0.1:8080"] {
        let mut ws = ws_with(&demo.ws, &[("origin", origin)])
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e:?}"));
        assert_eq!(recv(&mut ws, "hello").await["type"], "hello");
    }
    assert_eq!(
        ws_with(&demo.ws, &[("origin", "https://evil.example")])
            .await
            .err()
            .unwrap()
            .0,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // Behind a trusted proxy (this test, on 127.0.0.1): each client named by the proxy has
    // its own cap of 2, and the proxy itself is not capped.
    let server = start(&args(&[
        "--trusted-proxies",
        "127.0.0.1/32,10.0.0.0/8",
        "--max-connections-per-ip",
        "2",
    ]))
    .await;
    let xff = |ip: &'static str| [("x-forwarded-for", ip)];
    let _a1 = ws_with(&server.ws, &xff("198.51.100.1")).await.unwrap();
    let _a2 = ws_with(&server.ws, &[("forwarded", "for=198.51.100.1;proto=https")])
        .await
        .unwrap();
    let (status, body) = ws_with(&server.ws, &xff("198.51.100.1"))
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &json!("too_many_connections"))
    );
    // The client-supplied left part is not believed past the proxy's own entry.
    let (status, _) = ws_with(&server.ws, &xff("203.0.113.5, 198.51.100.1"))
        .await
        .err()
        .unwrap();
    assert_eq!(status, 429);
    let _b1 = ws_with(&server.ws, &xff("198.51.100.2")).await.unwrap();
    let _b2 = ws_with(&server.ws, &xff("198.51.100.2")).await.unwrap();
    assert!(
        server.log().contains("client=198.51.100.1"),
        "{}",
        server.log()
    );
    // Plain HTTP through the proxy is served too.
    let r = server
        .http
        .get(format!("{}/api/auctions", server.base))
        .header("x-forwarded-for", "198.51.100.3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Without --trusted-proxies the headers are ignored: the cap is 127.0.0.1's.
    let plain = start(&args(&["--max-connections-per-ip", "2"])).await;
    // Let the start-up probe's connection close on the server's side.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _c1 = ws_with(&plain.ws, &xff("198.51.100.1")).await.unwrap();
    let _c2 = ws_with(&plain.ws, &xff("198.51.100.2")).await.unwrap();
    let (status, _) = ws_with(&plain.ws, &xff("198.51.100.3"))
        .await
        .err()
        .unwrap();
    assert_eq!(status, 429);
}

/// Distributed mode: the same external identity on a node over Redis and PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_admin_and_bidder_work_on_a_distributed_node() {
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let database_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let prefix = gavel_engine::conformance::redis_test_prefix(&redis_url, "gident").await;
    let schema = format!("gident_{}", uuid::Uuid::new_v4().simple());
    let keys_dir = tempfile::tempdir().unwrap();
    let ed = generate(keys_dir.path(), "ed", Algorithm::EdDSA);
    let pem = keys_dir.path().join("idp.pem");
    std::fs::write(&pem, &ed.public_pem).unwrap();
    let server = start(&args(&[
        "--redis",
        &redis_url,
        "--database",
        &database_url,
        "--redis-prefix",
        &prefix,
        "--database-schema",
        &schema,
        "--jwt-public-key",
        pem.to_str().unwrap(),
        "--jwt-issuer",
        ISSUER,
        "--jwt-audience",
        AUDIENCE,
    ]))
    .await;
    let admin = ed.sign(
        Algorithm::EdDSA,
        None,
        &claims("ops", json!({"role": "gavel:admin"})),
    );
    let (status, auction) = server.create_auction(&admin).await;
    assert_eq!(status, 201, "{auction}");
    let bidder = ed.sign(Algorithm::EdDSA, None, &claims("zoe", json!({})));
    let mut ws = ws_with(&format!("{}?token={bidder}", server.ws), &[])
        .await
        .unwrap();
    assert_eq!(recv(&mut ws, "hello").await["user"]["id"], "ext:zoe");
    send(
        &mut ws,
        json!({"type": "bid", "auction_id": auction["id"], "amount": 1000, "request_id": "z1"}),
    )
    .await;
    assert_eq!(recv(&mut ws, "bid_result").await["outcome"], "accepted");
    let expired = ed.sign(
        Algorithm::EdDSA,
        None,
        &claims("zoe", json!({"exp": now() - 120})),
    );
    assert_eq!(server.refusal(&expired).await, code("token_expired"));
    drop(server);
    // Clean up the prefix and schema.
    if let Ok(mut c) = redis::Client::open(redis_url).and_then(|c| c.get_connection()) {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query(&mut c)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut c);
        }
    }
    if let Ok((client, conn)) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls).await
    {
        tokio::spawn(conn);
        let _ = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await;
    }
}
