// Pure state reducers for the auction room and the lobby.
//
// Rules (docs/protocol.md, "update"): apply an update only when seq == mine + 1; ignore
// older ones; a higher seq means something was missed → mark a gap so the client sends
// `subscribe` with `since_seq` (the room) or `subscribe_lobby` again (the lobby).

import { applyClosed as applyClosedFields, applyUpdate as applyUpdateFields, type AuctionView, type BidView, type Closed, type Update } from "@gavel/client";

/** History entries kept in the room (live ones and older pages the user loaded). */
export const MAX_BIDS = 2_000;

// ---------------------------------------------------------------- room

export interface Extension {
  from: number;
  to: number;
  seq: number;
}

export type LeaderNotice = "winning" | "outbid" | null;

export interface RoomState {
  auctionId: string;
  /** The signed-in user's id (to tell "winning" from "outbid"). */
  me: string | null;
  auction: AuctionView | null;
  /** Newest first, unique by seq. */
  bids: BidView[];
  watchers: number | null;
  /** The seq to resubscribe from when updates were missed; null when in sync. */
  gapSince: number | null;
  /** Set when a closed message skipped updates: ask for a full snapshot. */
  needSnapshot: boolean;
  /** The latest soft-close extension seen live. */
  extension: Extension | null;
  /** The user took part (bid) in this auction, so losing the lead is news. */
  participated: boolean;
  /** "winning"/"outbid" once the user took part; changes are announced. */
  leaderNotice: LeaderNotice;
  /** Increments when leaderNotice changes (to replay the highlight animation). */
  leaderNoticeVersion: number;
  /** The user's own proxy maximum, when they lead with one. */
  yourMax: number | null;
  /**
   * The state was confirmed on the current connection (a snapshot, or the answer to a ping
   * sent after resubscribing). False from a lost connection until that confirmation.
   */
  live: boolean;
  /** An older history page answered with no further page: everything is loaded. */
  olderExhausted: boolean;
}

/** What the room shows about the user's standing. */
export type Standing = "winning" | "outbid" | "won" | "lost" | "unconfirmed" | null;

export type RoomAction =
  | { type: "snapshot"; auction: AuctionView; recent_bids: BidView[]; resync: boolean; live?: boolean }
  | { type: "update"; update: Update }
  | { type: "closed"; closed: Closed }
  | { type: "watchers"; count: number }
  | { type: "participated" }
  | { type: "your_max"; amount: number | null }
  /** The connection was lost: what the room shows is the last known state. */
  | { type: "unconfirmed" }
  /** Everything sent before a barrier ping has arrived on the current connection. */
  | { type: "confirmed" }
  /** The signed-in user changed. */
  | { type: "me"; me: string | null }
  /** An older page of the history (GET .../bids?before_seq=). */
  | { type: "older"; bids: BidView[]; next_before_seq: number | null };

export function initialRoom(auctionId: string, me: string | null): RoomState {
  return {
    auctionId,
    me,
    auction: null,
    bids: [],
    watchers: null,
    gapSince: null,
    needSnapshot: false,
    extension: null,
    participated: false,
    leaderNotice: null,
    leaderNoticeVersion: 0,
    yourMax: null,
    live: false,
    olderExhausted: false,
  };
}

/** The room's state is confirmed live: synced on the current connection, no gap. */
export function isConfirmed(s: RoomState): boolean {
  return s.live && s.gapSince === null && !s.needSnapshot;
}

/** The standing shown to the user: never "winning" from a state that is not confirmed. */
export function standing(s: RoomState): Standing {
  const a = s.auction;
  if (!a || !s.me || !s.participated) return null;
  if (a.status === "closed") return a.closing?.winner?.id === s.me ? "won" : "lost";
  if (!isConfirmed(s)) return "unconfirmed";
  return s.leaderNotice;
}

/** The seq to ask older history from (before_seq), or null when it is all loaded. */
export function olderCursor(s: RoomState): number | null {
  const a = s.auction;
  if (!a || s.olderExhausted || s.bids.length === 0) return null;
  if (s.bids.length >= a.bid_count) return null;
  return s.bids[s.bids.length - 1].seq;
}

function mergeBids(existing: BidView[], incoming: BidView[]): BidView[] {
  const bySeq = new Map<number, BidView>();
  for (const b of existing) bySeq.set(b.seq, b);
  for (const b of incoming) bySeq.set(b.seq, b);
  return [...bySeq.values()].sort((a, b) => b.seq - a.seq).slice(0, MAX_BIDS);
}

function withLeaderNotice(s: RoomState): RoomState {
  const a = s.auction;
  if (!a || !s.me) return s;
  const participated =
    s.participated || a.leader?.id === s.me || s.bids.some((b) => b.bidder.id === s.me);
  let notice: LeaderNotice = null;
  // Nobody leads yet: nothing to win or lose.
  if (participated && a.status !== "closed" && a.leader) notice = a.leader.id === s.me ? "winning" : "outbid";
  if (participated && a.status === "closed") notice = a.closing?.winner?.id === s.me ? "winning" : "outbid";
  if (notice === s.leaderNotice && participated === s.participated) return s;
  return {
    ...s,
    participated,
    leaderNotice: notice,
    leaderNoticeVersion: notice === s.leaderNotice ? s.leaderNoticeVersion : s.leaderNoticeVersion + 1,
  };
}

export function roomReducer(s: RoomState, action: RoomAction): RoomState {
  switch (action.type) {
    case "snapshot": {
      const a = action.auction;
      if (a.id !== s.auctionId) return s;
      // A plain snapshot older than what we hold is late news: keep ours.
      if (s.auction && !action.resync && a.seq < s.auction.seq && !s.needSnapshot && s.gapSince === null) {
        return s;
      }
      const bids = action.resync || !s.auction ? mergeBids([], action.recent_bids) : mergeBids(s.bids, action.recent_bids);
      let extension = s.extension;
      if (s.auction && a.ends_at > s.auction.ends_at && s.auction.status !== "closed") {
        extension = { from: s.auction.ends_at, to: a.ends_at, seq: a.seq };
      }
      const yourMax = a.your_max ?? (a.leader?.id === s.me ? s.yourMax : null);
      return withLeaderNotice({
        ...s,
        auction: a,
        bids,
        gapSince: null,
        needSnapshot: false,
        extension,
        yourMax,
        live: action.live ?? s.live,
        olderExhausted: action.resync ? false : s.olderExhausted,
      });
    }
    case "update": {
      const u = action.update;
      if (u.auction_id !== s.auctionId || !s.auction) return s;
      const cur = s.auction.seq;
      if (u.seq <= cur) return s; // already applied (or older): ignore
      if (u.seq > cur + 1) {
        // Missed something: keep the state, ask for what was missed from the seq we hold.
        return s.gapSince === null ? { ...s, gapSince: cur } : s;
      }
      const next = applyUpdateFields(s.auction, u);
      let extension = s.extension;
      if (u.ends_at != null && u.ends_at > s.auction.ends_at) {
        extension = { from: s.auction.ends_at, to: u.ends_at, seq: u.seq };
      }
      const bids = u.bid ? mergeBids(s.bids, [u.bid]) : s.bids;
      // Someone else took the lead: the user's maximum was used up.
      const yourMax = u.leader != null && u.leader.id !== s.me ? null : s.yourMax;
      return withLeaderNotice({ ...s, auction: next, bids, extension, gapSince: null, yourMax });
    }
    case "closed": {
      const c = action.closed;
      if (c.auction_id !== s.auctionId || !s.auction) return s;
      if (c.seq <= s.auction.seq && s.auction.status === "closed") return s;
      if (c.seq < s.auction.seq) return s;
      // The close is final and complete: show it at once even after a gap, and fetch a
      // fresh snapshot for the history if updates were skipped.
      const skipped = c.seq > s.auction.seq + 1;
      return withLeaderNotice({
        ...s,
        auction: applyClosedFields(s.auction, c),
        needSnapshot: skipped || s.needSnapshot,
        gapSince: null,
      });
    }
    case "watchers":
      return s.watchers === action.count ? s : { ...s, watchers: action.count };
    case "participated":
      return s.participated ? s : withLeaderNotice({ ...s, participated: true });
    case "your_max":
      // The bid result is the authority on the user's own maximum.
      return withLeaderNotice({ ...s, yourMax: action.amount, participated: true });
    case "unconfirmed":
      return s.live ? { ...s, live: false } : s;
    case "confirmed":
      return s.live || !s.auction ? s : { ...s, live: true };
    case "me":
      if (action.me === s.me) return s;
      return withLeaderNotice({ ...s, me: action.me, participated: false, leaderNotice: null, yourMax: null });
    case "older": {
      if (!s.auction) return s;
      const bids = mergeBids(s.bids, action.bids);
      return { ...s, bids, olderExhausted: action.next_before_seq === null };
    }
  }
}

// ---------------------------------------------------------------- lobby

export interface LobbyState {
  auctions: Record<string, AuctionView>;
  loaded: boolean;
  /** Set when an update arrived out of order: subscribe to the lobby again. */
  gap: boolean;
}

export type LobbyAction =
  | { type: "lobby"; auctions: AuctionView[] }
  | { type: "update"; update: Update }
  | { type: "closed"; closed: Closed }
  | { type: "created"; auction: AuctionView }
  | { type: "view"; auction: AuctionView };

export const initialLobby: LobbyState = { auctions: {}, loaded: false, gap: false };

export function lobbyReducer(s: LobbyState, action: LobbyAction): LobbyState {
  switch (action.type) {
    case "lobby": {
      const auctions: Record<string, AuctionView> = {};
      for (const a of action.auctions) auctions[a.id] = a;
      return { auctions, loaded: true, gap: false };
    }
    case "update": {
      const u = action.update;
      const cur = s.auctions[u.auction_id];
      if (!cur) return s.loaded && !s.gap ? { ...s, gap: true } : s;
      if (u.seq <= cur.seq) return s;
      if (u.seq > cur.seq + 1) return s.gap ? s : { ...s, gap: true };
      return { ...s, auctions: { ...s.auctions, [cur.id]: applyUpdateFields(cur, u) } };
    }
    case "closed": {
      const c = action.closed;
      const cur = s.auctions[c.auction_id];
      if (!cur) return s.loaded && !s.gap ? { ...s, gap: true } : s;
      if (c.seq < cur.seq || (c.seq === cur.seq && cur.status === "closed")) return s;
      return { ...s, auctions: { ...s.auctions, [cur.id]: applyClosedFields(cur, c) } };
    }
    case "created":
    case "view": {
      const a = action.auction;
      const cur = s.auctions[a.id];
      if (cur && cur.seq > a.seq) return s;
      return { ...s, auctions: { ...s.auctions, [a.id]: a } };
    }
  }
}

// ---------------------------------------------------------------- lobby views

export type LobbyFilter = "all" | "open" | "ending" | "scheduled" | "closed";

/** "Ending soon": open and ending within this many ms. */
export const ENDING_SOON_MS = 10 * 60_000;

/** Status by the server clock (an open auction past its end is shown as closing). */
export function effectiveStatus(a: AuctionView, serverNow: number): string {
  if (a.status === "closed") return "closed";
  if (a.status === "scheduled" && serverNow >= a.starts_at) return "open";
  return a.status;
}

export function filterAuctions(
  list: AuctionView[],
  filter: LobbyFilter,
  serverNow: number,
  sort: "ends_asc" | "ends_desc" = "ends_asc",
): AuctionView[] {
  const out = list.filter((a) => {
    const st = effectiveStatus(a, serverNow);
    switch (filter) {
      case "all":
        return true;
      case "open":
        return st === "open";
      case "ending":
        return st === "open" && a.ends_at - serverNow <= ENDING_SOON_MS;
      case "scheduled":
        return st === "scheduled";
      case "closed":
        return st === "closed";
    }
  });
  out.sort((a, b) => {
    const d = a.ends_at - b.ends_at || a.id.localeCompare(b.id);
    return sort === "ends_asc" ? d : -d;
  });
  return out;
}

export interface LobbySections {
  /** Open auctions (by end time), then scheduled ones (by start time). */
  live: AuctionView[];
  /** Closed auctions, the most recently closed first. */
  ended: AuctionView[];
}

/**
 * The lobby's two sections after a filter: what can be bid on now or soon comes first;
 * ended auctions are listed apart, below.
 */
export function lobbySections(
  list: AuctionView[],
  filter: LobbyFilter,
  serverNow: number,
  sort: "ends_asc" | "ends_desc" = "ends_asc",
): LobbySections {
  const filtered = filterAuctions(list, filter, serverNow, sort);
  const open = filtered.filter((a) => effectiveStatus(a, serverNow) === "open");
  const scheduled = filtered
    .filter((a) => effectiveStatus(a, serverNow) === "scheduled")
    .sort((a, b) => a.starts_at - b.starts_at || a.id.localeCompare(b.id));
  const ended = filtered
    .filter((a) => effectiveStatus(a, serverNow) === "closed")
    .sort((a, b) => (b.closing?.closed_at ?? b.ends_at) - (a.closing?.closed_at ?? a.ends_at) || a.id.localeCompare(b.id));
  return { live: [...open, ...scheduled], ended };
}
