import { describe, expect, it } from "vitest";
import type { BidAttempt } from "../src/client";
import { formatDuration, formatRemaining, outcomeText, spokenRemaining } from "../src/format";
import type { AuctionView } from "../src/types";

const view = (over: Partial<AuctionView> = {}): AuctionView => ({
  id: "cam",
  title: "Camera",
  description: "",
  currency: "USD",
  starting_price: 10000,
  increment: 1000,
  starts_at: 0,
  ends_at: 1_000_000,
  original_ends_at: 1_000_000,
  status: "open",
  price: 12000,
  leader: { id: "u-bob", name: "Bob" },
  bid_count: 3,
  seq: 5,
  min_bid: 13000,
  has_reserve: false,
  reserve_met: null,
  buy_now: null,
  buy_now_available: false,
  closing: null,
  ...over,
});

const attempt = (over: Partial<BidAttempt> = {}): BidAttempt => ({
  requestId: "r1",
  auctionId: "cam",
  amount: 12000,
  kind: "plain",
  expectedSeq: 4,
  state: "done",
  queued: false,
  sentAt: 0,
  firstSentAt: 0,
  ...over,
});

describe("formatRemaining", () => {
  it("rounds up and picks a compact form", () => {
    expect(formatRemaining(0)).toBe("00:00");
    expect(formatRemaining(-5)).toBe("00:00");
    expect(formatRemaining(1)).toBe("00:01");
    expect(formatRemaining(299_001)).toBe("05:00");
    expect(formatRemaining(3_723_000)).toBe("1:02:03");
    expect(formatRemaining(2 * 86_400_000 + 3_723_000)).toBe("2d 01:02:03");
    expect(spokenRemaining(61_000)).toBe("1 minute 1 second");
    expect(formatDuration(30_000)).toBe("30 s");
    expect(formatDuration(90_000)).toBe("1 min 30 s");
  });
});

describe("outcomeText", () => {
  it("puts each outcome in plain words", () => {
    const stale = outcomeText(attempt({ outcome: "stale", auction: view() }), "USD", "u-alice");
    expect(stale.title).toBe("Someone bid first");
    expect(stale.detail).toContain("$120.00");
    expect(stale.rebid).toEqual({ amount: 13000, expectedSeq: 5 });
    const outbid = outcomeText(attempt({ outcome: "outbid", auction: view() }), "USD", "u-alice");
    expect(outbid.title).toBe("Outbid");
    expect(outbid.detail).toContain("at least $130.00");
    expect(outcomeText(attempt({ outcome: "closed", auction: view({ status: "closed" }) }), "USD", "u-alice").title).toBe("Too late");
    expect(outcomeText(attempt({ outcome: "accepted", auction: view({ leader: { id: "u-alice", name: "A" } }) }), "USD", "u-alice").title).toBe(
      "Bid accepted",
    );
    expect(outcomeText(attempt({ state: "pending", queued: true }), "USD", "u-alice").title).toContain("Waiting to send");
    expect(outcomeText(attempt({ state: "error", errorCode: "rate_limited" }), "USD", "u-alice").title).toBe("Slow down");
  });

  it("does not call the user's own earlier bid 'someone'", () => {
    const t = outcomeText(attempt({ outcome: "stale", auction: view({ leader: { id: "u-alice", name: "Alice" } }) }), "USD", "u-alice");
    expect(t.title).toBe("You are already winning");
    expect(t.rebid).toBeUndefined();
  });

  it("turns an accepted bid into 'outbid since' once someone else leads", () => {
    const accepted = attempt({ outcome: "accepted", auction: view({ leader: { id: "u-alice", name: "A" }, seq: 5 }) });
    const now = view({ seq: 6, price: 13000, min_bid: 14000 });
    const t = outcomeText(accepted, "USD", "u-alice", now);
    expect(t.title).toBe("Outbid since your bid");
    expect(t.rebid).toEqual({ amount: 14000, expectedSeq: 6 });
  });
});
