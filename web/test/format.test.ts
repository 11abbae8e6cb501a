import { describe, expect, it } from "vitest";
import type { BidAttempt } from "../src/client";
import {
  answerIsCurrent,
  formatDuration,
  latencyText,
  formatRemaining,
  outbidByProxy,
  outcomeText,
  softCloseRule,
  spokenRemaining,
} from "../src/format";
import type { AuctionView, BidView } from "@gavel/client";

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
    expect(formatDuration(600_000)).toBe("10 min");
    expect(formatDuration(3_660_000)).toBe("1 h 1 min");
    expect(formatDuration(86_400_000)).toBe("1 day");
    expect(formatDuration(0)).toBe("0 s");
  });
});

describe("outcomeText", () => {
  it("puts each outcome in plain words", () => {
    const stale = outcomeText(attempt({ outcome: "stale", auction: view() }), "USD", "u-alice");
    expect(stale.title).toBe("Someone bid first");
    expect(stale.detail).toContain("$120.00");
    const tooLow = outcomeText(attempt({ outcome: "outbid", amount: 12500, seenSeq: 5, auction: view() }), "USD", "u-alice");
    expect(tooLow).toEqual({
      tone: "warn",
      title: "Too low",
      detail: "Your bid of $125.00 was below the minimum bid, so it was not placed. The next bid must be at least $130.00.",
    });
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
  });

  it("never calls leading below an unmet reserve winning", () => {
    const me = { id: "u-alice", name: "Alice" };
    const below = view({ leader: me, has_reserve: true, reserve_met: false });
    const met = view({ leader: me, has_reserve: true, reserve_met: true });
    expect(outcomeText(attempt({ amount: 12000, outcome: "accepted", auction: below }), "USD", "u-alice").detail).toBe(
      "Your bid of $120.00 leads, but the seller's reserve is not met yet: if the auction ended now, nobody would win.",
    );
    expect(outcomeText(attempt({ amount: 12000, outcome: "accepted", auction: met }), "USD", "u-alice").detail).toBe("Your bid of $120.00 leads.");
    const again = outcomeText(attempt({ outcome: "already_leading", auction: below }), "USD", "u-alice");
    expect(again.title).toBe("You already lead");
    expect(again.detail).toContain("set a maximum");
    expect(outcomeText(attempt({ outcome: "already_leading", auction: met }), "USD", "u-alice").title).toBe("You are already winning");
    expect(outcomeText(attempt({ outcome: "stale", auction: below }), "USD", "u-alice").title).toBe("You already lead");
  });

  it("says when another bidder's maximum answered the bid at once", () => {
    // Alice saw seq 4 and bid $110; Bob's maximum answered at $120 (seq 5, an auto entry).
    const b = attempt({ outcome: "outbid", amount: 11000, seenSeq: 4, auction: view({ price: 12000, seq: 5 }) });
    const auto: BidView = { seq: 5, bidder: { id: "u-bob", name: "Bob" }, amount: 12000, kind: "auto", at: 1 };
    expect(outbidByProxy(b, auto)).toBe(true);
    expect(outcomeText(b, "USD", "u-alice", auto)).toEqual({
      tone: "warn",
      title: "Outbid at once by another bidder's automatic bid",
      detail:
        "Another bidder had set a maximum above your bid of $110.00, so the system bid for them at once " +
        "(shown as “auto” in the history). The price is now $120.00. The next bid must be at least $130.00.",
    });
    // A plain bid that got there first is not called automatic.
    const plain: BidView = { ...auto, kind: "bid" };
    expect(outbidByProxy(b, plain)).toBe(false);
    expect(outcomeText(b, "USD", "u-alice", plain).title).toBe("Someone bid more first");
    // Nothing moved: simply too low.
    expect(outbidByProxy({ ...b, auction: view({ price: 12000, seq: 4 }) })).toBe(false);
  });

  it("keeps a bid answered outcome_unknown pending, never lost or placed", () => {
    const t = outcomeText(attempt({ state: "pending", uncertain: true, queued: false }), "USD", "u-alice");
    expect(t.tone).toBe("info");
    expect(t.title).toBe("Checking whether your bid of $120.00 was placed…");
    expect(t.detail).toContain("same request");
  });
});

describe("answerIsCurrent", () => {
  it("shows an answer only until the auction moves past it", () => {
    const accepted = attempt({ outcome: "accepted", auction: view({ leader: { id: "u-alice", name: "A" }, seq: 5 }) });
    expect(answerIsCurrent(accepted, view({ seq: 5 }))).toBe(true);
    expect(answerIsCurrent(accepted, view({ seq: 6, price: 13000 }))).toBe(false);
    expect(answerIsCurrent(accepted, view({ seq: 5, status: "closed" }))).toBe(false);
    expect(answerIsCurrent(attempt({ state: "pending" }), view({ seq: 9 }))).toBe(true);
  });
});

describe("softCloseRule", () => {
  it("says what docs/rules.md says: the end moves to a time after the bid, up to a cap", () => {
    expect(softCloseRule({ window_ms: 30_000, extend_ms: 30_000, max_extension_ms: 600_000 })).toBe(
      "Soft close: a bid that moves the price in the last 30 s before the end moves the end to 30 s after that bid, never more than 10 min past the original end.",
    );
    expect(softCloseRule({ window_ms: 120_000, extend_ms: 60_000 })).toBe(
      "Soft close: a bid that moves the price in the last 2 min before the end moves the end to 1 min after that bid.",
    );
    expect(softCloseRule({ window_ms: 5_000, extend_ms: 10_000, max_extension_ms: 0 })).toBe(
      "Soft close is off for this auction (its cap is 0): the end does not move.",
    );
    // Beside a "Soft close" label.
    expect(softCloseRule({ window_ms: 30_000, extend_ms: 30_000 }, false)).toBe(
      "A bid that moves the price in the last 30 s before the end moves the end to 30 s after that bid.",
    );
  });
});

describe("latencyText", () => {
  it("shows the bucket bounds of the median and the 95th percentile, or a dash without samples", () => {
    expect(latencyText({ count: 0, p50_ms: null, p95_ms: null }, 10_000)).toBe("—");
    expect(latencyText({ count: 9, p50_ms: 5, p95_ms: 250 }, 10_000)).toBe("p50 ≤ 5 ms · p95 ≤ 250 ms");
    expect(latencyText({ count: 9, p50_ms: 2500, p95_ms: null }, 10_000)).toBe("p50 ≤ 2.5 s · p95 > 10 s");
  });
});
