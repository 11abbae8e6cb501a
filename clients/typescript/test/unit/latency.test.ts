import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { GavelClient } from "../../src/client.js";
import { bucketOf, LATENCY_BOUNDS_MS, LatencyRecorder, MAX_REPORT_AUCTIONS } from "../../src/latency.js";
import { auction, Sockets } from "./fakes.js";

let sockets: Sockets;

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
  sockets = new Sockets();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("the latency recorder", () => {
  it("counts each latency in the bucket of its upper bound, negatives in the first", () => {
    expect(bucketOf(-3)).toBe(0);
    expect(bucketOf(1)).toBe(0);
    expect(bucketOf(2)).toBe(1);
    expect(bucketOf(3)).toBe(2);
    expect(bucketOf(10_000)).toBe(LATENCY_BOUNDS_MS.length - 1);
    expect(bucketOf(10_001)).toBe(LATENCY_BOUNDS_MS.length);
    const r = new LatencyRecorder();
    expect(r.take(5)).toBeNull();
    r.record("a1", 1000, 1020); // 20 ms
    r.record("a1", 1000, 1020);
    r.record("a2", 1000, 99_000); // slower than the last bound
    const report = r.take(4.2)!;
    expect(report.clock_error_ms).toBe(5);
    expect(report.auctions).toHaveLength(2);
    const a1 = report.auctions.find((a) => a.auction_id === "a1")!;
    expect(a1.counts).toHaveLength(LATENCY_BOUNDS_MS.length + 1);
    expect(a1.counts[4]).toBe(2);
    expect(a1.counts.reduce((x, y) => x + y, 0)).toBe(2);
    expect(report.auctions.find((a) => a.auction_id === "a2")!.counts.at(-1)).toBe(1);
    expect(r.take(1)).toBeNull(); // taken: forgotten
  });

  it("stays within what one report may carry", () => {
    const r = new LatencyRecorder();
    for (let i = 0; i < MAX_REPORT_AUCTIONS + 10; i++) r.record(`a${i}`, 0, 5);
    expect(r.take(1)!.auctions).toHaveLength(MAX_REPORT_AUCTIONS);
  });
});

describe("latency reports", () => {
  it("measure decided_at and closed_at with the clock offset and go out every 30 s with half the round trip", async () => {
    const c = new GavelClient({ baseUrl: "http://gavel.test", token: "t-1", socketFactory: sockets.factory, clock: { pings: 1, refreshMs: 0 } });
    const sent: unknown[] = [];
    c.on("latency", (r) => sent.push(r));
    void c.connect();
    const ws = sockets.last;
    ws.accept();
    const keepAlive = setInterval(() => ws.receive({ type: "heartbeat", server_time: Date.now() }), 500);
    c.watch("a1");
    ws.receive({ type: "snapshot", auction: auction({ seq: 3 }), server_time: Date.now(), recent_bids: [], resync: false });
    // Before a ping sample the offset's error is unknown: nothing is counted.
    ws.receive({ type: "update", auction_id: "a1", seq: 4, event: "bid", price: 11000, decided_at: Date.now() - 5 });
    expect(c.latency.pending).toBe(0);
    // The server's clock is 2 s ahead; the round trip is 8 ms.
    const ping = ws.of("ping")[0]!;
    vi.setSystemTime(ping.client_time + 8);
    ws.receive({ type: "pong", client_time: ping.client_time, server_time: ping.client_time + 4 + 2000 });
    // Decided 30 ms (server time) before it arrives.
    ws.receive({ type: "update", auction_id: "a1", seq: 5, event: "bid", price: 12000, decided_at: Date.now() + 2000 - 30 });
    ws.receive({ type: "update", auction_id: "a1", seq: 6, event: "max_raised" }); // no time: not counted
    ws.receive({ type: "update", auction_id: "zz", seq: 9, event: "bid", decided_at: Date.now() }); // not watched
    ws.receive({ type: "closed", auction_id: "a1", seq: 7, reason: "ended", winner: null, final_price: null, closed_at: Date.now() + 2000 - 700, bid_count: 2, reserve_met: null });
    expect(c.latency.pending).toBe(2);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(ws.of("latency_report")).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_500);
    const reports = ws.of("latency_report");
    expect(reports).toHaveLength(1);
    const counts = new Array(LATENCY_BOUNDS_MS.length + 1).fill(0);
    counts[bucketOf(30)] = 1;
    counts[bucketOf(700)] = 1;
    expect(reports[0]).toEqual({ type: "latency_report", clock_error_ms: 4, auctions: [{ auction_id: "a1", counts }] });
    expect(sent).toEqual(reports);
    // Nothing new: no empty report.
    await vi.advanceTimersByTimeAsync(31_000);
    expect(ws.of("latency_report")).toHaveLength(1);
    expect(sockets.all).toHaveLength(1);
    clearInterval(keepAlive);
    c.close();
  });
});
