import { describe, expect, it } from "vitest";
import {
  filterAuctions,
  initialLobby,
  initialRoom,
  isConfirmed,
  lobbyReducer,
  lobbySections,
  olderCursor,
  roomReducer,
  standing,
  type RoomState,
} from "../src/state";
import type { AuctionView, BidView, Update } from "@gavel/client";

const alice = { id: "u-alice", name: "Alice" };
const bob = { id: "u-bob", name: "Bob" };

function view(over: Partial<AuctionView> = {}): AuctionView {
  return {
    id: "cam",
    title: "Vintage camera",
    description: "Leica M3",
    currency: "USD",
    starting_price: 10000,
    increment: 1000,
    starts_at: 1_000,
    ends_at: 301_000,
    original_ends_at: 301_000,
    status: "open",
    price: 11000,
    leader: alice,
    bid_count: 2,
    seq: 3,
    min_bid: 12000,
    has_reserve: false,
    reserve_met: null,
    buy_now: null,
    buy_now_available: false,
    closing: null,
    ...over,
  };
}

function bid(seq: number, bidder = alice, amount = 10000 + seq * 1000): BidView {
  return { seq, bidder, amount, kind: "bid", at: 1000 + seq };
}

function update(seq: number, over: Partial<Update> = {}): Update {
  return { auction_id: "cam", seq, event: "bid", ...over };
}

function snap(s: RoomState, a = view(), recent = [bid(3), bid(2, bob)], resync = false): RoomState {
  return roomReducer(s, { type: "snapshot", auction: a, recent_bids: recent, resync });
}

describe("roomReducer", () => {
  it("takes the snapshot as the state", () => {
    const s = snap(initialRoom("cam", "u-bob"));
    expect(s.auction?.price).toBe(11000);
    expect(s.bids.map((b) => b.seq)).toEqual([3, 2]);
    expect(s.gapSince).toBeNull();
    // Bob bid before (seq 2) and Alice leads: Bob has been outbid.
    expect(s.leaderNotice).toBe("outbid");
  });

  it("ignores snapshots of other auctions and updates before any snapshot", () => {
    const s0 = initialRoom("cam", "u-bob");
    expect(roomReducer(s0, { type: "update", update: update(4, { price: 1 }) })).toBe(s0);
    expect(snap(s0, view({ id: "other" }))).toBe(s0);
  });

  it("applies the next delta and only the fields present", () => {
    let s = snap(initialRoom("cam", "u-bob"));
    s = roomReducer(s, {
      type: "update",
      update: update(4, { price: 12000, leader: bob, bid_count: 3, min_bid: 13000, bid: bid(4, bob, 12000) }),
    });
    expect(s.auction).toMatchObject({ seq: 4, price: 12000, leader: bob, bid_count: 3, min_bid: 13000 });
    expect(s.auction?.title).toBe("Vintage camera");
    expect(s.auction?.ends_at).toBe(301_000);
    expect(s.bids.map((b) => b.seq)).toEqual([4, 3, 2]);
    expect(s.leaderNotice).toBe("winning");
    // max_raised: only seq changes
    s = roomReducer(s, { type: "update", update: update(5, { event: "max_raised" }) });
    expect(s.auction).toMatchObject({ seq: 5, price: 12000, leader: bob });
  });

  it("ignores stale and duplicate updates", () => {
    const s = snap(initialRoom("cam", "u-bob"));
    expect(roomReducer(s, { type: "update", update: update(3, { price: 1 }) })).toBe(s);
    expect(roomReducer(s, { type: "update", update: update(2, { price: 1 }) })).toBe(s);
  });

  it("marks a gap instead of applying an update that skips seqs, then resyncs", () => {
    let s = snap(initialRoom("cam", "u-bob"));
    s = roomReducer(s, { type: "update", update: update(6, { price: 99000 }) });
    expect(s.auction?.seq).toBe(3);
    expect(s.auction?.price).toBe(11000);
    expect(s.gapSince).toBe(3); // resubscribe with since_seq 3
    // further out-of-order updates keep the first gap
    s = roomReducer(s, { type: "update", update: update(7, { price: 99999 }) });
    expect(s.gapSince).toBe(3);
    // the server replays 4, 5, 6, 7 in order
    for (const seq of [4, 5, 6, 7]) {
      s = roomReducer(s, {
        type: "update",
        update: update(seq, { price: 10000 + seq * 1000, bid: bid(seq, seq % 2 ? alice : bob) }),
      });
    }
    expect(s.gapSince).toBeNull();
    expect(s.auction).toMatchObject({ seq: 7, price: 17000 });
    expect(s.bids.map((b) => b.seq)).toEqual([7, 6, 5, 4, 3, 2]);
  });

  it("replaces everything with a resync snapshot", () => {
    let s = snap(initialRoom("cam", "u-bob"));
    s = roomReducer(s, { type: "update", update: update(9) });
    expect(s.gapSince).toBe(3);
    s = snap(s, view({ seq: 9, price: 18000, leader: bob }), [bid(9, bob, 18000), bid(8)], true);
    expect(s.gapSince).toBeNull();
    expect(s.auction?.seq).toBe(9);
    expect(s.bids.map((b) => b.seq)).toEqual([9, 8]);
    expect(s.leaderNotice).toBe("winning");
  });

  it("ignores a plain snapshot older than the state", () => {
    let s = snap(initialRoom("cam", "u-bob"));
    s = roomReducer(s, { type: "update", update: update(4, { price: 12000 }) });
    expect(snap(s, view({ seq: 3 }))).toBe(s);
  });

  it("records a soft-close extension", () => {
    let s = snap(initialRoom("cam", "u-bob"));
    s = roomReducer(s, { type: "update", update: update(4, { price: 12000, leader: bob, ends_at: 331_000 }) });
    expect(s.auction?.ends_at).toBe(331_000);
    expect(s.auction?.original_ends_at).toBe(301_000);
    expect(s.extension).toEqual({ from: 301_000, to: 331_000, seq: 4 });
  });

  it("tracks reserve, buy-now and opening changes", () => {
    let s = snap(initialRoom("cam", null), view({ status: "scheduled", seq: 1, has_reserve: true, reserve_met: false, buy_now: 50000, buy_now_available: true }));
    s = roomReducer(s, { type: "update", update: update(2, { event: "opened", status: "open" }) });
    expect(s.auction?.status).toBe("open");
    s = roomReducer(s, { type: "update", update: update(3, { price: 30000, reserve_met: true, buy_now_available: false }) });
    expect(s.auction).toMatchObject({ reserve_met: true, buy_now_available: false, price: 30000 });
  });

  it("announces when the user is outbid and when they lead again", () => {
    let s = snap(initialRoom("cam", "u-alice"));
    expect(s.leaderNotice).toBe("winning");
    const v1 = s.leaderNoticeVersion;
    s = roomReducer(s, { type: "update", update: update(4, { leader: bob, price: 12000 }) });
    expect(s.leaderNotice).toBe("outbid");
    expect(s.leaderNoticeVersion).toBe(v1 + 1);
    s = roomReducer(s, { type: "update", update: update(5, { leader: alice, price: 13000 }) });
    expect(s.leaderNotice).toBe("winning");
  });

  it("says nothing while nobody leads", () => {
    let s = snap(initialRoom("cam", "u-bob"), view({ leader: null, price: null, bid_count: 0, seq: 1 }), []);
    s = roomReducer(s, { type: "participated" });
    expect(s.leaderNotice).toBeNull();
  });

  it("says nothing about winning to a user who never bid, until they do", () => {
    let s = snap(initialRoom("cam", "u-carol"));
    expect(s.leaderNotice).toBeNull();
    s = roomReducer(s, { type: "participated" });
    expect(s.leaderNotice).toBe("outbid");
  });

  it("keeps the user's maximum until someone else leads", () => {
    let s = snap(initialRoom("cam", "u-alice"));
    s = roomReducer(s, { type: "your_max", amount: 50000 });
    expect(s.yourMax).toBe(50000);
    s = roomReducer(s, { type: "update", update: update(4, { event: "max_raised" }) });
    expect(s.yourMax).toBe(50000);
    s = roomReducer(s, { type: "update", update: update(5, { leader: bob, price: 51000 }) });
    expect(s.yourMax).toBeNull();
  });

  it("shows the close at once, even after a gap", () => {
    let s = snap(initialRoom("cam", "u-bob"));
    s = roomReducer(s, {
      type: "closed",
      closed: { auction_id: "cam", seq: 4, reason: "ended", winner: alice, final_price: 11000, closed_at: 301_000, bid_count: 2, reserve_met: null },
    });
    expect(s.auction?.status).toBe("closed");
    expect(s.auction?.closing).toEqual({ reason: "ended", closed_at: 301_000, winner: alice, final_price: 11000 });
    expect(s.needSnapshot).toBe(false);
    expect(s.leaderNotice).toBe("outbid");

    let g = snap(initialRoom("cam", "u-bob"));
    g = roomReducer(g, {
      type: "closed",
      closed: { auction_id: "cam", seq: 8, reason: "ended", winner: bob, final_price: 15000, closed_at: 301_000, bid_count: 6, reserve_met: null },
    });
    expect(g.auction).toMatchObject({ status: "closed", price: 15000, leader: bob, seq: 8 });
    expect(g.needSnapshot).toBe(true);
    expect(g.leaderNotice).toBe("winning");
    // a duplicate closed is ignored
    expect(
      roomReducer(g, {
        type: "closed",
        closed: { auction_id: "cam", seq: 8, reason: "ended", winner: bob, final_price: 15000, closed_at: 301_000, bid_count: 6, reserve_met: null },
      }),
    ).toBe(g);
  });

  it("shows a close with no winner (reserve not met)", () => {
    let s = snap(initialRoom("cam", "u-bob"), view({ has_reserve: true, reserve_met: false }));
    s = roomReducer(s, {
      type: "closed",
      closed: { auction_id: "cam", seq: 4, reason: "ended", winner: null, final_price: null, closed_at: 301_000, bid_count: 2, reserve_met: false },
    });
    expect(s.auction?.closing?.winner).toBeNull();
    expect(s.auction?.reserve_met).toBe(false);
  });

  it("counts watchers", () => {
    let s = snap(initialRoom("cam", "u-bob"));
    s = roomReducer(s, { type: "watchers", count: 12 });
    expect(s.watchers).toBe(12);
  });
});

describe("lobbyReducer", () => {
  const a = view({ id: "a", ends_at: 500_000 });
  const b = view({ id: "b", ends_at: 200_000, seq: 1, price: null, leader: null, bid_count: 0 });

  it("loads the list and applies deltas in order", () => {
    let s = lobbyReducer(initialLobby, { type: "lobby", auctions: [a, b] });
    expect(s.loaded).toBe(true);
    s = lobbyReducer(s, { type: "update", update: { auction_id: "b", seq: 2, event: "bid", price: 10000, leader: bob, bid_count: 1 } });
    expect(s.auctions.b).toMatchObject({ seq: 2, price: 10000, leader: bob, bid_count: 1 });
    // stale
    const same = lobbyReducer(s, { type: "update", update: { auction_id: "b", seq: 2, event: "bid", price: 1 } });
    expect(same).toBe(s);
    // gap → resubscribe to the lobby
    s = lobbyReducer(s, { type: "update", update: { auction_id: "a", seq: 5, event: "bid", price: 1 } });
    expect(s.gap).toBe(true);
    expect(s.auctions.a.price).toBe(11000);
    s = lobbyReducer(s, { type: "lobby", auctions: [view({ id: "a", seq: 5, price: 13000 }), b] });
    expect(s.gap).toBe(false);
    expect(s.auctions.a.price).toBe(13000);
  });

  it("adds created auctions and applies closes", () => {
    let s = lobbyReducer(initialLobby, { type: "lobby", auctions: [a] });
    s = lobbyReducer(s, { type: "created", auction: b });
    expect(Object.keys(s.auctions).sort()).toEqual(["a", "b"]);
    s = lobbyReducer(s, {
      type: "closed",
      closed: { auction_id: "a", seq: 4, reason: "cancelled", winner: null, final_price: null, closed_at: 9, bid_count: 2, reserve_met: null },
    });
    expect(s.auctions.a.status).toBe("closed");
    expect(s.auctions.a.closing?.reason).toBe("cancelled");
  });

  it("filters and sorts by end time", () => {
    const now = 100_000;
    const list = [
      view({ id: "late", ends_at: now + 3_600_000 }),
      view({ id: "soon", ends_at: now + 60_000 }),
      view({ id: "sched", status: "scheduled", starts_at: now + 1000, ends_at: now + 7_200_000 }),
      view({ id: "done", status: "closed", ends_at: now - 5 }),
    ];
    expect(filterAuctions(list, "all", now).map((x) => x.id)).toEqual(["done", "soon", "late", "sched"]);
    expect(filterAuctions(list, "all", now, "ends_desc").map((x) => x.id)).toEqual(["sched", "late", "soon", "done"]);
    expect(filterAuctions(list, "open", now).map((x) => x.id)).toEqual(["soon", "late"]);
    expect(filterAuctions(list, "ending", now).map((x) => x.id)).toEqual(["soon"]);
    expect(filterAuctions(list, "scheduled", now).map((x) => x.id)).toEqual(["sched"]);
    expect(filterAuctions(list, "closed", now).map((x) => x.id)).toEqual(["done"]);
    // a scheduled auction whose start passed counts as open by the server clock
    expect(filterAuctions(list, "open", now + 2000).map((x) => x.id)).toContain("sched");
  });
});

describe("what the room claims while not live", () => {
  const liveSnap = (s: RoomState, a = view({ leader: bob })) =>
    roomReducer(s, { type: "snapshot", auction: a, recent_bids: [bid(3, bob), bid(2)], resync: false, live: true });

  it("never says 'winning' from a state the connection has not confirmed", () => {
    let s = liveSnap(initialRoom("cam", "u-bob"));
    expect(isConfirmed(s)).toBe(true);
    expect(standing(s)).toBe("winning");
    s = roomReducer(s, { type: "unconfirmed" });
    expect(isConfirmed(s)).toBe(false);
    expect(standing(s)).toBe("unconfirmed");
    // The barrier's pong confirms it again.
    s = roomReducer(s, { type: "confirmed" });
    expect(standing(s)).toBe("winning");
  });

  it("is not confirmed by an HTTP snapshot, nor while a gap is open", () => {
    let s = snap(initialRoom("cam", "u-bob"), view({ leader: bob }), [bid(3, bob)]);
    expect(s.live).toBe(false);
    expect(standing(s)).toBe("unconfirmed");
    s = liveSnap(s, view({ leader: bob }));
    expect(standing(s)).toBe("winning");
    s = roomReducer(s, { type: "update", update: update(6, { price: 99000 }) });
    expect(standing(s)).toBe("unconfirmed");
    for (const seq of [4, 5, 6]) s = roomReducer(s, { type: "update", update: update(seq) });
    expect(standing(s)).toBe("winning");
  });

  it("keeps a close final whatever the connection", () => {
    let s = liveSnap(initialRoom("cam", "u-bob"));
    s = roomReducer(s, {
      type: "closed",
      closed: { auction_id: "cam", seq: 4, reason: "ended", winner: bob, final_price: 11000, closed_at: 9, bid_count: 2, reserve_met: null },
    });
    s = roomReducer(s, { type: "unconfirmed" });
    expect(standing(s)).toBe("won");
  });

  it("says nothing to a user who never bid, and forgets the standing when the user changes", () => {
    let s = liveSnap(initialRoom("cam", "u-carol"));
    expect(standing(s)).toBeNull();
    s = roomReducer(s, { type: "me", me: "u-bob" });
    expect(standing(s)).toBe("winning");
    s = roomReducer(s, { type: "me", me: null });
    expect(standing(s)).toBeNull();
  });
});

describe("history pages", () => {
  it("asks for older bids before the oldest one held, until the count is reached or the pages end", () => {
    let s = snap(initialRoom("cam", null), view({ bid_count: 5, seq: 6 }), [bid(6), bid(5), bid(4)]);
    expect(olderCursor(s)).toBe(4);
    s = roomReducer(s, { type: "older", bids: [bid(3), bid(2)], next_before_seq: null });
    expect(s.bids.map((b) => b.seq)).toEqual([6, 5, 4, 3, 2]);
    expect(olderCursor(s)).toBeNull();
    // A page that ends early (next_before_seq null) ends the paging even below the count.
    let t = snap(initialRoom("cam", null), view({ bid_count: 9, seq: 10 }), [bid(10)]);
    t = roomReducer(t, { type: "older", bids: [bid(9)], next_before_seq: null });
    expect(olderCursor(t)).toBeNull();
  });
});

describe("lobbySections", () => {
  it("lists open auctions by end, then upcoming by start, and ended ones apart, most recent first", () => {
    const now = 100_000;
    const list = [
      view({ id: "closed-old", status: "closed", ends_at: 50_000, closing: { reason: "ended", closed_at: 50_000, winner: null, final_price: null } }),
      view({ id: "closed-new", status: "closed", ends_at: 60_000, closing: { reason: "ended", closed_at: 90_000, winner: null, final_price: null } }),
      view({ id: "later", ends_at: 900_000 }),
      view({ id: "sooner", ends_at: 200_000 }),
      view({ id: "sched-b", status: "scheduled", starts_at: 500_000, ends_at: 600_000 }),
      view({ id: "sched-a", status: "scheduled", starts_at: 300_000, ends_at: 2_000_000 }),
    ];
    const s = lobbySections(list, "all", now);
    expect(s.live.map((a) => a.id)).toEqual(["sooner", "later", "sched-a", "sched-b"]);
    expect(s.ended.map((a) => a.id)).toEqual(["closed-new", "closed-old"]);
    expect(lobbySections(list, "all", now, "ends_desc").live.map((a) => a.id)).toEqual(["later", "sooner", "sched-a", "sched-b"]);
    expect(lobbySections(list, "closed", now).live).toEqual([]);
    expect(lobbySections(list.slice(0, 2), "all", now).live).toEqual([]);
  });
});
