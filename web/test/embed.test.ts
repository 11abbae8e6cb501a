import { describe, expect, it } from "vitest";
import type { AuctionView, BidResult } from "@gavel/client";
import { bidErrorMessage, bidMessage, boxView, type BoxInput } from "../embed/view";

const NOW = 1_764_000_000_000;
const view = (over: Partial<AuctionView> = {}): AuctionView => ({
  id: "lot",
  title: "Camera",
  description: "",
  currency: "USD",
  starting_price: 10000,
  increment: 1000,
  starts_at: NOW - 60_000,
  ends_at: NOW + 299_500,
  original_ends_at: NOW + 299_500,
  status: "open",
  price: 12000,
  leader: { id: "u-bob", name: "Bob" },
  bid_count: 3,
  seq: 4,
  min_bid: 13000,
  has_reserve: false,
  reserve_met: null,
  buy_now: null,
  buy_now_available: false,
  closing: null,
  ...over,
});
const alice = { id: "u-alice", name: "Alice", role: "bidder" };
const input = (over: Partial<BoxInput> = {}): BoxInput => ({
  auction: view(),
  user: alice,
  serverNow: NOW,
  bidding: false,
  canSignIn: true,
  locale: "en-US",
  ...over,
});

describe("the embeddable bid box's view", () => {
  it("shows the price, the countdown on the server's clock and a bid button for the next minimum", () => {
    const v = boxView(input());
    expect(v).toEqual({
      title: "Camera",
      priceLabel: "Current bid",
      price: "$120.00",
      leader: "Bob leads · 3 bids",
      clockLabel: "Ends in",
      clock: "05:00",
      clockSpoken: "Ends in 5 minutes",
      button: "Bid $130.00",
      buttonHint: "The next bid must be at least $130.00.",
      buttonEnabled: true,
      nextMinimum: 13000,
      phase: "open",
    });
    // The countdown is on the server's time as given, not the local clock.
    expect(boxView(input({ serverNow: NOW + 240_000 })).clock).toBe("01:00");
  });

  it("does not offer a bid to the leader, while one is pending, before the start, or once time is up", () => {
    const leading = boxView(input({ auction: view({ leader: { id: "u-alice", name: "Alice" } }) }));
    expect([leading.buttonEnabled, leading.leader, leading.buttonHint]).toEqual([false, "You are the highest bidder · 3 bids", "You are the highest bidder."]);
    const pending = boxView(input({ bidding: true }));
    expect([pending.buttonEnabled, pending.button]).toEqual([false, "Bidding…"]);
    const early = boxView(input({ auction: view({ status: "scheduled", starts_at: NOW + 90_000, price: null, leader: null, bid_count: 0, min_bid: 10000 }) }));
    expect([early.phase, early.clockLabel, early.clock, early.buttonEnabled, early.priceLabel, early.price, early.leader]).toEqual([
      "scheduled",
      "Starts in",
      "01:30",
      false,
      "Starting price",
      "$100.00",
      "No bids yet",
    ]);
    const over = boxView(input({ serverNow: NOW + 300_000 }));
    expect([over.phase, over.clock, over.buttonEnabled]).toEqual(["closing", "00:00", false]);
  });

  it("asks a visitor to sign in, and cannot bid when the page gives no token at all", () => {
    const visitor = boxView(input({ user: null }));
    expect([visitor.buttonEnabled, visitor.buttonHint]).toEqual([true, "Sign in to bid. The next bid must be at least $130.00."]);
    const noWay = boxView(input({ user: null, canSignIn: false }));
    expect([noWay.buttonEnabled, noWay.buttonHint]).toEqual([false, "Sign in on this site to bid."]);
  });

  it("shows the result once closed: the winner, the final price, no button", () => {
    const closing = { reason: "ended" as const, closed_at: NOW, winner: { id: "u-bob", name: "Bob" }, final_price: 12000 };
    const sold = boxView(input({ auction: view({ status: "closed", closing }) }));
    expect([sold.phase, sold.priceLabel, sold.price, sold.leader, sold.buttonEnabled, sold.button]).toEqual([
      "closed",
      "Sold for",
      "$120.00",
      "Won by Bob · 3 bids",
      false,
      "Auction ended",
    ]);
    const won = boxView(input({ user: { ...alice, id: "u-bob" }, auction: view({ status: "closed", closing }) }));
    expect(won.leader).toBe("You won this auction");
    const cancelled = boxView(input({ auction: view({ status: "closed", closing: { ...closing, reason: "cancelled", winner: null, final_price: null } }) }));
    expect([cancelled.priceLabel, cancelled.price]).toEqual(["Cancelled", "—"]);
  });

  it("is a disabled placeholder until the first state arrives", () => {
    const v = boxView(input({ auction: null }));
    expect([v.phase, v.buttonEnabled, v.nextMinimum]).toEqual(["loading", false, null]);
  });

  it("words bid answers and refusals for the viewer", () => {
    const r = (outcome: string, auction?: AuctionView): BidResult => ({ request_id: "r", auction_id: "lot", outcome, message: "m", auction } as BidResult);
    expect(bidMessage(r("accepted"), "USD", "en-US")).toEqual({ tone: "good", text: "Your bid was placed. You are the highest bidder." });
    expect(bidMessage(r("outbid", view({ price: 14000, min_bid: 15000 })), "USD", "en-US")).toEqual({
      tone: "warn",
      text: "Someone bid more first (now $140.00). The next bid must be at least $150.00.",
    });
    expect(bidErrorMessage("outcome_unknown", "x")).toBe("No answer yet: your bid may have been placed. The price shown will tell.");
    expect(bidErrorMessage("something_new", "The server's words")).toBe("The server's words");
  });
});
