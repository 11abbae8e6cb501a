import { beforeEach, describe, expect, it } from "vitest";
import type { Notification } from "@gavel/client";
import { applyNotification, initialPersonal, notificationText, SeenIds } from "../src/personal";

const outbid: Notification = {
  id: "lot-1:5:outbid",
  kind: "outbid",
  auction_id: "lot-1",
  title: "Lamp",
  currency: "USD",
  seq: 5,
  price: 1500,
  ends_at: 2_000_000,
  at: 1_000_000,
};

describe("personal notifications", () => {
  beforeEach(() => {
    const store = new Map<string, string>();
    (globalThis as { localStorage?: unknown }).localStorage = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void store.set(k, v),
    };
  });

  it("shows each id once, also across a new page (ids kept in storage)", () => {
    const first = new SeenIds();
    expect(first.add(outbid.id)).toBe(true);
    expect(first.add(outbid.id)).toBe(false);
    expect(new SeenIds().add(outbid.id)).toBe(false);
    expect(new SeenIds().add("lot-1:ending_soon")).toBe(true);
  });

  it("a fresh notification is listed and unread; a repeated one only updates the status", () => {
    const s1 = applyNotification(initialPersonal, outbid, true);
    expect(s1.unread).toBe(1);
    expect(s1.notifications).toHaveLength(1);
    expect(s1.auctions["lot-1"].my_status).toBe("outbid");
    const s2 = applyNotification(s1, outbid, false);
    expect(s2.unread).toBe(1);
    expect(s2.notifications).toHaveLength(1);
    const won = applyNotification(s2, { ...outbid, id: "lot-1:9:won", kind: "won", seq: 9 }, true);
    expect(won.auctions["lot-1"].my_status).toBe("won");
    expect(won.auctions["lot-1"].status).toBe("closed");
  });

  it("says what happened in words", () => {
    const money = (m: number) => `$${(m / 100).toFixed(2)}`;
    expect(notificationText(outbid, money)).toBe("You were outbid on “Lamp”: now $15.00.");
    expect(notificationText({ ...outbid, kind: "ending_soon" }, money)).toBe("“Lamp” ends soon (now $15.00).");
  });
});
