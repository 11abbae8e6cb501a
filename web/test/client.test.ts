import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { GavelClient, refreshDelay } from "../src/client";
import type { SocketLike } from "@gavel/client";
import type { AuctionView, SessionResponse as Session } from "@gavel/client";

describe("refreshDelay", () => {
  it("refreshes when a fifth of the token's life is left, at most a minute before expiry", () => {
    expect(refreshDelay(10_000)).toBe(8_000);
    expect(refreshDelay(100_000)).toBe(80_000);
    expect(refreshDelay(24 * 3600_000)).toBe(24 * 3600_000 - 60_000);
    expect(refreshDelay(0)).toBe(0);
    expect(refreshDelay(-5_000)).toBe(0);
  });
});

class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: { type: string; [k: string]: unknown }[] = [];
  closed = false;
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.closed = true;
  }
  frame(msg: object) {
    this.readyState = 1;
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  hello(user: object | null = null) {
    this.frame({ type: "hello", user, server_time: Date.now(), heartbeat_ms: 1_000, limits: { max_message_bytes: 4096, max_subscriptions: 100, bids_per_second: 10 } });
  }
  last(type: string) {
    return [...this.sent].reverse().find((m) => m.type === type);
  }
}

const alice = { id: "u-alice", name: "Alice", role: "bidder" };
const view = (over: Partial<AuctionView> = {}): AuctionView => ({
  id: "cam",
  title: "Camera",
  description: "",
  currency: "USD",
  starting_price: 10000,
  increment: 1000,
  starts_at: 0,
  ends_at: Date.now() + 600_000,
  original_ends_at: Date.now() + 600_000,
  status: "open",
  price: 11000,
  leader: { id: "u-alice", name: "Alice" },
  bid_count: 1,
  seq: 2,
  min_bid: 12000,
  has_reserve: false,
  reserve_met: null,
  buy_now: null,
  buy_now_available: false,
  closing: null,
  ...over,
});

describe("GavelClient against a fake server", () => {
  let sockets: FakeSocket[];
  let fetches: { url: string; init: RequestInit }[];
  let refreshAnswer: () => Response;

  function client(session: Session | null) {
    const c = new GavelClient(session, {
      socket: (url) => {
        const s = new FakeSocket(url);
        sockets.push(s);
        return s;
      },
      online: () => true,
      reconnect: { baseMs: 100, maxMs: 100 },
    });
    c.start();
    return c;
  }
  const ws = () => sockets[sockets.length - 1];

  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal("location", { protocol: "http:", host: "test" });
    sockets = [];
    fetches = [];
    refreshAnswer = () => new Response(JSON.stringify({ error: { code: "unauthorized", message: "no" } }), { status: 401 });
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit) => {
        fetches.push({ url, init });
        if (url === "/api/session/refresh") return refreshAnswer();
        return new Promise<Response>(() => {}); // HTTP reads stay unanswered: the socket is the source
      }),
    );
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("confirms a room only after the resubscribe's barrier pong, and unconfirms it when the socket dies", () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 3600_000 });
    c.watchAuction("cam");
    ws().hello(alice);
    expect(ws().last("subscribe")).toEqual({ type: "subscribe", auction_id: "cam" });
    ws().frame({ type: "snapshot", auction: view(), server_time: Date.now(), recent_bids: [], resync: false });
    expect(c.getState().rooms.cam.live).toBe(true);
    // Silence: dead within 2.5 heartbeats; the room is no longer confirmed.
    vi.advanceTimersByTime(2_750);
    expect(c.getState().conn.status).toBe("reconnecting");
    expect(c.getState().rooms.cam.live).toBe(false);
    // A new socket: subscribe from the seq held, then a ping; only its pong confirms.
    vi.advanceTimersByTime(200);
    ws().hello(alice);
    expect(ws().sent.map((m) => m.type).slice(0, 2)).toEqual(["subscribe", "ping"]);
    expect(ws().sent[0]).toEqual({ type: "subscribe", auction_id: "cam", since_seq: 2 });
    expect(c.getState().rooms.cam.live).toBe(false);
    const barrier = ws().sent[1].client_time as number;
    ws().frame({ type: "pong", client_time: barrier - 1, server_time: Date.now() }); // another ping's pong
    expect(c.getState().rooms.cam.live).toBe(false);
    ws().frame({ type: "pong", client_time: barrier, server_time: Date.now() });
    expect(c.getState().rooms.cam.live).toBe(true);
    c.stop();
  });

  it("a server's reconnect (rolling restart) moves to a new socket with no status change, no unconfirmed room and no error; the unanswered bid goes out again", () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 3600_000 });
    c.watchAuction("cam");
    ws().hello(alice);
    ws().frame({ type: "snapshot", auction: view(), server_time: Date.now(), recent_bids: [], resync: false });
    expect(c.getState().rooms.cam.live).toBe(true);
    const seen: { status: string; live: boolean }[] = [];
    c.subscribe(() => seen.push({ status: c.getState().conn.status, live: c.getState().rooms.cam.live }));
    const old = ws();
    old.frame({ type: "reconnect", delay_ms: 1_500, reason: "draining" });
    // Served until the delay: a bid and an update still go through the old socket.
    const attempt = c.placeBid("cam", 12000);
    expect(old.last("bid")).toMatchObject({ request_id: attempt.requestId });
    vi.advanceTimersByTime(1_000);
    old.frame({ type: "update", auction_id: "cam", seq: 3, event: "bid", price: 12000, min_bid: 13000 });
    old.readyState = 3;
    old.onclose?.({}); // the server's close 1012, before the delay
    expect(sockets.length).toBe(2); // at once, no back-off
    expect(ws().url).toBe(old.url);
    ws().hello(alice);
    expect(ws().sent[0]).toEqual({ type: "subscribe", auction_id: "cam", since_seq: 3 });
    expect(ws().last("bid")).toMatchObject({ type: "bid", request_id: attempt.requestId, amount: 12000 });
    ws().frame({ type: "bid_result", request_id: attempt.requestId, auction_id: "cam", outcome: "accepted", message: "ok", auction: view({ seq: 3, price: 12000 }) });
    expect(c.getState().bids.cam).toMatchObject({ state: "done", outcome: "accepted" });
    expect(c.getState().rooms.cam.auction).toMatchObject({ seq: 3, price: 12000 });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => s.status === "open" && s.live)).toBe(true);
    expect(c.getState().roomErrors).toEqual({});
    expect(c.getState().sessionProblem).toBe(null);
    c.stop();
  });

  it("reports the latency of a watched room's updates every 30 s, measured on the server's clock", () => {
    const c = client(null);
    c.watchAuction("cam");
    ws().hello(null);
    ws().frame({ type: "snapshot", auction: view(), server_time: Date.now(), recent_bids: [], resync: false });
    const beat = setInterval(() => ws().frame({ type: "heartbeat", server_time: Date.now() }), 500);
    // No ping sample yet: the offset's error is unknown, nothing is counted.
    ws().frame({ type: "update", auction_id: "cam", seq: 3, event: "bid", price: 12000, decided_at: Date.now() });
    expect(c.latency.pending).toBe(0);
    // The server is 5 s ahead; the round trip 10 ms.
    const ping = ws().last("ping")!.client_time as number;
    vi.setSystemTime(ping + 10);
    ws().frame({ type: "pong", client_time: ping, server_time: ping + 5 + 5_000 });
    ws().frame({ type: "update", auction_id: "cam", seq: 4, event: "bid", price: 13000, decided_at: Date.now() + 5_000 - 40 });
    ws().frame({ type: "update", auction_id: "other", seq: 9, event: "bid", decided_at: Date.now() }); // not watched
    expect(c.latency.pending).toBe(1);
    vi.advanceTimersByTime(31_000);
    const report = ws().last("latency_report") as unknown as { clock_error_ms: number; auctions: { auction_id: string; counts: number[] }[] };
    expect(report.clock_error_ms).toBe(5);
    expect(report.auctions.map((a) => a.auction_id)).toEqual(["cam"]);
    expect(report.auctions[0].counts).toHaveLength(14);
    expect(report.auctions[0].counts[5]).toBe(1); // 26–50 ms
    expect(c.latency.pending).toBe(0);
    clearInterval(beat);
    c.stop();
  });

  it("a lobby gap leaves and joins the lobby again (a repeated subscribe_lobby gets only ok)", () => {
    const c = client(null);
    const stop = c.watchLobby();
    ws().hello(null);
    ws().frame({ type: "lobby", auctions: [view({ seq: 2 })], server_time: Date.now() });
    ws().sent.length = 0;
    ws().frame({ type: "update", auction_id: "cam", seq: 4, event: "bid", price: 13000 });
    expect(ws().sent.map((m) => m.type)).toEqual(["unsubscribe_lobby", "subscribe_lobby"]);
    ws().frame({ type: "lobby", auctions: [view({ seq: 4, price: 13000 })], server_time: Date.now() });
    expect(c.getState().lobby.gap).toBe(false);
    expect(c.getState().lobby.auctions.cam.price).toBe(13000);
    stop();
    c.stop();
  });

  it("a bid in a room asks for the lean answer and shows the room's view merged with the answer's state", () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 3600_000 });
    c.watchAuction("cam");
    ws().hello(alice);
    ws().frame({ type: "snapshot", auction: view({ title: "Held camera", description: "From the snapshot" }), server_time: Date.now(), recent_bids: [], resync: false });
    const attempt = c.placeBid("cam", 12000);
    expect(ws().last("bid")).toMatchObject({ request_id: attempt.requestId, lean: true });
    const { id: _i, title: _t, description: _d, currency: _c, starting_price: _s, increment_table: _it, starts_at: _st,
      original_ends_at: _o, has_reserve: _h, buy_now: _b, soft_close: _sc, your_max: _y, log_hash: _l, ...state } =
      view({ seq: 3, price: 12000, min_bid: 13000 });
    ws().frame({ type: "bid_result", request_id: attempt.requestId, auction_id: "cam", outcome: "accepted", message: "ok", state });
    const shown = c.getState().bids.cam;
    expect(shown).toMatchObject({ state: "done", outcome: "accepted" });
    expect(shown.auction).toEqual(view({ seq: 3, price: 12000, min_bid: 13000, title: "Held camera", description: "From the snapshot" }));
    c.stop();
  });

  it("keeps a bid answered outcome_unknown pending and asks again with the same request id", () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 3600_000 });
    ws().hello(alice);
    c.placeBid("cam", 12000, "plain", 2);
    const first = ws().last("bid")!;
    ws().frame({ type: "error", code: "outcome_unknown", message: "unknown", request_id: first.request_id });
    let shown = c.getState().bids.cam;
    expect(shown.state).toBe("pending");
    expect(shown.uncertain).toBe(true);
    vi.advanceTimersByTime(1_300);
    const bids = ws().sent.filter((m) => m.type === "bid");
    expect(bids.length).toBe(2);
    expect(bids[1]).toEqual(first);
    ws().frame({ type: "bid_result", request_id: first.request_id, auction_id: "cam", outcome: "accepted", message: "ok", auction: view({ seq: 3, price: 12000 }) });
    shown = c.getState().bids.cam;
    expect(shown.state).toBe("done");
    expect(shown.outcome).toBe("accepted");
    c.stop();
  });

  it("refreshes the token before it expires and hands the fresh one to the socket", async () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 10_000 });
    ws().hello(alice);
    refreshAnswer = () => new Response(JSON.stringify({ token: "t2", user: alice, expires_at: Date.now() + 10_000 }), { status: 200 });
    for (let i = 0; i < 79; i++) {
      await vi.advanceTimersByTimeAsync(100);
      ws().frame({ type: "heartbeat", server_time: Date.now() });
    }
    expect(sockets.length).toBe(1);
    expect(fetches.filter((f) => f.url === "/api/session/refresh")).toEqual([]);
    await vi.advanceTimersByTimeAsync(200);
    const refresh = fetches.find((f) => f.url === "/api/session/refresh")!;
    expect((refresh.init.headers as Record<string, string>).Authorization).toBe("Bearer t1");
    expect(refresh.init.method).toBe("POST");
    expect(c.getState().session?.token).toBe("t2");
    expect(ws().last("auth")).toEqual({ type: "auth", token: "t2" });
    // A reconnect uses the fresh token.
    ws().hello(alice); // the answer to auth
    expect(c.getState().conn.status).toBe("open");
    c.stop();
  });

  it("after token_expired, re-authenticates and sends the held bid again with its request id", async () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 3600_000 });
    ws().hello(alice);
    refreshAnswer = () => new Response(JSON.stringify({ token: "t2", user: alice, expires_at: Date.now() + 3600_000 }), { status: 200 });
    c.placeBid("cam", 12000, "plain", 2);
    const first = ws().last("bid")!;
    ws().frame({ type: "error", code: "token_expired", message: "expired", request_id: first.request_id });
    expect(c.getState().bids.cam.state).toBe("pending");
    await vi.advanceTimersByTimeAsync(10);
    expect(ws().last("auth")).toEqual({ type: "auth", token: "t2" });
    // Nothing is sent before the server accepts the fresh token.
    vi.advanceTimersByTime(1_000);
    expect(ws().sent.filter((m) => m.type === "bid").length).toBe(1);
    ws().hello(alice);
    const bids = ws().sent.filter((m) => m.type === "bid");
    expect(bids.length).toBe(2);
    expect(bids[1]).toEqual(first);
    c.stop();
  });

  it("a bid answered unauthorized (its socket's token just expired) is held, not lost, and sent again after auth", async () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 3600_000 });
    ws().hello(alice);
    refreshAnswer = () => new Response(JSON.stringify({ token: "t2", user: alice, expires_at: Date.now() + 3600_000 }), { status: 200 });
    c.placeBid("cam", 12000, "plain", 2);
    const first = ws().last("bid")!;
    ws().frame({ type: "error", code: "unauthorized", message: "no valid token", request_id: first.request_id });
    expect(c.getState().bids.cam.state).toBe("pending");
    await vi.advanceTimersByTimeAsync(10);
    expect(ws().last("auth")).toEqual({ type: "auth", token: "t2" });
    ws().hello(alice);
    const bids = ws().sent.filter((m) => m.type === "bid");
    expect(bids).toEqual([first, first]);
    c.stop();
  });

  it("when the session cannot be renewed, says so and never claims the held bid was placed", async () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 3600_000 });
    ws().hello(alice);
    c.placeBid("cam", 12000, "plain", 2);
    const first = ws().last("bid")!;
    ws().frame({ type: "error", code: "token_expired", message: "expired", request_id: first.request_id });
    await vi.advanceTimersByTimeAsync(10);
    const st = c.getState();
    expect(st.session).toBeNull();
    expect(st.sessionProblem).toBe("Your session has expired, Alice. Please sign in again to bid.");
    expect(st.bids.cam.state).toBe("error");
    expect(st.bids.cam.errorCode).toBe("token_expired");
    c.stop();
  });

  it("a bid still uncertain when the session ends is never reported as placed or lost", async () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 3600_000 });
    ws().hello(alice);
    c.placeBid("cam", 12000, "plain", 2);
    const first = ws().last("bid")!;
    ws().frame({ type: "error", code: "outcome_unknown", message: "unknown", request_id: first.request_id });
    ws().frame({ type: "error", code: "token_expired", message: "expired" });
    await vi.advanceTimersByTimeAsync(10); // the refresh is refused: 401
    const shown = c.getState().bids.cam;
    expect(shown.state).toBe("error");
    expect(shown.errorCode).toBe("no_answer");
    c.stop();
  });

  it("when the server does not know the token, still watches, holds bids and renews the session", async () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 3600_000 });
    c.watchAuction("cam");
    refreshAnswer = () => new Response(JSON.stringify({ token: "t2", user: alice, expires_at: Date.now() + 3600_000 }), { status: 200 });
    c.placeBid("cam", 12000, "plain", 2);
    ws().hello(null);
    expect(ws().last("subscribe")).toEqual({ type: "subscribe", auction_id: "cam" });
    expect(ws().sent.filter((m) => m.type === "bid")).toEqual([]);
    await vi.advanceTimersByTimeAsync(10);
    expect(ws().last("auth")).toEqual({ type: "auth", token: "t2" });
    ws().hello(alice);
    expect(ws().sent.filter((m) => m.type === "bid").length).toBe(1);
    expect(c.getState().session?.token).toBe("t2");
    c.stop();
  });

  it("a refused fresh token ends the session", async () => {
    const c = client({ token: "t1", user: alice, expires_at: Date.now() + 3600_000 });
    ws().hello(alice);
    refreshAnswer = () => new Response(JSON.stringify({ token: "t2", user: alice, expires_at: Date.now() + 3600_000 }), { status: 200 });
    await c.refresh();
    expect(ws().last("auth")).toEqual({ type: "auth", token: "t2" });
    ws().frame({ type: "error", code: "unauthorized", message: "invalid or expired token" });
    expect(c.getState().session).toBeNull();
    expect(c.getState().sessionProblem).toContain("Your session has expired, Alice.");
    c.stop();
  });
});
