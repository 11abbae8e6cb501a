// The receipts of accepted bids: kept per auction in localStorage, downloaded as the JSON
// `gavel verify --receipt` reads, and checked against the published log after the close.
// The log, key and receipts are a real server's (clients/typescript/test/unit/fixtures).

import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { receiptsIn, type AuctionView, type KeysResponse, type LogPage, type Receipt, type SocketLike } from "@gavel/client";
import { GavelClient } from "../src/client";
import { addReceipt, loadReceipts, MAX_AUCTIONS, RECEIPTS_KEY, receiptsFile, saveReceipts } from "../src/receipts";

interface Fixture {
  auction_id: string;
  final_hash: string;
  keys: KeysResponse;
  log: LogPage;
  receipts: Receipt[];
}
const fixture = (): Fixture =>
  JSON.parse(readFileSync(new URL("../../clients/typescript/test/unit/fixtures/verified-auction.json", import.meta.url), "utf8")) as Fixture;

class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(k: string) {
    return this.items.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.items.set(k, v);
  }
  removeItem(k: string) {
    this.items.delete(k);
  }
}

describe("the receipt store", () => {
  it("adds in seq order, ignores a repeat (a retried request gets the same receipt), and survives a reload", () => {
    const [a, b] = fixture().receipts;
    let store = addReceipt({}, b!);
    store = addReceipt(store, a!);
    expect(store[a!.auction_id]!.map((r) => r.seq)).toEqual([3, 4]);
    expect(addReceipt(store, { ...a! })).toBe(store);
    const storage = new MemoryStorage();
    saveReceipts(store, storage);
    expect(loadReceipts(storage)).toEqual(store);
  });

  it("reads nothing from junk, and drops what is not a receipt", () => {
    const storage = new MemoryStorage();
    storage.setItem(RECEIPTS_KEY, "not json");
    expect(loadReceipts(storage)).toEqual({});
    const r = fixture().receipts[0]!;
    storage.setItem(RECEIPTS_KEY, JSON.stringify({ lot: [r, { seq: "x" }, null], other: "nope", empty: [] }));
    expect(loadReceipts(storage)).toEqual({ lot: [r] });
    expect(loadReceipts(null)).toEqual({});
  });

  it(`keeps the ${MAX_AUCTIONS} auctions with the newest receipts`, () => {
    const base = fixture().receipts[0]!;
    let store = {};
    for (let i = 0; i <= MAX_AUCTIONS; i++) store = addReceipt(store, { ...base, auction_id: `lot-${i}`, at: 1_000 + i });
    expect(Object.keys(store)).toHaveLength(MAX_AUCTIONS);
    expect(Object.keys(store)).not.toContain("lot-0");
    expect(Object.keys(store)).toContain(`lot-${MAX_AUCTIONS}`);
  });

  it("downloads a JSON array of receipts, as gavel verify --receipt reads it", () => {
    const f = fixture();
    const file = receiptsFile(f.auction_id, f.receipts);
    expect(file.name).toBe("gavel-receipts-fixture-lot_1.json");
    expect(receiptsIn(JSON.parse(file.text))).toEqual(f.receipts);
  });
});

class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: { type: string; [k: string]: unknown }[] = [];
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {}
  frame(msg: object) {
    this.readyState = 1;
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  last(type: string) {
    return [...this.sent].reverse().find((m) => m.type === type);
  }
}

describe("the store keeps and checks receipts", () => {
  let sockets: FakeSocket[];
  let storage: MemoryStorage;
  let serveLog: () => LogPage;
  const ws = () => sockets[sockets.length - 1]!;

  beforeEach(() => {
    sockets = [];
    storage = new MemoryStorage();
    const f = fixture();
    serveLog = () => f.log;
    vi.stubGlobal("location", { protocol: "http:", host: "test" });
    vi.stubGlobal("localStorage", storage);
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => {
        const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
        if (url.startsWith(`/api/auctions/${encodeURIComponent(f.auction_id)}/log`)) return json(serveLog());
        if (url === "/api/keys") return json(f.keys);
        return new Promise<Response>(() => {});
      }),
    );
  });
  afterEach(() => vi.unstubAllGlobals());

  function start(bidderId: string) {
    const user = { id: bidderId, name: "Alice", role: "bidder" };
    const c = new GavelClient(
      { token: "t1", user: user as never, expires_at: Date.now() + 3600_000 },
      {
        socket: (url) => {
          const s = new FakeSocket(url);
          sockets.push(s);
          return s;
        },
        online: () => true,
      },
    );
    c.start();
    return { c, user };
  }

  function closedView(f: Fixture): AuctionView {
    const last = f.log.entries[f.log.entries.length - 1]!;
    return {
      id: f.auction_id,
      title: "Fixture lot",
      description: "",
      currency: "EUR",
      starting_price: 1000,
      increment: 100,
      starts_at: 0,
      ends_at: last.ends_at,
      original_ends_at: last.ends_at,
      status: "closed",
      price: 3100,
      leader: null,
      bid_count: 4,
      seq: 8,
      min_bid: 3200,
      has_reserve: true,
      reserve_met: true,
      buy_now: 50000,
      buy_now_available: false,
      closing: { reason: "ended_early", closed_at: last.at, winner: null, final_price: 3100 },
      log_hash: f.final_hash,
    };
  }

  it("keeps each accepted bid's receipt (localStorage), and after the close shows it verified against the log", async () => {
    const f = fixture();
    const [r3, , , r7] = f.receipts;
    const { c, user } = start(r3!.bidder_id);
    c.watchAuction(f.auction_id);
    ws().frame({ type: "hello", user, server_time: Date.now(), heartbeat_ms: 1_000, limits: { max_message_bytes: 4096, max_subscriptions: 100, bids_per_second: 10 } });
    for (const r of [r3!, r7!]) {
      const attempt = c.placeBid(f.auction_id, r.amount);
      ws().frame({ type: "bid_result", request_id: attempt.requestId, auction_id: f.auction_id, outcome: "accepted", message: "ok", receipt: r });
    }
    // An outbid answer carries no receipt; a repeat of an accepted one adds nothing.
    const outbid = c.placeBid(f.auction_id, 1600);
    ws().frame({ type: "bid_result", request_id: outbid.requestId, auction_id: f.auction_id, outcome: "outbid", message: "no" });
    expect(c.getState().receipts[f.auction_id]).toEqual([r3, r7]);
    expect(JSON.parse(storage.getItem(RECEIPTS_KEY)!)).toEqual({ [f.auction_id]: [r3, r7] });
    expect(c.getState().verifications[f.auction_id]).toBeUndefined(); // not closed yet
    ws().frame({ type: "snapshot", auction: closedView(f), server_time: Date.now(), recent_bids: [], resync: false });
    expect(c.getState().verifications[f.auction_id]?.state).toBe("checking");
    await vi.waitFor(() => expect(c.getState().verifications[f.auction_id]?.state).toBe("verified"));
    expect(c.getState().verifications[f.auction_id]).toEqual({ state: "verified", count: 2, finalHash: f.final_hash });
    c.stop();
  });

  it("a receipt altered in storage is reported, naming its seq", async () => {
    const f = fixture();
    const r3 = f.receipts[0]!;
    storage.setItem(RECEIPTS_KEY, JSON.stringify({ [f.auction_id]: [{ ...r3, amount: r3.amount + 1000 }] }));
    const { c, user } = start(r3.bidder_id);
    expect(c.getState().receipts[f.auction_id]).toHaveLength(1);
    c.watchAuction(f.auction_id);
    ws().frame({ type: "hello", user, server_time: Date.now(), heartbeat_ms: 1_000, limits: { max_message_bytes: 4096, max_subscriptions: 100, bids_per_second: 10 } });
    ws().frame({ type: "snapshot", auction: closedView(f), server_time: Date.now(), recent_bids: [], resync: false });
    await vi.waitFor(() => expect(c.getState().verifications[f.auction_id]?.state).toBe("failed"));
    expect(c.getState().verifications[f.auction_id]?.detail).toBe(
      "receipt for seq 3: the signature does not match the server's key: the receipt was altered or not issued by this server",
    );
    c.stop();
  });

  it("a log whose last entries are not archived yet is asked for again until it is complete", async () => {
    const f = fixture();
    let served = 0;
    serveLog = () => (++served === 1 ? { ...f.log, entries: f.log.entries.slice(0, 6) } : f.log);
    storage.setItem(RECEIPTS_KEY, JSON.stringify({ [f.auction_id]: [f.receipts[0]] }));
    const { c, user } = start(f.receipts[0]!.bidder_id);
    c.watchAuction(f.auction_id);
    ws().frame({ type: "hello", user, server_time: Date.now(), heartbeat_ms: 1_000, limits: { max_message_bytes: 4096, max_subscriptions: 100, bids_per_second: 10 } });
    ws().frame({ type: "snapshot", auction: closedView(f), server_time: Date.now(), recent_bids: [], resync: false });
    await vi.waitFor(() => expect(c.getState().verifications[f.auction_id]?.state).toBe("waiting"));
    await vi.waitFor(() => expect(c.getState().verifications[f.auction_id]?.state).toBe("verified"), { timeout: 5_000 });
    expect(served).toBe(2);
    c.stop();
  });
});
