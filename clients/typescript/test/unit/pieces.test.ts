import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/backoff.js";
import { jwtExpiry, refreshDelay } from "../../src/client.js";
import { ClockEstimator } from "../../src/clock.js";
import { GavelError } from "../../src/errors.js";
import { AuctionFeed, applyClosed } from "../../src/feed.js";
import { HttpApi, newRequestId } from "../../src/http.js";
import { auction, fakeFetch } from "./fakes.js";

describe("backoff", () => {
  it("doubles from the base up to the cap, with the jitter inside [1 − jitter, 1] of it", () => {
    const none = [0, 1, 2, 3, 10].map((n) => backoffDelay(n, { baseMs: 100, maxMs: 1000, jitter: 0 }));
    expect(none).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffDelay(3, { baseMs: 100, maxMs: 1000, jitter: 0.5 }, () => 0)).toBe(400);
    expect(backoffDelay(3, { baseMs: 100, maxMs: 1000, jitter: 0.5 }, () => 0.999999)).toBe(800);
  });
});

describe("clock", () => {
  it("keeps the smallest-rtt sample and drops all on a local clock jump", () => {
    const c = new ClockEstimator();
    expect(c.offset).toBeNull();
    c.addCoarse(1_000_500, 1_000_000);
    expect([c.offset, c.rtt]).toEqual([500, null]);
    c.addSample(1_000_000, 1_000_540, 1_000_100); // rtt 100, offset 490
    c.addSample(1_000_200, 1_000_711, 1_000_220); // rtt 20, offset 501
    c.addSample(1_000_300, 1_000_900, 1_000_500); // rtt 200, offset 500
    expect([c.rtt, c.offset]).toEqual([20, 501]);
    expect(c.addSample(5, 6, 4)).toBeNull(); // negative rtt
    // The local clock jumped back 1 h: the old samples describe another clock.
    c.addSample(1_000_600 - 3_600_000, 1_000_650, 1_000_650 - 3_600_000);
    expect(c.sampleCount).toBe(1);
    expect(c.offset).toBe(3_600_000 + 25);
  });
});

describe("feed", () => {
  it("applies the next seq, ignores old ones, flags gaps, and replaces state on a resync snapshot", () => {
    const f = new AuctionFeed("a1");
    expect(f.update({ auction_id: "a1", seq: 2, event: "bid" })).toBe("ignored"); // nothing held yet
    expect(f.snapshot(auction({ seq: 2 }), [], false)).toBe("applied");
    expect(f.update({ auction_id: "a2", seq: 3, event: "bid" })).toBe("ignored");
    const bid = { seq: 3, bidder: { id: "u-1", name: "A" }, amount: 10000, kind: "bid" as const, at: 1 };
    expect(f.update({ auction_id: "a1", seq: 3, event: "bid", price: 10000, leader: bid.bidder, bid })).toBe("applied");
    expect(f.auction).toMatchObject({ seq: 3, price: 10000, leader: { id: "u-1" } });
    expect(f.recentBids).toEqual([bid]);
    expect(f.update({ auction_id: "a1", seq: 3, event: "bid" })).toBe("ignored");
    expect(f.update({ auction_id: "a1", seq: 5, event: "bid" })).toBe("gap");
    expect([f.gapSince, f.inSync]).toEqual([3, false]);
    expect(f.snapshot(auction({ seq: 2 }), [], false)).toBe("applied"); // out of sync: any snapshot helps
    expect(f.snapshot(auction({ seq: 1 }), [], false)).toBe("ignored"); // in sync: older is old news
    expect(f.snapshot(auction({ seq: 9, status: "closed" }), [], true)).toBe("applied");
    expect([f.seq, f.inSync, f.recentBids]).toEqual([9, true, []]);
    expect(f.update({ auction_id: "a1", seq: 10, event: "opened" })).toBe("applied");
    expect(f.auction?.status).toBe("open");
  });
});

describe("applyClosed", () => {
  it("takes the close's result and the final hash of the log it published", () => {
    const c = { auction_id: "a1", seq: 9, reason: "ended" as const, winner: { id: "u-1", name: "Ann" }, final_price: 12000, closed_at: 5_000, bid_count: 3, reserve_met: null };
    const v = applyClosed(auction({ seq: 8, price: 12000 }), { ...c, log_hash: "ab".repeat(32) });
    expect(v).toMatchObject({ status: "closed", seq: 9, price: 12000, leader: c.winner, log_hash: "ab".repeat(32) });
    expect(v.closing).toEqual({ reason: "ended", closed_at: 5_000, winner: c.winner, final_price: 12000 });
    // A server without the log publishes none: the view keeps what it had.
    expect(applyClosed(auction({ seq: 8 }), c).log_hash).toBeUndefined();
  });
});

describe("http", () => {
  it("sends the bearer token, reads error bodies as GavelErrors, and retries an unknown bid outcome with the same request id", async () => {
    let tries = 0;
    const f = fakeFetch({
      "GET /api/me": (_b, h) => (h.Authorization === "Bearer tok" ? [200, { id: "u-1", name: "A", role: "bidder" }] : [401, { error: { code: "unauthorized", message: "no" } }]),
      "POST /api/auctions/a1/bids": (body) =>
        ++tries < 3
          ? [503, { error: { code: "outcome_unknown", message: "lost" } }]
          : [409, { request_id: (body as { request_id: string }).request_id, auction_id: "a1", outcome: "outbid", message: "too low" }],
      "POST /api/auctions/a2/bids": () => [422, { error: { code: "invalid_amount", message: "not an integer" } }],
    });
    let token: string | null = "tok";
    const api = new HttpApi({ baseUrl: "http://gavel.test/", fetch: f.fn, token: () => token });
    await expect(api.me()).resolves.toEqual({ id: "u-1", name: "A", role: "bidder" });
    token = null;
    const e = await api.me().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GavelError);
    expect([(e as GavelError).code, (e as GavelError).status]).toEqual(["unauthorized", 401]);
    token = "tok";
    const r = await api.placeBid("a1", { amount: 100, request_id: "r-1" }, { sleep: async () => {} });
    expect(r).toMatchObject({ outcome: "outbid", request_id: "r-1" });
    const bids = f.calls.filter((c) => c.path === "/api/auctions/a1/bids");
    expect(bids.map((c) => (c.body as { request_id: string }).request_id)).toEqual(["r-1", "r-1", "r-1"]);
    await expect(api.placeBid("a2", { amount: 1.5, request_id: "r-2" }, { sleep: async () => {} })).rejects.toMatchObject({ code: "invalid_amount", status: 422, requestId: "r-2" });
    expect(f.calls.filter((c) => c.path === "/api/auctions/a2/bids")).toHaveLength(1);
  });

  it("makes request ids the server accepts", () => {
    const ids = new Set(Array.from({ length: 100 }, () => newRequestId()));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_.:-]{1,64}$/);
  });
});

describe("tokens", () => {
  it("refreshes at 80 % of a short remaining life and a minute before a long one", () => {
    expect(refreshDelay(100_000)).toBe(80_000);
    expect(refreshDelay(3_600_000)).toBe(3_540_000);
    expect(refreshDelay(-5)).toBe(0);
  });

  it("reads a JWT's exp", () => {
    const payload = Buffer.from(JSON.stringify({ sub: "u", exp: 1_800_000_000 })).toString("base64url");
    expect(jwtExpiry(`h.${payload}.s`)).toBe(1_800_000_000_000);
    expect(jwtExpiry("opaque-admin-token")).toBeNull();
  });
});
