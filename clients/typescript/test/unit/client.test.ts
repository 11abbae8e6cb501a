import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { GavelClient } from "../../src/client.js";
import { GavelError } from "../../src/errors.js";
import type { BidResult } from "../../src/generated/protocol.js";
import { auction, fakeFetch, Sockets } from "./fakes.js";

let sockets: Sockets;

function client(extra: Partial<ConstructorParameters<typeof GavelClient>[0]> = {}) {
  return new GavelClient({ baseUrl: "http://gavel.test", token: "t-1", socketFactory: sockets.factory, reconnect: { baseMs: 100, maxMs: 1000, jitter: 0 }, ...extra });
}

function result(request_id: string, outcome: BidResult["outcome"] = "accepted", seq = 2): BidResult {
  return { request_id, auction_id: "a1", outcome, message: outcome, auction: auction({ seq }) };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
  sockets = new Sockets();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("watching an auction", () => {
  it("applies updates in seq order, ignores repeats, and resubscribes from the seq held after a gap", async () => {
    const c = client();
    void c.connect();
    const ws = sockets.last;
    expect(ws.url).toBe("ws://gavel.test/ws?token=t-1");
    ws.accept();
    const states: number[] = [];
    const w = c.watch("a1", (s) => states.push(s.auction.seq));
    expect(ws.of("subscribe")).toEqual([{ type: "subscribe", auction_id: "a1" }]);
    ws.receive({ type: "snapshot", auction: auction({ seq: 3 }), server_time: Date.now(), recent_bids: [], resync: false });
    ws.receive({ type: "update", auction_id: "a1", seq: 4, event: "bid", price: 11000 });
    ws.receive({ type: "update", auction_id: "a1", seq: 4, event: "bid", price: 11000 }); // the lobby's copy
    ws.receive({ type: "update", auction_id: "a1", seq: 6, event: "bid", price: 13000 }); // 5 was missed
    expect(w.state?.auction.seq).toBe(4);
    expect(w.state?.live).toBe(false);
    expect(ws.of("subscribe").at(-1)).toEqual({ type: "subscribe", auction_id: "a1", since_seq: 4 });
    // The server replays what was missed, in order.
    ws.receive({ type: "update", auction_id: "a1", seq: 5, event: "bid", price: 12000 });
    ws.receive({ type: "update", auction_id: "a1", seq: 6, event: "bid", price: 13000 });
    expect(w.state?.auction).toMatchObject({ seq: 6, price: 13000 });
    expect(w.state?.live).toBe(true);
    expect(states).toEqual([3, 4, 4, 5, 6]); // the gap only flagged the state (seq 4, not live)
    c.close();
  });

  it("a gap the replay does not close is settled by a full snapshot", async () => {
    const c = client();
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    const w = c.watch("a1");
    ws.receive({ type: "snapshot", auction: auction({ seq: 3 }), server_time: Date.now(), recent_bids: [], resync: false });
    ws.receive({ type: "update", auction_id: "a1", seq: 9, event: "bid", price: 13000 });
    const keepAlive = setInterval(() => ws.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    await vi.advanceTimersByTimeAsync(3_500);
    clearInterval(keepAlive);
    expect(ws.of("subscribe").at(-1)).toEqual({ type: "subscribe", auction_id: "a1" });
    ws.receive({ type: "snapshot", auction: auction({ seq: 9, price: 13000 }), server_time: Date.now(), recent_bids: [], resync: true });
    expect(w.state).toMatchObject({ auction: { seq: 9, price: 13000 }, live: true });
    c.close();
  });

  it("a close after missed updates is shown at once and a snapshot is asked for", async () => {
    const c = client();
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    const w = c.watch("a1");
    ws.receive({ type: "snapshot", auction: auction({ seq: 3 }), server_time: Date.now(), recent_bids: [], resync: false });
    ws.receive({ type: "closed", auction_id: "a1", seq: 7, reason: "ended", winner: { id: "u-2", name: "Bob" }, final_price: 15000, closed_at: Date.now(), bid_count: 4, reserve_met: null });
    expect(w.state?.auction).toMatchObject({ status: "closed", price: 15000, seq: 7, closing: { reason: "ended", winner: { id: "u-2" } } });
    expect(ws.of("subscribe").at(-1)).toEqual({ type: "subscribe", auction_id: "a1" });
    c.close();
  });

  it("after a reconnect it resubscribes with since_seq and is live again only after the barrier pong", async () => {
    const c = client();
    void c.connect();
    let ws = sockets.last;
    ws.accept();
    const w = c.watch("a1");
    ws.receive({ type: "snapshot", auction: auction({ seq: 5 }), server_time: Date.now(), recent_bids: [], resync: false });
    expect(w.state?.live).toBe(true);
    ws.drop();
    expect(w.state?.live).toBe(false);
    expect(c.status).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(100);
    expect(sockets.all.length).toBe(2);
    ws = sockets.last;
    ws.accept();
    expect(ws.of("subscribe")).toEqual([{ type: "subscribe", auction_id: "a1", since_seq: 5 }]);
    const barrier = ws.of("ping")[0];
    expect(barrier).toBeDefined();
    expect(w.state?.live).toBe(false);
    ws.receive({ type: "pong", client_time: barrier!.client_time, server_time: Date.now() });
    expect(w.state?.live).toBe(true);
    c.close();
  });
});

describe("bids", () => {
  it("an unanswered bid is re-sent with the same request_id after a reconnect and settles once", async () => {
    const c = client();
    void c.connect();
    let ws = sockets.last;
    ws.accept();
    const p = c.bid("a1", 11000, { expectedSeq: 1 });
    const [sent] = ws.of("bid");
    expect(sent).toMatchObject({ type: "bid", auction_id: "a1", amount: 11000, expected_seq: 1 });
    expect(sent!.request_id).toMatch(/^[A-Za-z0-9_.:-]{1,64}$/);
    ws.drop();
    await vi.advanceTimersByTimeAsync(100);
    ws = sockets.last;
    ws.accept();
    const [again] = ws.of("bid");
    expect(again).toEqual(sent);
    ws.receive({ type: "bid_result", ...result(sent!.request_id) });
    ws.receive({ type: "bid_result", ...result(sent!.request_id, "stale") }); // a late repeat
    await expect(p).resolves.toMatchObject({ request_id: sent!.request_id, outcome: "accepted" });
    expect(c.pendingBids).toEqual([]);
    c.close();
  });

  it("a bid on a watched auction asks for the lean answer and resolves with the held view merged with its state", async () => {
    const c = client();
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    const unwatched = c.bid("a2", 11000);
    expect(ws.of("bid")[0]).not.toHaveProperty("lean");
    c.watch("a1");
    const held = auction({ seq: 3, title: "Held title", description: "Held description", your_max: 99000 });
    ws.receive({ type: "snapshot", auction: held, server_time: Date.now(), recent_bids: [], resync: false });
    const p = c.bid("a1", 12000);
    const sent = ws.of("bid")[1]!;
    expect(sent).toMatchObject({ auction_id: "a1", lean: true });
    const { id: _i, title: _t, description: _d, currency: _c, starting_price: _s, increment_table: _it, starts_at: _st,
      original_ends_at: _o, has_reserve: _h, buy_now: _b, soft_close: _sc, your_max: _y, log_hash: _l, ...state } =
      auction({ seq: 4, price: 12000, bid_count: 4 });
    ws.receive({ type: "bid_result", request_id: sent.request_id, auction_id: "a1", outcome: "accepted", message: "ok", state });
    const r = await p;
    expect(r.state).toBeUndefined();
    // Title and description from the held view; every changing field from the answer;
    // the held your_max is not carried over (the answer has none).
    expect(r.auction).toEqual({ ...auction({ seq: 4, price: 12000, bid_count: 4 }), title: "Held title", description: "Held description" });
    expect(r.auction).not.toHaveProperty("your_max");
    ws.receive({ type: "bid_result", ...result(ws.of("bid")[0]!.request_id), auction_id: "a2" });
    await expect(unwatched).resolves.toMatchObject({ auction: { seq: 2 } });
    c.close();
  });

  it("outcome_unknown is asked again with the same request_id until the real outcome arrives", async () => {
    const c = client();
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    let settled = false;
    const p = c.bid("a1", 11000).finally(() => (settled = true));
    const id = ws.of("bid")[0]!.request_id;
    ws.receive({ type: "error", code: "outcome_unknown", message: "lost", request_id: id });
    await vi.advanceTimersByTimeAsync(800);
    expect(settled).toBe(false);
    expect(ws.of("bid").map((b) => b.request_id)).toEqual([id, id]);
    ws.receive({ type: "bid_result", ...result(id, "outbid") });
    await expect(p).resolves.toMatchObject({ outcome: "outbid" });
    c.close();
  });

  it("unavailable and other refusals reject with the code; no answer at all gives up as outcome_unknown", async () => {
    const c = client({ bids: { giveUpAfterMs: 20_000, resendAfterMs: 5_000 } });
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    const refused = c.bid("a1", 11000);
    ws.receive({ type: "error", code: "unavailable", message: "nothing decided", request_id: ws.of("bid")[0]!.request_id });
    await expect(refused).rejects.toMatchObject({ code: "unavailable" });
    const silent = c.bid("a1", 12000);
    const id = ws.of("bid")[1]!.request_id;
    // keep the socket alive meanwhile
    const keepAlive = setInterval(() => ws.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    const outcome = silent.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(21_000);
    clearInterval(keepAlive);
    const e = (await outcome) as GavelError;
    expect(e).toBeInstanceOf(GavelError);
    expect([e.code, e.requestId]).toEqual(["outcome_unknown", id]);
    expect(ws.of("bid").filter((b) => b.request_id === id).length).toBe(4); // sent, then every 5 s until 20 s
    c.close();
  });

  it("a bid without any token is refused at once", async () => {
    const c = client({ token: undefined });
    await expect(c.bid("a1", 100)).rejects.toMatchObject({ code: "unauthorized" });
  });
});

describe("a rolling restart (reconnect)", () => {
  it("resubscribes from the seq held, re-sends an unanswered bid with its request_id, and shows no error, offline state or gap", async () => {
    const c = client();
    const statuses: string[] = [];
    const errors: unknown[] = [];
    c.on("status", (s) => statuses.push(s.status));
    c.on("error", (e) => errors.push(e));
    void c.connect();
    const old = sockets.last;
    old.accept();
    const live: boolean[] = [];
    const w = c.watch("a1", (s) => live.push(s.live));
    old.receive({ type: "snapshot", auction: auction({ seq: 3 }), server_time: Date.now(), recent_bids: [], resync: false });
    old.receive({ type: "reconnect", delay_ms: 1_200, reason: "draining" });
    // Still served until the delay: an update and a bid go through the old socket.
    old.receive({ type: "update", auction_id: "a1", seq: 4, event: "bid", price: 11000 });
    const p = c.bid("a1", 12000);
    const [sent] = old.of("bid");
    expect(sent).toBeDefined();
    await vi.advanceTimersByTimeAsync(1_200);
    expect(old.closedByClient).toBe(true);
    const next = sockets.last;
    expect(next).not.toBe(old);
    expect(next.url).toBe(old.url);
    next.accept();
    expect(next.of("subscribe")).toEqual([{ type: "subscribe", auction_id: "a1", since_seq: 4 }]);
    expect(next.of("bid")).toEqual([sent]);
    next.receive({ type: "update", auction_id: "a1", seq: 5, event: "bid", price: 12000 });
    next.receive({ type: "bid_result", ...result(sent!.request_id, "accepted", 5) });
    await expect(p).resolves.toMatchObject({ outcome: "accepted" });
    expect(w.state?.auction).toMatchObject({ seq: 5, price: 12000 });
    expect(live.every((l) => l)).toBe(true);
    expect(statuses).toEqual(["connecting", "open"]);
    expect(errors).toEqual([]);
    c.close();
  });
});

describe("liveness", () => {
  it("a socket silent for 2.5 heartbeat intervals is dropped and reconnected with back-off", async () => {
    const c = client();
    const statuses: string[] = [];
    c.on("status", (s) => statuses.push(s.status));
    void c.connect();
    sockets.last.accept(undefined, 400);
    await vi.advanceTimersByTimeAsync(900);
    expect(sockets.all.length).toBe(1);
    await vi.advanceTimersByTimeAsync(400); // past 1,000 ms of silence (2.5 × 400)
    expect(sockets.all[0]!.closedByClient).toBe(true);
    expect(statuses.at(-1)).toBe("reconnecting");
    // Attempts that fail back off: 100, 200, 400 ms (no jitter in this test).
    await vi.advanceTimersByTimeAsync(100);
    expect(sockets.all.length).toBe(2);
    sockets.last.drop();
    await vi.advanceTimersByTimeAsync(150);
    expect(sockets.all.length).toBe(2);
    await vi.advanceTimersByTimeAsync(60);
    expect(sockets.all.length).toBe(3);
    sockets.last.accept();
    expect(c.status).toBe("open");
    c.close();
  });
});

describe("sessions", () => {
  it("signs in as a guest, refreshes before expiry and re-authenticates the open socket", async () => {
    let n = 0;
    const f = fakeFetch({
      "POST /api/session": () => [200, { token: "g-1", user: { id: "u-1", name: "Alice", role: "bidder" }, expires_at: Date.now() + 100_000 }],
      "POST /api/session/refresh": (_b, h) => [200, { token: `g-${++n + 1}`, user: { id: "u-1", name: "Alice", role: "bidder" }, expires_at: Date.now() + 100_000, seen: h.Authorization }],
    });
    const c = client({ token: undefined, fetch: f.fn });
    const s = await c.signInAsGuest("Alice");
    expect(s.user.name).toBe("Alice");
    void c.connect();
    const ws = sockets.last;
    expect(ws.url).toBe("ws://gavel.test/ws?token=g-1");
    ws.accept();
    const keepAlive = setInterval(() => ws.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    await vi.advanceTimersByTimeAsync(79_000);
    expect(f.calls.filter((x) => x.path === "/api/session/refresh")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(2_000); // 80 s of 100 s: refreshed
    clearInterval(keepAlive);
    const refresh = f.calls.filter((x) => x.path === "/api/session/refresh");
    expect(refresh.map((x) => x.headers.Authorization)).toEqual(["Bearer g-1"]);
    expect(ws.of("auth")).toEqual([{ type: "auth", token: "g-2" }]);
    expect(c.currentSession?.token).toBe("g-2");
    c.close();
  });

  it("token_expired holds a bid until the token function gives a fresh token, then sends it with the same id", async () => {
    const tokens = ["x-1", "x-2"];
    const c = client({ token: () => tokens.shift() ?? null });
    void c.connect();
    await vi.advanceTimersByTimeAsync(0);
    const ws = sockets.last;
    expect(ws.url).toBe("ws://gavel.test/ws?token=x-1");
    ws.accept();
    const p = c.bid("a1", 11000);
    const id = ws.of("bid")[0]!.request_id;
    ws.receive({ type: "error", code: "token_expired", message: "expired", request_id: id });
    await vi.advanceTimersByTimeAsync(0);
    expect(ws.of("auth")).toEqual([{ type: "auth", token: "x-2" }]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ws.of("bid")).toHaveLength(1); // held while the socket is watch-only
    ws.receive({ type: "hello", user: { id: "u-1", name: "Alice", role: "bidder" }, server_time: Date.now(), limits: { max_message_bytes: 4096, max_subscriptions: 100, bids_per_second: 10 }, heartbeat_ms: 1000 });
    expect(ws.of("bid").map((b) => b.request_id)).toEqual([id, id]);
    ws.receive({ type: "bid_result", ...result(id) });
    await expect(p).resolves.toMatchObject({ outcome: "accepted" });
    c.close();
  });
});

describe("a session that cannot be renewed", () => {
  it("fails a bid refused for the token, and never calls a sent, unanswered bid lost", async () => {
    const f = fakeFetch({
      "POST /api/session": () => [200, { token: "g-1", user: { id: "u-1", name: "Alice", role: "bidder" }, expires_at: Date.now() + 3_600_000 }],
      "POST /api/session/refresh": () => [401, { error: { code: "token_expired", message: "sign in again" } }],
    });
    const c = client({ token: undefined, fetch: f.fn, bids: { giveUpAfterMs: 10_000 } });
    const sessions: (string | null)[] = [];
    c.on("session", (s) => sessions.push(s?.token ?? null));
    await c.signInAsGuest("Alice");
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    const sent = c.bid("a1", 11000).catch((e: GavelError) => e);
    const refused = c.bid("a1", 12000).catch((e: GavelError) => e);
    const [a, b] = ws.of("bid").map((m) => m.request_id);
    ws.receive({ type: "error", code: "token_expired", message: "expired", request_id: b });
    await vi.advanceTimersByTimeAsync(0);
    expect(sessions).toEqual(["g-1", null]);
    const e = (await refused) as GavelError;
    expect([e.code, e.requestId]).toEqual(["token_expired", b]);
    // The first bid may have been decided before the token ran out: not reported lost.
    expect(c.pendingBids).toEqual([a]);
    sockets.last.accept(null);
    const keepAlive = setInterval(() => sockets.last.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    await vi.advanceTimersByTimeAsync(11_000);
    clearInterval(keepAlive);
    const unknown = (await sent) as GavelError;
    expect([unknown.code, unknown.requestId]).toEqual(["outcome_unknown", a]);
    c.close();
  });
});

describe("the server clock", () => {
  it("takes the offset of the ping with the smallest round trip from the burst after hello", async () => {
    const c = client({ clock: { pings: 3, spacingMs: 100, refreshMs: 0 } });
    void c.connect();
    const ws = sockets.last;
    const serverAhead = 5_000;
    ws.accept(undefined, 1000, Date.now() + serverAhead);
    await vi.advanceTimersByTimeAsync(250);
    const pings = ws.of("ping");
    expect(pings.length).toBe(3); // the barrier and two more of the burst
    // Answer with round trips 80, 20 and 200 ms (server time taken mid-way).
    const rtts = [80, 20, 200];
    for (const [i, ping] of pings.entries()) {
      const at = ping.client_time + rtts[i]!;
      vi.setSystemTime(at);
      ws.receive({ type: "pong", client_time: ping.client_time, server_time: ping.client_time + rtts[i]! / 2 + serverAhead + (i === 1 ? 3 : 40) });
    }
    expect(c.clock.rtt).toBe(20);
    expect(c.clock.offset).toBe(serverAhead + 3);
    c.close();
  });

  it("repeats the burst every refreshMs, so the estimate follows a drifting clock", async () => {
    const c = client({ clock: { pings: 3, spacingMs: 100, refreshMs: 10_000 } });
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    const keepAlive = setInterval(() => ws.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ws.of("ping").length).toBe(3);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(ws.of("ping").length).toBe(6); // one more burst: a ping and two spaced ones
    clearInterval(keepAlive);
    c.close();
  });
});
