// The HTTP API (docs/protocol.md, "HTTP"): one method per route of the OpenAPI document
// (`GET /api/openapi.json`). Every error body is {"error": {"code", "message"}} and becomes
// a GavelError with that code and the HTTP status.

import { backoffDelay } from "./backoff.js";
import { GavelError } from "./errors.js";
import type {
  AuctionList,
  AuctionStatus,
  AuctionView,
  BidHistory,
  BidResult,
  CategoryList,
  CreateAuction,
  KeysResponse,
  LatencyStats,
  LogPage,
  PlaceBid,
  SearchResults,
  SessionResponse,
  TimeResponse,
  UserView,
} from "./generated/protocol.js";

/** The parameters of `GET /api/search` (docs/protocol.md); each one narrows the result. */
export interface SearchParams {
  /** Words of the title or description (prefixes, all required). */
  q?: string;
  category?: string;
  status?: "any" | "live" | "scheduled" | "open" | "closed";
  /** Current price bounds, minor units. */
  minPrice?: number;
  maxPrice?: number;
  endingWithinMs?: number;
  sort?: "ending" | "newest" | "price_asc" | "price_desc";
  limit?: number;
  /** The previous page's `next_offset`. */
  offset?: number;
}

export interface HttpOptions {
  /** The server's base URL, e.g. `https://auctions.example.com` ("" for the page's own origin). */
  baseUrl: string;
  /** The bearer token for a request, or null (read for every request). */
  token?: () => string | null;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** Per-request timeout (ms). */
  timeoutMs?: number;
}

export interface BidRetryOptions {
  /** Keep retrying an unanswered or `outcome_unknown` bid for this long (ms). */
  retryForMs?: number;
  /** Sleep function (tests). */
  sleep?: (ms: number) => Promise<void>;
}

/** A request id: 1–64 of `A-Za-z0-9-_.:` (random, unique enough per bidder). */
export function newRequestId(prefix = "c"): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  const rand = c?.randomUUID ? c.randomUUID().replace(/-/g, "") : `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
  return `${prefix}-${rand}`.slice(0, 64);
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class HttpApi {
  private readonly base: string;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly opts: HttpOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, "");
    this.fetchFn = opts.fetch ?? ((...a) => globalThis.fetch(...a));
  }

  /** Sends a request; resolves with the status and parsed body of any answer. */
  async raw(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; data: unknown }> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const bearer = token === undefined ? (this.opts.token?.() ?? null) : token;
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const timeoutMs = this.opts.timeoutMs ?? 10_000;
    const ctrl = typeof AbortController !== "undefined" ? new AbortController() : null;
    const timer = ctrl ? setTimeout(() => ctrl.abort(), timeoutMs) : null;
    let res: Response;
    try {
      res = await this.fetchFn(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctrl?.signal,
      });
    } catch (e) {
      const aborted = ctrl?.signal.aborted;
      throw new GavelError(
        aborted ? "timeout" : "network",
        aborted ? `no answer from ${method} ${path} within ${timeoutMs} ms` : `cannot reach the server: ${String(e)}`,
      );
    } finally {
      if (timer) clearTimeout(timer);
    }
    const text = await res.text();
    let data: unknown = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    return { status: res.status, data };
  }

  private async call<T>(method: string, path: string, body?: unknown, token?: string | null): Promise<T> {
    const { status, data } = await this.raw(method, path, body, token);
    if (status < 200 || status >= 300) throw errorFrom(status, data);
    return data as T;
  }

  /** `POST /api/session`: a guest session (or an admin one with `adminToken`). */
  createSession(name: string, adminToken?: string): Promise<SessionResponse> {
    return this.call("POST", "/api/session", adminToken ? { name, admin_token: adminToken } : { name }, null);
  }

  /** `POST /api/session/refresh`: a new token for a still valid session token. */
  refreshSession(token: string): Promise<SessionResponse> {
    return this.call("POST", "/api/session/refresh", undefined, token);
  }

  /** `GET /api/me`. */
  me(): Promise<UserView> {
    return this.call("GET", "/api/me");
  }

  /** `GET /api/time`. */
  time(): Promise<TimeResponse> {
    return this.call("GET", "/api/time", undefined, null);
  }

  /** `GET /api/auctions`, sorted by end time. */
  listAuctions(status?: AuctionStatus): Promise<AuctionList> {
    return this.call("GET", `/api/auctions${status ? `?status=${encodeURIComponent(status)}` : ""}`, undefined, null);
  }

  /** `GET /api/search`: a page of the auctions a search finds (the archive's indexes). */
  search(p: SearchParams = {}): Promise<SearchResults> {
    const q = new URLSearchParams();
    const set = (k: string, v: string | number | undefined) => {
      if (v !== undefined && v !== "") q.set(k, String(v));
    };
    set("q", p.q?.trim());
    set("category", p.category);
    set("status", p.status);
    set("min_price", p.minPrice);
    set("max_price", p.maxPrice);
    set("ending_within_ms", p.endingWithinMs);
    set("sort", p.sort);
    set("limit", p.limit);
    set("offset", p.offset);
    const qs = q.toString();
    return this.call("GET", `/api/search${qs ? `?${qs}` : ""}`, undefined, null);
  }

  /** `GET /api/categories`: the categories of auctions not closed yet, with counts. */
  categories(): Promise<CategoryList> {
    return this.call("GET", "/api/categories", undefined, null);
  }

  /** `GET /api/auctions/{id}`. */
  getAuction(id: string): Promise<AuctionView> {
    return this.call("GET", `/api/auctions/${encodeURIComponent(id)}`, undefined, null);
  }

  /** `GET /api/auctions/{id}/bids`, newest first; pass `next_before_seq` as `beforeSeq` for the next page. */
  bids(id: string, page: { limit?: number; beforeSeq?: number } = {}): Promise<BidHistory> {
    const q = new URLSearchParams();
    if (page.limit !== undefined) q.set("limit", String(page.limit));
    if (page.beforeSeq !== undefined) q.set("before_seq", String(page.beforeSeq));
    const qs = q.toString();
    return this.call("GET", `/api/auctions/${encodeURIComponent(id)}/bids${qs ? `?${qs}` : ""}`, undefined, null);
  }

  /** `GET /api/auctions/{id}/log`: entries with `seq > afterSeq`, oldest first, and the signed head
   *  (`fetchLog` gets them all). */
  log(id: string, page: { afterSeq?: number; limit?: number } = {}): Promise<LogPage> {
    const q = new URLSearchParams();
    if (page.afterSeq !== undefined) q.set("after_seq", String(page.afterSeq));
    if (page.limit !== undefined) q.set("limit", String(page.limit));
    const qs = q.toString();
    return this.call("GET", `/api/auctions/${encodeURIComponent(id)}/log${qs ? `?${qs}` : ""}`, undefined, null);
  }

  /** `GET /api/keys`: the public keys receipts and log heads are signed with. */
  keys(): Promise<KeysResponse> {
    return this.call("GET", "/api/keys", undefined, null);
  }

  /** `POST /api/auctions` (admin). */
  createAuction(body: CreateAuction): Promise<AuctionView> {
    return this.call("POST", "/api/auctions", body);
  }

  /** `POST /api/auctions/{id}/cancel` (admin). */
  cancelAuction(id: string, reason?: string): Promise<AuctionView> {
    return this.call("POST", `/api/auctions/${encodeURIComponent(id)}/cancel`, reason ? { reason } : {});
  }

  /** `POST /api/auctions/{id}/end` (admin): end early. */
  endAuction(id: string, reason?: string): Promise<AuctionView> {
    return this.call("POST", `/api/auctions/${encodeURIComponent(id)}/end`, reason ? { reason } : {});
  }

  /** `GET /api/admin/latency` (admin): delivery latency on the node that answers, overall
   *  and for its `limit` (1–100) most watched auctions. */
  deliveryLatency(limit = 10): Promise<LatencyStats> {
    return this.call("GET", `/api/admin/latency?limit=${limit}`);
  }

  /**
   * `POST /api/auctions/{id}/bids`: resolves with the decision (accepted or a rejection such
   * as `outbid` or `stale`: check `outcome`). A bid whose answer was lost (a network error, a
   * timeout, `503 outcome_unknown`) or refused with `503 unavailable` is sent again with the
   * **same** `request_id` until `retryForMs` runs out: the server never places it twice and
   * answers a repeat with the first decision. Other errors reject with a GavelError.
   */
  async placeBid(auctionId: string, bid: PlaceBid, retry: BidRetryOptions = {}): Promise<BidResult> {
    const retryFor = retry.retryForMs ?? 30_000;
    const sleep = retry.sleep ?? sleepMs;
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      let failure: GavelError;
      try {
        const { status, data } = await this.raw("POST", `/api/auctions/${encodeURIComponent(auctionId)}/bids`, bid);
        if (isBidResult(data)) return data;
        failure = errorFrom(status, data, bid.request_id);
      } catch (e) {
        if (!(e instanceof GavelError)) throw e;
        failure = new GavelError(e.code, e.message, e.status, bid.request_id);
      }
      const retriable = ["network", "timeout", "outcome_unknown", "unavailable"].includes(failure.code);
      if (!retriable || Date.now() - started >= retryFor) throw failure;
      await sleep(backoffDelay(attempt, { baseMs: 200, maxMs: 3_000 }));
    }
  }
}

function isBidResult(data: unknown): data is BidResult {
  return typeof data === "object" && data !== null && "outcome" in data && "request_id" in data;
}

/** The GavelError for an HTTP error answer. */
export function errorFrom(status: number, data: unknown, requestId?: string): GavelError {
  const err = (data as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof err?.code === "string" ? err.code : `http_${status}`;
  const message = typeof err?.message === "string" ? err.message : `the server answered ${status}`;
  return new GavelError(code, message, status, requestId);
}
