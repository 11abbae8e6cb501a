// Wire types of the Gavel protocol (docs/protocol.md; Rust: crates/gavel-protocol).
// Money is integer minor units; times are server UTC milliseconds.

export interface UserRef {
  id: string;
  name: string;
}

export interface UserView extends UserRef {
  role: string; // "bidder" | "admin"
}

export interface ClosingView {
  reason: string; // ended | buy_now | ended_early | cancelled
  closed_at: number;
  winner: UserRef | null;
  final_price: number | null;
}

export interface IncrementBand {
  from: number;
  increment: number;
}

export interface SoftClose {
  window_ms: number;
  extend_ms: number;
  max_extension_ms?: number | null;
}

export type AuctionStatus = "scheduled" | "open" | "closed";

export interface AuctionView {
  id: string;
  title: string;
  description: string;
  currency: string;
  starting_price: number;
  increment: number;
  increment_table?: IncrementBand[] | null;
  starts_at: number;
  ends_at: number;
  original_ends_at: number;
  status: AuctionStatus | string;
  price: number | null;
  leader: UserRef | null;
  bid_count: number;
  seq: number;
  min_bid: number;
  has_reserve: boolean;
  reserve_met: boolean | null;
  buy_now: number | null;
  buy_now_available: boolean;
  soft_close?: SoftClose | null;
  closing: ClosingView | null;
  your_max?: number | null;
}

export interface BidView {
  seq: number;
  bidder: UserRef;
  amount: number;
  kind: string; // bid | auto | buy_now
  at: number;
}

export interface Update {
  auction_id: string;
  seq: number;
  event: string; // bid | max_raised | opened
  price?: number;
  leader?: UserRef;
  bid_count?: number;
  min_bid?: number;
  ends_at?: number;
  status?: string;
  reserve_met?: boolean;
  buy_now_available?: boolean;
  bid?: BidView;
  /** The authority's time of the change (server ms): delivery latency is measured from it. */
  decided_at?: number | null;
}

export interface Closed {
  auction_id: string;
  seq: number;
  reason: string;
  winner: UserRef | null;
  final_price: number | null;
  closed_at: number;
  bid_count: number;
  reserve_met: boolean | null;
}

export type BidOutcome =
  | "accepted"
  | "outbid"
  | "stale"
  | "already_leading"
  | "not_open"
  | "closed"
  | "buy_now_unavailable"
  | "buy_now_price"
  | "max_not_raised"
  | "not_found";

export interface BidResult {
  request_id: string;
  auction_id: string;
  outcome: BidOutcome | string;
  message: string;
  auction?: AuctionView | null;
}

export type BidKind = "plain" | "max" | "buy_now";

export interface Limits {
  max_message_bytes: number;
  max_subscriptions: number;
  bids_per_second: number;
}

export type ServerMessage =
  | {
      type: "hello";
      user: UserView | null;
      server_time: number;
      limits: Limits;
      /** The server sends some frame at least this often (ms); absent on older servers. */
      heartbeat_ms?: number;
    }
  | { type: "heartbeat"; server_time: number }
  | { type: "snapshot"; auction: AuctionView; server_time: number; recent_bids: BidView[]; resync: boolean }
  | ({ type: "update" } & Update)
  | ({ type: "bid_result" } & BidResult)
  | ({ type: "closed" } & Closed)
  | { type: "lobby"; auctions: AuctionView[]; server_time: number }
  | { type: "auction_created"; auction: AuctionView }
  | { type: "ok"; what: string }
  | { type: "error"; code: ErrorCode | string; message: string; request_id?: string; auction_id?: string }
  | { type: "pong"; client_time: number; server_time: number }
  | { type: "watchers"; auction_id: string; count: number };

export type ClientMessage =
  | { type: "auth"; token: string }
  | { type: "subscribe"; auction_id: string; since_seq?: number }
  | { type: "unsubscribe"; auction_id: string }
  | { type: "subscribe_lobby" }
  | { type: "unsubscribe_lobby" }
  | {
      type: "bid";
      auction_id: string;
      amount: number;
      request_id: string;
      expected_seq?: number;
      kind?: BidKind;
    }
  | { type: "ping"; client_time: number }
  | LatencyReport;

/** docs/protocol.md, `latency_report` (built by clients/typescript/src/latency.ts). */
export interface LatencyReport {
  type: "latency_report";
  clock_error_ms: number;
  auctions: { auction_id: string; counts: number[] }[];
}

/** One latency histogram of `GET /api/admin/latency`. */
export interface LatencyHistogram {
  counts: number[];
  count: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
}

export interface LatencyPair {
  server: LatencyHistogram;
  client: LatencyHistogram;
  reports: number;
  max_clock_error_ms: number;
}

/** `GET /api/admin/latency` (admin): delivery latency on the node that answered. */
export interface LatencyStats {
  bounds_ms: number[];
  overall: LatencyPair;
  auctions: { auction_id: string; watchers: number; latency: LatencyPair }[];
}

export interface Session {
  token: string;
  user: UserView;
  expires_at: number;
}

/**
 * The error codes the client acts on (docs/protocol.md, "Error codes"; Rust:
 * gavel_protocol::ErrorCode). Others are shown with the server's message.
 */
export type ErrorCode =
  | "unauthorized"
  | "token_expired"
  | "token_not_yet_valid"
  | "not_found"
  | "rate_limited"
  | "invalid_amount"
  | "admin_cannot_bid"
  /** Nothing was decided: a retry (any request id) is safe. */
  | "unavailable"
  /** The bid may have been decided: retry with the same request id to learn its outcome. */
  | "outcome_unknown";
