// What GavelClient reports for a UI: each bid's life (queued → sent → uncertain → answered /
// failed), a stored Gavel session to start from, and why a session ended.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { GavelClient, type BidStatus } from "../../src/client.js";
import type { BidResult } from "../../src/generated/protocol.js";
import { auction, fakeFetch, Sockets } from "./fakes.js";

let sockets: Sockets;

function client(extra: Partial<ConstructorParameters<typeof GavelClient>[0]> = {}) {
  return new GavelClient({ baseUrl: "http://gavel.test", token: "t-1", socketFactory: sockets.factory, reconnect: { baseMs: 100, maxMs: 1000, jitter: 0 }, ...extra });
}

function result(request_id: string, outcome: BidResult["outcome"] = "accepted"): BidResult {
  return { request_id, auction_id: "a1", outcome, message: outcome, auction: auction({ seq: 2 }) };
}

const alice = { id: "u-1", name: "Alice", role: "bidder" as const };

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
  sockets = new Sockets();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("a bid's life as events", () => {
  it("queued while there is no connection, sent once it is open, uncertain after outcome_unknown, answered once", async () => {
    const c = client();
    const events: BidStatus[] = [];
    c.on("bid", (s) => events.push(s));
    void c.connect();
    const p = c.bid("a1", 11000, { kind: "max", expectedSeq: 1 });
    expect(events.map((e) => e.state)).toEqual(["queued"]);
    const id = events[0]!.requestId;
    expect(events[0]).toMatchObject({ auctionId: "a1", amount: 11000, kind: "max", expectedSeq: 1, sentAt: 0 });
    expect(c.bidStatus(id)?.state).toBe("queued");
    const ws = sockets.last;
    ws.accept();
    expect(events.map((e) => e.state)).toEqual(["queued", "sent"]);
    expect(events[1]!.sentAt).toBe(Date.now());
    ws.receive({ type: "error", code: "outcome_unknown", message: "lost", request_id: id });
    ws.receive({ type: "error", code: "outcome_unknown", message: "lost", request_id: id }); // no second event
    const keepAlive = setInterval(() => ws.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    await vi.advanceTimersByTimeAsync(1_200);
    clearInterval(keepAlive);
    expect(ws.of("bid").map((b) => b.request_id)).toEqual([id, id]); // asked again: stays uncertain
    expect(events.map((e) => e.state)).toEqual(["queued", "sent", "uncertain"]);
    expect(c.bidStatus(id)?.state).toBe("uncertain");
    ws.receive({ type: "bid_result", ...result(id, "outbid") });
    ws.receive({ type: "bid_result", ...result(id, "accepted") }); // a late repeat: nothing
    await expect(p).resolves.toMatchObject({ outcome: "outbid" });
    expect(events.map((e) => e.state)).toEqual(["queued", "sent", "uncertain", "answered"]);
    expect(events[3]!.result).toMatchObject({ request_id: id, outcome: "outbid" });
    expect(c.bidStatus(id)).toBeNull();
    c.close();
  });

  it("a bid refused for an expired token goes back to queued, then sent again after the fresh token; a refusal is failed", async () => {
    const tokens = ["x-1", "x-2"];
    const c = client({ token: () => tokens.shift() ?? null });
    const events: [string, string][] = [];
    c.on("bid", (s) => events.push([s.requestId, s.state]));
    void c.connect();
    await vi.advanceTimersByTimeAsync(0);
    const ws = sockets.last;
    ws.accept();
    const p = c.bid("a1", 11000);
    const id = ws.of("bid")[0]!.request_id;
    ws.receive({ type: "error", code: "token_expired", message: "expired", request_id: id });
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual([[id, "sent"], [id, "queued"]]);
    ws.receive({ type: "hello", user: alice, server_time: Date.now(), limits: { max_message_bytes: 4096, max_subscriptions: 100, bids_per_second: 10 }, heartbeat_ms: 1000 });
    expect(events).toEqual([[id, "sent"], [id, "queued"], [id, "sent"]]);
    ws.receive({ type: "error", code: "unavailable", message: "nothing decided", request_id: id });
    const e = await p.catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "unavailable" });
    expect(events.at(-1)).toEqual([id, "failed"]);
    c.close();
  });
});

describe("a stored Gavel session", () => {
  it("is used for the socket, renewed with /api/session/refresh before it expires, and reported on every change", async () => {
    const f = fakeFetch({
      "POST /api/session/refresh": () => [200, { token: "g-2", user: alice, expires_at: Date.now() + 100_000 }],
    });
    const c = client({ token: undefined, fetch: f.fn, session: { token: "g-1", user: alice, expiresAt: Date.now() + 100_000, kind: "gavel" } });
    const sessions: (string | null)[] = [];
    c.on("session", (s) => sessions.push(s?.token ?? null));
    void c.connect();
    const ws = sockets.last;
    expect(ws.url).toBe("ws://gavel.test/ws?token=g-1");
    ws.accept();
    const keepAlive = setInterval(() => ws.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    await vi.advanceTimersByTimeAsync(79_000);
    expect(f.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(2_000);
    clearInterval(keepAlive);
    expect(f.calls.map((x) => [x.path, x.headers.Authorization])).toEqual([["/api/session/refresh", "Bearer g-1"]]);
    expect(ws.of("auth")).toEqual([{ type: "auth", token: "g-2" }]);
    expect(sessions).toEqual(["g-2"]);
    c.close();
  });

  it("that cannot be renewed says why (sessionEnded) before the session becomes null", async () => {
    const f = fakeFetch({
      "POST /api/session/refresh": () => [401, { error: { code: "token_expired", message: "sign in again" } }],
    });
    const c = client({ token: undefined, fetch: f.fn, session: { token: "g-1", user: alice, expiresAt: Date.now() + 3_600_000, kind: "gavel" } });
    const seen: string[] = [];
    c.on("sessionEnded", (e) => seen.push(`ended:${e.code}`));
    c.on("session", (s) => seen.push(`session:${s?.token ?? null}`));
    void c.connect();
    sockets.last.accept();
    sockets.last.receive({ type: "error", code: "token_expired", message: "expired" });
    await vi.advanceTimersByTimeAsync(0);
    expect(seen).toEqual(["ended:token_expired", "session:null"]);
    expect(c.currentSession).toBeNull();
    c.close();
  });

  it("whose renewal fails on the network is retried while the token is valid, and ends once it has expired", async () => {
    const calls: number[] = [];
    const offline = (async () => {
      calls.push(Date.now());
      throw new TypeError("fetch failed");
    }) as typeof fetch;
    const start = Date.now();
    // 10 s left: renewed at 8 s (a fifth of its life before the end), retried 2 s later.
    const c = client({ token: undefined, fetch: offline, session: { token: "g-1", user: alice, expiresAt: start + 10_000, kind: "gavel" } });
    const seen: string[] = [];
    c.on("sessionEnded", (e) => seen.push(`ended:${e.code}`));
    c.on("session", (s) => seen.push(`session:${s?.token ?? null}`));
    void c.connect();
    const ws = sockets.last;
    ws.accept(alice);
    // The network goes: the socket is lost, and a bid waits for a connection.
    ws.drop();
    const bid = c.bid("a1", 11000).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(9_000);
    expect(calls.map((t) => t - start)).toEqual([8_000]);
    expect(seen).toEqual([]);
    expect(c.currentSession?.token).toBe("g-1");
    // The retry at 10 s comes when the token has run out: the session ends (and says why).
    await vi.advanceTimersByTimeAsync(2_000);
    expect(calls.map((t) => t - start)).toEqual([8_000, 10_000]);
    expect(seen).toEqual(["ended:token_expired", "session:null"]);
    expect(c.currentSession).toBeNull();
    await expect(bid).resolves.toMatchObject({ code: "token_expired" });
    // Nothing more is tried.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toHaveLength(2);
    c.close();
  });
});

describe("bids.holdOnUnauthorized", () => {
  const session = () => ({ token: "g-1", user: alice, expiresAt: Date.now() + 3_600_000, kind: "gavel" as const });

  it("holds a bid answered unauthorized, renews the session and sends it again with the same request_id", async () => {
    const f = fakeFetch({ "POST /api/session/refresh": () => [200, { token: "g-2", user: alice, expires_at: Date.now() + 3_600_000 }] });
    const c = client({ token: undefined, fetch: f.fn, session: session(), bids: { holdOnUnauthorized: true } });
    const states: string[] = [];
    c.on("bid", (s) => states.push(s.state));
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    const p = c.bid("a1", 11000);
    const id = ws.of("bid")[0]!.request_id;
    ws.receive({ type: "error", code: "unauthorized", message: "no valid token", request_id: id });
    await vi.advanceTimersByTimeAsync(0);
    expect(states).toEqual(["sent", "queued"]);
    expect(ws.of("auth")).toEqual([{ type: "auth", token: "g-2" }]);
    expect(ws.of("bid")).toHaveLength(1); // held until the fresh token is accepted
    ws.receive({ type: "hello", user: alice, server_time: Date.now(), limits: { max_message_bytes: 4096, max_subscriptions: 100, bids_per_second: 10 }, heartbeat_ms: 1000 });
    expect(ws.of("bid").map((b) => b.request_id)).toEqual([id, id]);
    ws.receive({ type: "bid_result", ...result(id) });
    await expect(p).resolves.toMatchObject({ outcome: "accepted" });
    expect(states).toEqual(["sent", "queued", "sent", "answered"]);
    c.close();
  });

  it("without it (the default) the bid rejects with unauthorized", async () => {
    const c = client({ token: undefined, session: session() });
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    const p = c.bid("a1", 11000);
    ws.receive({ type: "error", code: "unauthorized", message: "no valid token", request_id: ws.of("bid")[0]!.request_id });
    await expect(p).rejects.toMatchObject({ code: "unauthorized" });
    expect(ws.of("auth")).toEqual([]);
    c.close();
  });
});

describe("options.online", () => {
  it("is what the socket asks after a lost connection: offline while it says so, reconnecting when up", async () => {
    let up = true;
    const c = client({ online: () => up });
    const statuses: string[] = [];
    c.on("status", (s) => statuses.push(s.status));
    void c.connect();
    sockets.last.accept();
    up = false;
    sockets.last.drop();
    expect(c.status).toBe("offline");
    up = true;
    await vi.advanceTimersByTimeAsync(100);
    sockets.last.accept();
    sockets.last.drop();
    expect(c.status).toBe("reconnecting");
    expect(statuses).toEqual(["connecting", "open", "offline", "reconnecting", "open", "reconnecting"]);
    c.close();
  });
});

describe("useSession", () => {
  it("hands a session signed in elsewhere to the open socket with auth and renews it before it expires", async () => {
    const f = fakeFetch({ "POST /api/session/refresh": () => [200, { token: "g-2", user: alice, expires_at: Date.now() + 100_000 }] });
    const c = client({ token: undefined, fetch: f.fn });
    const sessions: (string | null)[] = [];
    c.on("session", (s) => sessions.push(s?.token ?? null));
    void c.connect();
    const ws = sockets.last;
    expect(ws.url).toBe("ws://gavel.test/ws");
    ws.accept(null);
    c.useSession({ token: "g-1", user: alice, expiresAt: Date.now() + 100_000, kind: "gavel" });
    expect(ws.of("auth")).toEqual([{ type: "auth", token: "g-1" }]);
    expect(c.currentSession?.token).toBe("g-1");
    ws.receive({ type: "hello", user: alice, server_time: Date.now(), limits: { max_message_bytes: 4096, max_subscriptions: 100, bids_per_second: 10 }, heartbeat_ms: 1000 });
    expect(c.user).toEqual(alice);
    const keepAlive = setInterval(() => ws.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    await vi.advanceTimersByTimeAsync(81_000);
    clearInterval(keepAlive);
    expect(f.calls.map((x) => x.headers.Authorization)).toEqual(["Bearer g-1"]);
    expect(ws.of("auth")).toEqual([{ type: "auth", token: "g-1" }, { type: "auth", token: "g-2" }]);
    expect(sessions).toEqual(["g-1", "g-2"]);
    c.close();
  });
});

describe("options.overdueCloseMs", () => {
  async function run(overdueCloseMs: number | undefined) {
    const c = client(overdueCloseMs === undefined ? {} : { overdueCloseMs });
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    c.watch("a1");
    ws.receive({ type: "snapshot", auction: auction({ seq: 4, ends_at: Date.now() + 1_000 }), server_time: Date.now(), recent_bids: [], resync: false });
    const keepAlive = setInterval(() => ws.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    await vi.advanceTimersByTimeAsync(5_500); // 4.5 s past the end
    const before = ws.of("subscribe").length;
    await vi.advanceTimersByTimeAsync(1_000); // 5.5 s past the end
    const after = ws.of("subscribe");
    await vi.advanceTimersByTimeAsync(2_000); // not asked again within 5 s
    const later = ws.of("subscribe").length;
    clearInterval(keepAlive);
    c.close();
    return { before, after, later };
  }

  it("asks again about an auction still open past its end, from the seq held, once per period", async () => {
    const r = await run(5_000);
    expect(r.before).toBe(1);
    expect(r.after).toEqual([{ type: "subscribe", auction_id: "a1" }, { type: "subscribe", auction_id: "a1", since_seq: 4 }]);
    expect(r.later).toBe(2);
  });

  it("is off by default", async () => {
    const r = await run(undefined);
    expect([r.before, r.after.length, r.later]).toEqual([1, 1, 1]);
  });
});

describe("the lobby", () => {
  it("a gap right after the lobby arrived leaves and joins again at once; one still open is asked again by the tick", async () => {
    const c = client();
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    const lobby = c.watchLobby();
    ws.receive({ type: "lobby", auctions: [auction({ seq: 2 })], more: false, server_time: Date.now() });
    ws.sent.length = 0;
    ws.receive({ type: "update", auction_id: "a1", seq: 4, event: "bid", price: 13000 });
    expect(ws.sent.map((m) => m.type)).toEqual(["unsubscribe_lobby", "subscribe_lobby"]);
    ws.sent.length = 0;
    const keepAlive = setInterval(() => ws.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    await vi.advanceTimersByTimeAsync(3_500); // no answer: asked again
    expect(ws.sent.filter((m) => m.type !== "ping").map((m) => m.type)).toEqual(["unsubscribe_lobby", "subscribe_lobby"]);
    ws.receive({ type: "lobby", auctions: [auction({ seq: 4, price: 13000 })], more: false, server_time: Date.now() });
    ws.sent.length = 0;
    await vi.advanceTimersByTimeAsync(4_000); // in step: nothing more
    clearInterval(keepAlive);
    expect(ws.sent.filter((m) => m.type !== "ping")).toEqual([]);
    expect(lobby.auctions.map((a) => a.price)).toEqual([13000]);
    c.close();
  });
});
