// One auction's live state, kept in `seq` order (docs/protocol.md, "update"):
// apply an update only when seq == mine + 1; ignore an older one; a higher one means
// something was missed: resubscribe with `since_seq` (the server replays what was missed,
// or sends a snapshot with `resync: true`). Pure: no socket, no timers.

import type { AuctionStateView, AuctionView, BidView, Closed, Update } from "./generated/protocol.js";

/** History entries kept (newest first). */
export const MAX_RECENT_BIDS = 200;

/** What applying a message did. */
export type FeedResult =
  /** The state changed. */
  | "applied"
  /** Old news (a seq already applied), or a message for another auction. */
  | "ignored"
  /** Updates were missed: resubscribe from `gapSince`. */
  | "gap"
  /** A close arrived after missed updates: it is applied, and a snapshot should follow. */
  | "closed_after_gap";

/** Applies the fields present in an update to a view (no seq checks here). */
export function applyUpdate(view: AuctionView, u: Update): AuctionView {
  const next: AuctionView = { ...view, seq: u.seq };
  if (u.price != null) next.price = u.price;
  if (u.leader != null) next.leader = u.leader;
  if (u.bid_count != null) next.bid_count = u.bid_count;
  if (u.min_bid != null) next.min_bid = u.min_bid;
  if (u.ends_at != null) next.ends_at = u.ends_at;
  if (u.status != null) next.status = u.status;
  if (u.reserve_met != null) next.reserve_met = u.reserve_met;
  if (u.buy_now_available != null) next.buy_now_available = u.buy_now_available;
  if (u.event === "opened" && u.status == null) next.status = "open";
  return next;
}

/** Applies a `closed` message to a view. */
export function applyClosed(view: AuctionView, c: Closed): AuctionView {
  return {
    ...view,
    seq: Math.max(view.seq, c.seq),
    status: "closed",
    bid_count: c.bid_count,
    reserve_met: c.reserve_met,
    buy_now_available: false,
    price: c.final_price ?? view.price,
    leader: c.winner ?? view.leader,
    closing: { reason: c.reason, closed_at: c.closed_at, winner: c.winner, final_price: c.final_price },
    // The final hash of the verifiable log, published with the close.
    ...(c.log_hash != null ? { log_hash: c.log_hash } : {}),
  };
}

function mergeBids(existing: BidView[], incoming: BidView[]): BidView[] {
  const bySeq = new Map<number, BidView>();
  for (const b of existing) bySeq.set(b.seq, b);
  for (const b of incoming) bySeq.set(b.seq, b);
  return [...bySeq.values()].sort((a, b) => b.seq - a.seq).slice(0, MAX_RECENT_BIDS);
}

/**
 * The full view a lean `bid_result` stands for: `held` (the view the client holds, which
 * supplies what never changes: title, description, settings) with `state` merged in.
 * `your_max` and `log_hash` come from `state` alone (absent there: absent).
 */
export function withState(held: AuctionView, state: AuctionStateView): AuctionView {
  const { your_max: _m, log_hash: _h, ...fixed } = held;
  return { ...fixed, ...state };
}

/** The seq-ordered state of one auction. */
export class AuctionFeed {
  auction: AuctionView | null = null;
  /** Newest first, unique by seq. */
  recentBids: BidView[] = [];
  watchers: number | null = null;
  /** The seq held when a gap was seen (resubscribe with `since_seq` = this); null when in sync. */
  gapSince: number | null = null;
  /** A full snapshot is wanted (a close arrived after a gap). */
  needSnapshot = false;

  constructor(readonly auctionId: string) {}

  /** The seq held, or null before the first snapshot. */
  get seq(): number | null {
    return this.auction?.seq ?? null;
  }

  /** In sync: a state, and no gap or snapshot outstanding. */
  get inSync(): boolean {
    return this.auction !== null && this.gapSince === null && !this.needSnapshot;
  }

  /** A `snapshot` (or an HTTP read, `resync` false): replaces the state unless it is older. */
  snapshot(auction: AuctionView, recentBids: BidView[], resync: boolean): FeedResult {
    if (auction.id !== this.auctionId) return "ignored";
    const cur = this.auction;
    // A plain snapshot older than what we hold (e.g. a late HTTP read) is old news.
    if (cur && !resync && auction.seq < cur.seq && this.inSync) return "ignored";
    this.recentBids = resync || !cur ? mergeBids([], recentBids) : mergeBids(this.recentBids, recentBids);
    this.auction = auction;
    this.gapSince = null;
    this.needSnapshot = false;
    return "applied";
  }

  update(u: Update): FeedResult {
    const cur = this.auction;
    if (u.auction_id !== this.auctionId || !cur) return "ignored";
    if (u.seq <= cur.seq) return "ignored";
    if (u.seq > cur.seq + 1) {
      if (this.gapSince === null) this.gapSince = cur.seq;
      return "gap";
    }
    this.auction = applyUpdate(cur, u);
    if (u.bid) this.recentBids = mergeBids(this.recentBids, [u.bid]);
    this.gapSince = null;
    return "applied";
  }

  closed(c: Closed): FeedResult {
    const cur = this.auction;
    if (c.auction_id !== this.auctionId || !cur) return "ignored";
    if (c.seq < cur.seq || (c.seq === cur.seq && cur.status === "closed")) return "ignored";
    // The close is final and complete: show it even after a gap, and ask for a snapshot for
    // the history that was skipped.
    const skipped = c.seq > cur.seq + 1;
    this.auction = applyClosed(cur, c);
    this.gapSince = null;
    if (skipped) this.needSnapshot = true;
    return skipped ? "closed_after_gap" : "applied";
  }

  setWatchers(count: number): FeedResult {
    if (this.watchers === count) return "ignored";
    this.watchers = count;
    return "applied";
  }
}
