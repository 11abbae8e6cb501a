// @gavel/client against a real `gavel serve` process: sign-in, bids over both transports,
// two clients racing, a server restart in the middle of a session, and the clock offset
// against a server whose clock is shifted.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { GavelClient, LATENCY_BOUNDS_MS, fetchLog, verifyReceipts, verifyWithServer, type AuctionState, type LatencyStats, type Receipt } from "../../src/index.js";
import { GavelServer, hasFaketime, sleep, waitFor } from "./server.js";

function clientFor(server: GavelServer, extra: Partial<ConstructorParameters<typeof GavelClient>[0]> = {}): GavelClient {
  return new GavelClient({ baseUrl: server.url, WebSocket, reconnect: { baseMs: 100, maxMs: 1_000 }, ...extra });
}

describe("against a real server", () => {
  const server = new GavelServer("client-live");
  beforeAll(() => server.start(), 40_000);
  afterAll(() => server.stop());

  it("signs in as a guest, watches, and bids over the WebSocket and over HTTP", async () => {
    const { id } = await server.createAuction();
    const alice = clientFor(server);
    const session = await alice.signInAsGuest("Alice");
    expect(session.user).toMatchObject({ name: "Alice", role: "bidder" });
    expect(await alice.http.me()).toEqual(session.user);
    const hello = await alice.connect();
    expect(hello.user?.id).toBe(session.user.id);
    const watch = alice.watch(id);
    const first = await watch.ready();
    expect(first.auction).toMatchObject({ id, seq: 1, price: null, status: "open" });

    const r = await alice.bid(id, 10000, { expectedSeq: 1 });
    expect(r).toMatchObject({ outcome: "accepted", auction_id: id, auction: { price: 10000, seq: 2, leader: { id: session.user.id } } });
    await waitFor(() => watch.state?.auction.seq === 2, "the watch at seq 2");
    expect(watch.state?.recentBids[0]).toMatchObject({ seq: 2, amount: 10000, bidder: { name: "Alice" }, kind: "bid" });

    // The same request id again (e.g. a retry after a lost answer) gets the first answer.
    const again = await alice.bid(id, 10000, { expectedSeq: 1, requestId: r.request_id });
    expect(again).toEqual(r);

    // Over HTTP: a rejection is a result, not an error.
    const low = await alice.http.placeBid(id, { amount: 10500, request_id: "h-1" });
    expect(low).toMatchObject({ outcome: "already_leading", request_id: "h-1" });
    const history = await alice.http.bids(id, { limit: 10 });
    expect(history.bids.map((b) => b.amount)).toEqual([10000]);

    // The lobby lists it with the price, and follows the next bid.
    const lobby = alice.watchLobby();
    await waitFor(() => lobby.auctions.find((x) => x.id === id)?.price === 10000, "the lobby at 10000");
    const bob = clientFor(server);
    await bob.signInAsGuest("Bob");
    expect((await bob.http.placeBid(id, { amount: 11000, request_id: "b-1" })).outcome).toBe("accepted");
    await waitFor(() => lobby.auctions.find((x) => x.id === id)?.price === 11000, "the lobby at 11000");
    lobby.close();
    alice.close();
  }, 30_000);

  it("reports the latency of the updates it received, and the server counts them for the auction", async () => {
    const { id } = await server.createAuction();
    const watcher = clientFor(server, { latencyReportMs: 0 });
    await watcher.connect();
    const watch = watcher.watch(id);
    await watch.ready();
    await waitFor(() => watcher.clock.rtt !== null, "a clock sample");
    const [bidder, other] = [clientFor(server), clientFor(server)];
    await Promise.all([bidder.signInAsGuest("Lat"), other.signInAsGuest("Ency")]);
    for (const [i, amount] of [10000, 11000].entries()) {
      const who = i % 2 === 0 ? bidder : other;
      expect((await who.http.placeBid(id, { amount, request_id: `l-${i}` })).outcome).toBe("accepted");
    }
    await waitFor(() => watch.state?.auction.seq === 3, "both updates");
    expect(watcher.latency.pending).toBe(2);
    const acked = new Promise<void>((resolve) => {
      const off = watcher.on("message", (m) => {
        if (m.type === "ok" && m.what === "latency_report") {
          off();
          resolve();
        }
      });
    });
    expect(watcher.sendLatencyReport()).toBe(true);
    await acked;
    expect(watcher.latency.pending).toBe(0);
    const stats: LatencyStats = await waitFor(async () => {
      const r = await fetch(`${server.url}/api/admin/latency`, { headers: { Authorization: `Bearer ${server.adminToken}` } });
      const body = (await r.json()) as LatencyStats;
      const mine = body.auctions.find((a) => a.auction_id === id);
      return mine && mine.latency.reports === 1 ? body : null;
    }, "the server counted the report").then((b) => b!);
    expect(stats.bounds_ms).toEqual([...LATENCY_BOUNDS_MS]);
    const mine = stats.auctions.find((a) => a.auction_id === id)!;
    expect(mine.latency.client.count).toBe(2);
    expect(mine.latency.server.count).toBeGreaterThanOrEqual(2);
    // A local server: everything well within a second, whatever the clock error.
    expect(mine.latency.client.p99_ms).not.toBeNull();
    expect(mine.latency.client.p99_ms!).toBeLessThanOrEqual(1000);
    watcher.close();
    bidder.close();
    other.close();
  }, 30_000);

  it("the receipts of accepted bids verify against the server's log after the close; an altered one does not", async () => {
    const { id } = await server.createAuction({ starting_price: 1000, increment: 100 });
    const [a, b] = [clientFor(server), clientFor(server)];
    await Promise.all([a.signInAsGuest("Ann"), b.signInAsGuest("Ben")]);
    await Promise.all([a.connect(), b.connect()]);
    const kept: Receipt[] = [];
    for (const [who, amount] of [[a, 1000], [b, 1100], [a, 1200], [b, 1300], [a, 1400]] as const) {
      const r = await who.bid(id, amount);
      expect(r.outcome).toBe("accepted");
      if (who === a) kept.push(r.receipt!);
    }
    expect(kept.map((r) => [r.seq, r.amount])).toEqual([[2, 1000], [4, 1200], [6, 1400]]);
    // Open: the log verifies to the signed head; there is no final hash yet.
    let report = await verifyWithServer(a.http, id, kept);
    expect(report.problem).toBeUndefined();
    expect(report.ok).toBe(true);
    const end = await fetch(`${server.url}/api/auctions/${id}/end`, { method: "POST", headers: { Authorization: `Bearer ${server.adminToken}`, "Content-Type": "application/json" }, body: "{}" });
    expect(end.status).toBe(200);
    const closed = await a.http.getAuction(id);
    expect(closed.log_hash).toMatch(/^[0-9a-f]{64}$/);
    report = await verifyWithServer(a.http, id, kept, closed.log_hash);
    expect(report).toMatchObject({ ok: true, entries: 7, lastHash: closed.log_hash });
    expect(report.lines.at(-1)).toBe(`receipt: ${kept[2]!.bidder_id} bid 1400 USD at seq 6: ok`);
    // Paged two entries at a time, the log is the same.
    const paged = await fetchLog(a.http, id, 2);
    expect(paged.entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const keys = await a.http.keys();
    expect((await verifyReceipts({ auctionId: id, log: paged, keys, receipts: kept, finalHash: closed.log_hash })).ok).toBe(true);
    // A receipt claiming Ann led at seq 4 with Ben's amount: refused.
    report = await verifyReceipts({ auctionId: id, log: paged, keys, receipts: [{ ...kept[1]!, amount: 1300 }], finalHash: closed.log_hash });
    expect(report.problem).toMatch(/^receipt for seq 4: the signature does not match the server's key/);
    a.close();
    b.close();
  }, 30_000);

  it("two clients racing for the same seq: exactly one is accepted and both watches agree", async () => {
    const { id } = await server.createAuction();
    const [a, b] = [clientFor(server), clientFor(server)];
    await Promise.all([a.signInAsGuest("Ann"), b.signInAsGuest("Ben")]);
    await Promise.all([a.connect(), b.connect()]);
    const [wa, wb] = [a.watch(id), b.watch(id)];
    await Promise.all([wa.ready(), wb.ready()]);
    const results = await Promise.all([a.bid(id, 11000, { expectedSeq: 1 }), b.bid(id, 11000, { expectedSeq: 1 })]);
    const outcomes = results.map((r) => r.outcome).sort();
    expect(outcomes[0]).toBe("accepted");
    expect(["outbid", "stale"]).toContain(outcomes[1]);
    const winner = results.find((r) => r.outcome === "accepted")!;
    await waitFor(() => wa.state?.auction.seq === 2 && wb.state?.auction.seq === 2, "both watches at seq 2");
    expect(wa.state?.auction).toEqual(wb.state?.auction);
    expect(wa.state?.auction.leader?.id).toBe(winner.auction?.leader?.id);
    a.close();
    b.close();
  }, 30_000);

  it("reconnects after the server is killed and restarted, resyncs from since_seq, and re-sends a bid made while down", async () => {
    const { id } = await server.createAuction();
    const alice = clientFor(server);
    const bob = clientFor(server);
    await alice.signInAsGuest("Alice");
    await bob.signInAsGuest("Bob");
    await alice.connect();
    const states: AuctionState[] = [];
    const watch = alice.watch(id, (s) => states.push(s));
    await watch.ready();
    expect((await alice.bid(id, 10000)).outcome).toBe("accepted");
    await waitFor(() => watch.state?.auction.seq === 2, "seq 2");

    await server.kill();
    await waitFor(() => alice.status === "reconnecting", "alice reconnecting");
    expect(watch.state?.live).toBe(false);
    // A bid while the server is down waits, then goes out with its request id. A proxy
    // maximum, so it is accepted whether Bob's bid lands before it or after.
    const pending = alice.bid(id, 13000, { kind: "max" });
    await sleep(300);
    expect(alice.pendingBids).toHaveLength(1);

    await server.start();
    // Bob raises the price before Alice's bid is re-sent or at the same time.
    const bobs = await bob.http.placeBid(id, { amount: 12000, request_id: "bob-1" });
    expect(["accepted", "outbid"]).toContain(bobs.outcome);
    const r = await pending;
    expect(r.outcome).toBe("accepted");
    expect(r.auction?.leader?.name).toBe("Alice");
    const server_view = await alice.http.getAuction(id);
    await waitFor(() => watch.state?.live && watch.state.auction.seq === server_view.seq, `the watch live at seq ${server_view.seq}`);
    expect(watch.state?.auction).toMatchObject({ price: server_view.price, bid_count: server_view.bid_count, leader: server_view.leader });
    // The watch only ever moved forward.
    const seqs = states.map((s) => s.auction.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    // The first bid survived the crash (embedded mode commits before confirming).
    const history = await alice.http.bids(id);
    expect(history.bids.map((b) => b.amount)).toContain(10000);
    alice.close();
    bob.close();
  }, 60_000);
});

describe("against a server with 3-second sessions", () => {
  const server = new GavelServer("client-tokens", { args: ["--session-ttl-secs", "3"] });
  beforeAll(() => server.start(), 40_000);
  afterAll(() => server.stop());

  it("a guest session is refreshed before it expires and the open socket keeps bidding", async () => {
    const { id } = await server.createAuction();
    const c = clientFor(server);
    const first = await c.signInAsGuest("Alice");
    const errors: string[] = [];
    c.on("message", (m) => m.type === "error" && errors.push(m.code));
    await c.connect();
    await sleep(4_500); // past the first token's expiry
    const s = c.currentSession!;
    expect(s.token).not.toBe(first.token);
    expect(s.user?.id).toBe(first.user.id);
    expect(s.expiresAt).toBeGreaterThan(first.expires_at);
    expect(c.user?.id).toBe(first.user.id); // the socket took the fresh token (auth → hello)
    expect((await c.bid(id, 10000)).outcome).toBe("accepted");
    expect((await c.http.me()).id).toBe(first.user.id);
    expect(errors).toEqual([]); // renewed in time: never a token_expired
    c.close();
  }, 30_000);

  it("an external token function is asked again before its token's exp", async () => {
    const { id } = await server.createAuction();
    const issuer = clientFor(server);
    const minted: string[] = [];
    const c = clientFor(server, {
      token: async () => {
        const s = await issuer.http.createSession(`Ext`);
        minted.push(s.token);
        return s.token;
      },
    });
    await c.connect();
    await sleep(4_500);
    expect(minted.length).toBeGreaterThanOrEqual(2);
    expect(c.currentSession?.token).toBe(minted.at(-1));
    const r = await c.bid(id, 10000);
    expect(r.outcome).toBe("accepted");
    c.close();
  }, 30_000);
});

// Needs faketime (scripts/test.sh installs it); in CI it runs (and fails) without it.
describe.runIf(hasFaketime() || Boolean(process.env.CI))("against a server whose clock is 30 s ahead", () => {
  const server = new GavelServer("client-clock", { clockShiftSecs: 30 });
  beforeAll(() => server.start(), 40_000);
  afterAll(() => server.stop());

  it("measures the offset from the fastest of several pings, within its round trip", async () => {
    const c = clientFor(server, { clock: { pings: 6, spacingMs: 50, refreshMs: 0 } });
    await c.connect();
    await waitFor(() => c.clock.sampleCount >= 6, "six clock samples");
    const offset = c.clock.offset!;
    const rtt = c.clock.rtt!;
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(rtt).toBeLessThan(200);
    // The truth within the sample's uncertainty (rtt/2) plus 1 ms rounding of server times.
    expect(Math.abs(offset - 30_000)).toBeLessThanOrEqual(rtt / 2 + 50);
    const t = (await c.http.time()).server_time;
    expect(Math.abs(c.serverNow() - t)).toBeLessThan(250);
    c.close();
  }, 40_000);
});

describe("a server that drains (SIGTERM) and comes back on the same address", () => {
  // Grace 3 s: the server spreads its reconnects over 1 s.
  const server = new GavelServer("client-drain", { args: ["--shutdown-grace-secs", "3"] });
  beforeAll(() => server.start(), 40_000);
  afterAll(() => server.stop());

  it("follows reconnect: no status but open, no error, resubscribes from its seq and sees what happened meanwhile", async () => {
    const { id } = await server.createAuction();
    // A single node restarting takes longer than a move to another node: a longer quiet period.
    const alice = clientFor(server, { quietReconnectMs: 10_000 });
    const bob = clientFor(server, { quietReconnectMs: 10_000 });
    const statuses: string[] = [];
    const errors: unknown[] = [];
    const told: unknown[] = [];
    for (const c of [alice, bob]) {
      await c.signInAsGuest(c === alice ? "Alice" : "Bob");
      await c.connect();
      c.on("status", (s) => statuses.push(s.status));
      c.on("error", (e) => errors.push(e));
      c.on("message", (m) => {
        if (m.type === "reconnect") told.push(m);
      });
    }
    const watch = alice.watch(id);
    await watch.ready();
    expect((await alice.bid(id, 10000)).outcome).toBe("accepted");
    await waitFor(() => watch.state?.auction.seq === 2, "seq 2");

    const took = await server.terminate();
    expect(took).toBeLessThan(3_000);
    expect(told).toMatchObject([
      { type: "reconnect", reason: "draining" },
      { type: "reconnect", reason: "draining" },
    ]);
    // A bid made while no server listens waits and goes out on the next connection.
    const pending = bob.bid(id, 11000);
    await server.start();
    expect((await pending).outcome).toBe("accepted");
    await waitFor(() => watch.state?.auction.seq === 3 && watch.state.live, "seq 3, live");
    expect(watch.state?.auction.price).toBe(11000);
    expect([alice.status, bob.status]).toEqual(["open", "open"]);
    expect(statuses).toEqual([]);
    expect(errors).toEqual([]);
    alice.close();
    bob.close();
  }, 40_000);
});
