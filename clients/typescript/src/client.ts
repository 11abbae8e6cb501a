// The live client: a session (guest sign-in or an external token, refreshed before it
// expires), one WebSocket kept alive, auctions watched in `seq` order with resync, the
// server's clock, and bids that are answered exactly once however often they are re-sent.
//
// Guarantees it keeps (docs/integration.md, "The TypeScript client"):
// - A watched auction's state only moves by whole steps: an update is applied when its seq
//   is the next one; a gap or a reconnect resubscribes with `since_seq` (the server replays
//   what was missed, or sends a snapshot with `resync: true`).
// - A bid keeps its `request_id` for its whole life: re-sent after a reconnect, after
//   `outcome_unknown`, after a fresh token, and when unanswered. The server answers a repeat
//   with the first decision, so a bid is never placed twice; the promise settles once.
// - `unavailable` (nothing decided) and other refusals reject the bid's promise with a
//   GavelError carrying the code; the caller decides whether to bid again.

import type { LatencyReportMessage } from "./latency.js";
import type { BackoffOptions } from "./backoff.js";
import { ClockEstimator } from "./clock.js";
import { LatencyRecorder } from "./latency.js";
import { GavelError } from "./errors.js";
import { AuctionFeed, applyClosed, applyUpdate, withState } from "./feed.js";
import type {
  AuctionView,
  BidKind,
  BidResult,
  BidView,
  ClientMessage,
  ServerMessage,
  SessionResponse,
  UserView,
} from "./generated/protocol.js";
import { HttpApi, newRequestId } from "./http.js";
import { LiveSocket, type Hello, type SocketFactory, type SocketInfo, type SocketLike } from "./socket.js";

/** A token, or a function giving the current one (called again when the server refuses it). */
export type TokenSource = string | (() => string | null | Promise<string | null>);

export interface GavelClientOptions {
  /** The server, e.g. `https://auctions.example.com` ("" in a page served by Gavel). */
  baseUrl: string;
  /** The WebSocket URL (default: `baseUrl` with ws(s):// and `/ws`). */
  wsUrl?: string;
  /** An external token (the marketplace's JWT, or the admin token) instead of a guest sign-in. */
  token?: TokenSource;
  /** The WebSocket class (default: the global `WebSocket`; in Node 20 pass the `ws` package's). */
  WebSocket?: new (url: string) => unknown;
  /** Or a function opening a socket (tests, custom transports); wins over `WebSocket`. */
  socketFactory?: SocketFactory;
  /** The fetch implementation (default: the global `fetch`). */
  fetch?: typeof fetch;
  reconnect?: BackoffOptions;
  /** Clock sync: pings per burst, their spacing, and how often a burst is repeated (ms). */
  clock?: { pings?: number; spacingMs?: number; refreshMs?: number };
  /** How often the delivery-latency report goes to the server (ms; default 30 000, 0: never;
   *  the server refuses reports less than 10 s apart). docs/protocol.md, `latency_report`. */
  latencyReportMs?: number;
  bids?: {
    /** Re-send an unanswered bid (same request_id) after this long (ms). */
    resendAfterMs?: number;
    /** Ask again about an `outcome_unknown` bid after this long (ms). */
    unknownRetryMs?: number;
    /** Give up on an unanswered bid after this long: it rejects with `outcome_unknown` (ms). */
    giveUpAfterMs?: number;
    /**
     * A bid answered `unauthorized` while the client has a session (it reached a socket whose
     * token had just run out, or was not accepted): nothing was decided. true: hold it
     * (`queued`), renew the token and send it again with the same request_id, as after
     * `token_expired`. Default false: the bid rejects with `unauthorized`.
     */
    holdOnUnauthorized?: boolean;
  };
  /**
   * A watched auction still open this long past its `ends_at` (server clock) is asked about
   * again (resubscribed from the seq held), in case its `closed` was lost (ms; default 0: never).
   */
  overdueCloseMs?: number;
  /** Whether the network is up (default: `navigator.onLine`); see LiveSocketOptions.online. */
  online?: () => boolean;
  /** Heartbeat interval assumed against a server that sends none (ms). */
  fallbackHeartbeatMs?: number;
  /** A socket that has not said hello within this is given up (ms). */
  helloTimeoutMs?: number;
  /**
   * After a server's `reconnect` (a rolling restart), how long the move to a new connection
   * may take, past the delay it gave, before the status shows `reconnecting` (ms, default
   * 3,000). Until then the status stays `open` and watches stay live.
   */
  quietReconnectMs?: number;
  /** Local clock (tests). */
  now?: () => number;
  /**
   * A session to start with, e.g. a Gavel guest session kept by the page across reloads
   * (`kind: "gavel"`: renewed with POST /api/session/refresh). Wins over `token`. Keep it
   * up to date from the `session` event.
   */
  session?: Session;
}

/** Who the client acts as. */
export interface Session {
  token: string;
  /** From the sign-in, or from the server's `hello` for an external token. */
  user: UserView | null;
  /** Server time the token expires (ms), when known. */
  expiresAt: number | null;
  /** `gavel`: a Gavel session (refreshed with POST /api/session/refresh); `external`: from `token`. */
  kind: "gavel" | "external";
}

/** A watched auction as the client holds it. */
export interface AuctionState {
  auction: AuctionView;
  /** Newest first. */
  recentBids: BidView[];
  watchers: number | null;
  /**
   * Confirmed on the current connection (a snapshot, or the answer to a ping sent after
   * resubscribing): false from a lost connection until then. Show "reconnecting" meanwhile.
   */
  live: boolean;
}

export interface AuctionWatch {
  readonly auctionId: string;
  /** The current state (null before the first snapshot). */
  readonly state: AuctionState | null;
  /** Resolves with the first state. */
  ready(): Promise<AuctionState>;
  close(): void;
}

export interface LobbyWatch {
  /** Every auction, sorted by end time. */
  readonly auctions: AuctionView[];
  close(): void;
}

export interface BidOptions {
  kind?: BidKind;
  /** Only valid if the auction is still at this seq (else `stale`). */
  expectedSeq?: number;
  /** Reuse to ask again about an earlier bid (e.g. after the promise gave up). */
  requestId?: string;
}

/**
 * Where a bid is in its life (the `bid` event, `bidStatus`):
 * - `queued`: not on the wire yet (no connection, or waiting for a fresh token);
 * - `sent`: sent, no answer yet (re-sent with the same request_id when needed);
 * - `uncertain`: the server answered `outcome_unknown`: it may have been decided; it is asked
 *   again with the same request_id until the real answer comes (never shown as lost or placed);
 * - `answered`: a `bid_result` (`result`); `failed`: refused or given up (`error`).
 * `answered` and `failed` are final.
 */
export type BidState = "queued" | "sent" | "uncertain" | "answered" | "failed";

export interface BidStatus {
  requestId: string;
  auctionId: string;
  amount: number;
  kind: BidKind;
  expectedSeq?: number;
  state: BidState;
  result?: BidResult;
  error?: GavelError;
  /** Local time of the `bid` call, and of the last send (0: never sent). */
  firstAt: number;
  sentAt: number;
}

export interface ClientEvents {
  status: SocketInfo;
  hello: Hello;
  /** The session changed (null: it ended and could not be renewed). */
  session: Session | null;
  /** A server error not tied to a bid (`not_found` for a watched auction, `rate_limited`, ...). */
  error: GavelError;
  /** Every server message, as received. */
  message: ServerMessage;
  clock: { offset: number | null; rtt: number | null };
  /** A delivery-latency report was sent (what it said). */
  latency: LatencyReportMessage;
  /** A bid moved on in its life (queued → sent → uncertain → answered / failed). */
  bid: BidStatus;
  /** The session ended and could not be renewed (why). Then the bids never sent fail
   *  (`bid` events), and a `session` event with null follows. */
  sessionEnded: GavelError;
}

type Listener<K extends keyof ClientEvents> = (e: ClientEvents[K]) => void;

interface WatchEntry {
  feed: AuctionFeed;
  listeners: Set<(s: AuctionState) => void>;
  waiters: Array<(s: AuctionState) => void>;
  live: boolean;
  /** Local time resubscription was last asked for. */
  askedAt: number;
  count: number;
  /** The server said there is no such auction: not asked again until the next connection. */
  missing: boolean;
}

interface PendingBid {
  requestId: string;
  msg: Extract<ClientMessage, { type: "bid" }>;
  resolve: (r: BidResult) => void;
  reject: (e: GavelError) => void;
  firstAt: number;
  /** Last send (0: never sent). */
  sentAt: number;
  /** `outcome_unknown` was answered: ask again soon. */
  uncertain: boolean;
  /** What the `bid` event last said. */
  state: BidState;
}

/** Resubscribe again if a gap is still open after this long (ms). */
const RESYNC_RETRY_MS = 3_000;
/** A token is refreshed when this share of its remaining life is left (at most a minute before). */
const REFRESH_SHARE = 0.2;

/** When to refresh a token with `remainingMs` left: the delay from now (ms). */
export function refreshDelay(remainingMs: number): number {
  return Math.max(0, Math.round(remainingMs - Math.min(60_000, remainingMs * REFRESH_SHARE)));
}

/** The `exp` of a JWT in ms, if the token is one. */
export function jwtExpiry(token: string): number | null {
  const part = token.split(".")[1];
  if (!part || typeof atob !== "function") return null;
  try {
    const json = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: unknown };
    return typeof json.exp === "number" ? json.exp * 1000 : null;
  } catch {
    return null;
  }
}

function socketFactory(opts: GavelClientOptions): SocketFactory {
  if (opts.socketFactory) return opts.socketFactory;
  const C = opts.WebSocket ?? (globalThis as { WebSocket?: new (url: string) => unknown }).WebSocket;
  if (!C) throw new GavelError("no_websocket", "no WebSocket implementation: pass options.WebSocket (e.g. the `ws` package's in Node 20)");
  return (url) => new C(url) as SocketLike;
}

export class GavelClient {
  readonly http: HttpApi;
  readonly clock = new ClockEstimator();
  /** Decision → received of the watched auctions' updates, until the next report. */
  readonly latency = new LatencyRecorder();
  private lastLatencyReport = 0;
  private readonly socket: LiveSocket;
  private readonly now: () => number;
  private session: Session | null = null;
  private tokenSource: TokenSource | null;
  private helloUser: UserView | null = null;
  /** The socket is watch-only until an `auth` with a fresh token is answered. */
  private awaitingAuth = false;
  private renewing: Promise<boolean> | null = null;
  private readonly watches = new Map<string, WatchEntry>();
  private lobby: { auctions: Map<string, AuctionView>; listeners: Set<(a: AuctionView[]) => void>; askedAt: number; gap: boolean } | null = null;
  private readonly pending = new Map<string, PendingBid>();
  private readonly events: { [K in keyof ClientEvents]?: Set<Listener<K>> } = {};
  private ticker: ReturnType<typeof setInterval> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private clockTimers: ReturnType<typeof setTimeout>[] = [];
  private lastClockBurst = 0;
  /** The ping sent after resubscribing: its pong confirms these auctions. */
  private barrier: { clientTime: number; ids: string[] } | null = null;

  constructor(private readonly opts: GavelClientOptions) {
    this.now = opts.now ?? (() => Date.now());
    this.tokenSource = opts.token ?? null;
    if (typeof opts.token === "string") this.session = { token: opts.token, user: null, expiresAt: jwtExpiry(opts.token), kind: "external" };
    if (opts.session) this.session = opts.session;
    this.http = new HttpApi({ baseUrl: opts.baseUrl, fetch: opts.fetch, token: () => this.session?.token ?? null });
    const factory = socketFactory(opts);
    this.socket = new LiveSocket({
      url: () => this.wsUrl(),
      socket: factory,
      onHello: (m, fresh) => this.onHello(m, fresh),
      onMessage: (m) => this.onMessage(m),
      onStatus: (info) => this.onStatus(info),
      reconnect: opts.reconnect,
      fallbackHeartbeatMs: opts.fallbackHeartbeatMs,
      helloTimeoutMs: opts.helloTimeoutMs,
      quietReconnectMs: opts.quietReconnectMs,
      online: opts.online,
      now: this.now,
    });
  }

  // ------------------------------------------------------------------ lifecycle

  /** Opens the WebSocket (and keeps it open until `close`). Resolves once it said hello. */
  connect(): Promise<Hello> {
    const hello = new Promise<Hello>((resolve) => {
      const off = this.on("hello", (h) => {
        off();
        resolve(h);
      });
    });
    if (!this.ticker) this.ticker = setInterval(() => this.tick(), 250);
    this.scheduleRefresh();
    // With a token function and no token yet, ask it first: the URL carries the token.
    if (!this.session && typeof this.tokenSource === "function") void this.renewToken().finally(() => this.socket.start());
    else this.socket.start();
    return hello;
  }

  /** Closes the socket and stops every timer; unsettled bids reject with `closed`. */
  close(): void {
    this.socket.stop();
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    for (const t of this.clockTimers) clearTimeout(t);
    this.clockTimers = [];
    for (const p of [...this.pending.values()]) {
      this.pending.delete(p.requestId);
      p.reject(new GavelError("closed", "the client was closed before the bid was answered; ask again with the same request id to learn its outcome", 0, p.requestId));
    }
  }

  /** The socket's status. */
  get status(): SocketInfo["status"] {
    return this.socket.status;
  }

  /** The signed-in user as the server knows them on the socket (null: watching only). */
  get user(): UserView | null {
    return this.helloUser ?? this.session?.user ?? null;
  }

  get currentSession(): Session | null {
    return this.session;
  }

  /** The server's time now, estimated from the clock samples (ms). */
  serverNow(): number {
    return this.clock.serverNow(this.now());
  }

  on<K extends keyof ClientEvents>(event: K, fn: Listener<K>): () => void {
    let set = this.events[event] as Set<Listener<K>> | undefined;
    if (!set) {
      set = new Set();
      (this.events as Record<string, Set<unknown>>)[event] = set;
    }
    set.add(fn);
    return () => set.delete(fn);
  }

  private emit<K extends keyof ClientEvents>(event: K, e: ClientEvents[K]): void {
    for (const fn of [...((this.events[event] as Set<Listener<K>> | undefined) ?? [])]) fn(e);
  }

  private wsUrl(): string {
    // "" means the page's own origin (a client served by Gavel itself).
    const origin = this.opts.baseUrl || ((globalThis as { location?: { origin?: string } }).location?.origin ?? "");
    const base = this.opts.wsUrl ?? `${origin.replace(/^http/, "ws").replace(/\/+$/, "")}/ws`;
    const token = this.session?.token;
    return token ? `${base}${base.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : base;
  }

  // ------------------------------------------------------------------ session

  /** Signs in as a guest (`POST /api/session`); the token is refreshed before it expires. */
  async signInAsGuest(name: string, opts: { adminToken?: string } = {}): Promise<SessionResponse> {
    const s = await this.http.createSession(name, opts.adminToken);
    this.tokenSource = null;
    this.setSession({ token: s.token, user: s.user, expiresAt: s.expires_at, kind: "gavel" });
    return s;
  }

  /** Acts with an external token (or a function giving one; called again when it is refused or expires). */
  useToken(token: TokenSource): void {
    this.tokenSource = token;
    if (typeof token === "string") this.setSession({ token, user: null, expiresAt: jwtExpiry(token), kind: "external" });
    else void this.renewToken();
  }

  /**
   * Acts with a session signed in elsewhere (e.g. the page's own sign-in form, or one kept
   * across reloads): a `gavel` session is renewed with POST /api/session/refresh before it
   * expires; the open socket gets it with `auth`.
   */
  useSession(session: Session): void {
    this.tokenSource = null;
    this.setSession(session);
  }

  /** Forgets the session: the socket goes on anonymously (watching only). */
  signOut(): void {
    this.tokenSource = null;
    this.setSession(null);
  }

  private setSession(s: Session | null): void {
    this.session = s;
    this.scheduleRefresh();
    this.emit("session", s);
    if (!this.socket.isOpen) return;
    if (s) this.sendAuth();
    else this.socket.restart();
  }

  private scheduleRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const s = this.session;
    if (!s?.expiresAt) return;
    if (s.kind === "external" && typeof this.tokenSource !== "function") return;
    this.refreshTimer = setTimeout(() => void this.renewToken(), refreshDelay(s.expiresAt - this.serverNow()));
  }

  /**
   * A fresh token: `POST /api/session/refresh` for a Gavel session, the token function for an
   * external one. Sent on the socket with `auth`. Resolves false when the session is over.
   */
  renewToken(): Promise<boolean> {
    if (this.renewing) return this.renewing;
    const before = this.session;
    const work = async (): Promise<boolean> => {
      if (before?.kind === "gavel") {
        try {
          const fresh = await this.http.refreshSession(before.token);
          if (this.session !== before) return false;
          this.setSession({ token: fresh.token, user: fresh.user, expiresAt: fresh.expires_at, kind: "gavel" });
          return true;
        } catch (e) {
          if (this.session !== before) return false;
          if (e instanceof GavelError && (e.status === 401 || e.status === 403)) {
            this.sessionEnded(e);
            return false;
          }
          // Unreachable for now: try again while the token is still valid. Once it has run
          // out, the server would refuse to renew it anyway (only a token not yet expired
          // buys a fresh one): the session is over, and the UI must say so.
          if (before.expiresAt === null) return false;
          if (before.expiresAt > this.serverNow()) {
            this.refreshTimer = setTimeout(() => void this.renewToken(), 2_000);
          } else {
            const why = e instanceof GavelError ? e.message : String(e);
            this.sessionEnded(new GavelError("token_expired", `the session expired and could not be renewed (${why})`, 401));
          }
          return false;
        }
      }
      const source = this.tokenSource;
      if (typeof source === "function") {
        const token = await source();
        if (!token) {
          this.sessionEnded(new GavelError("unauthorized", "the token function gave no token"));
          return false;
        }
        this.setSession({ token, user: null, expiresAt: jwtExpiry(token), kind: "external" });
        return true;
      }
      if (before) this.sessionEnded(new GavelError("token_expired", "the token was refused and there is no way to renew it"));
      return false;
    };
    this.renewing = work().finally(() => {
      this.renewing = null;
    });
    return this.renewing;
  }

  private sendAuth(): void {
    const token = this.session?.token;
    if (token && this.socket.send({ type: "auth", token })) this.awaitingAuth = true;
  }

  /**
   * The session cannot be renewed: bids that never reached the server (or were refused for
   * the token, which decides nothing) fail; a bid sent and not answered may still have been
   * decided, so it stays pending (its answer may yet arrive; else it gives up as
   * `outcome_unknown`). The socket watches on.
   */
  private sessionEnded(why: GavelError): void {
    // Told first, so a listener knows why the bids that fail next failed.
    this.emit("sessionEnded", why);
    for (const p of [...this.pending.values()]) {
      if (p.sentAt === 0) this.settle(p.requestId, new GavelError(why.code, `the session ended before the bid was placed: ${why.message}`, why.status, p.requestId));
    }
    this.awaitingAuth = false;
    this.session = null;
    this.scheduleRefresh();
    this.emit("session", null);
    if (this.socket.isOpen) this.socket.restart();
  }

  // ------------------------------------------------------------------ watching

  /**
   * Watches an auction: `listener` gets its state on every change (in seq order). Several
   * watches of one auction share one subscription.
   */
  watch(auctionId: string, listener?: (s: AuctionState) => void): AuctionWatch {
    let entry = this.watches.get(auctionId);
    if (!entry) {
      entry = { feed: new AuctionFeed(auctionId), listeners: new Set(), waiters: [], live: false, askedAt: 0, count: 0, missing: false };
      this.watches.set(auctionId, entry);
      this.subscribe(auctionId, entry);
    }
    entry.count++;
    const e = entry;
    if (listener) e.listeners.add(listener);
    let closed = false;
    return {
      auctionId,
      get state() {
        return stateOf(e);
      },
      ready: () => {
        const s = stateOf(e);
        return s ? Promise.resolve(s) : new Promise((resolve) => e.waiters.push(resolve));
      },
      close: () => {
        if (closed) return;
        closed = true;
        if (listener) e.listeners.delete(listener);
        if (--e.count > 0) return;
        this.watches.delete(auctionId);
        this.socket.send({ type: "unsubscribe", auction_id: auctionId });
      },
    };
  }

  /** Asks for the signed-in user's personal channel (docs/protocol.md, "Personal channel"):
   *  a `personal` message, then `notification`s, arrive as `message` events. Send it again
   *  after each `hello` with a user (the server forgets it with the connection) and after a
   *  watchlist change. False when the socket is not open. */
  subscribePersonal(): boolean {
    return this.socket.send({ type: "subscribe_personal" });
  }

  /** Watches every auction's price (the lobby). */
  watchLobby(listener?: (auctions: AuctionView[]) => void): LobbyWatch {
    if (!this.lobby) {
      this.lobby = { auctions: new Map(), listeners: new Set(), askedAt: this.now(), gap: false };
      this.socket.send({ type: "subscribe_lobby" });
    }
    const lobby = this.lobby;
    if (listener) lobby.listeners.add(listener);
    return {
      get auctions() {
        return sortedLobby(lobby.auctions);
      },
      close: () => {
        if (listener) lobby.listeners.delete(listener);
        if (lobby.listeners.size > 0 || this.lobby !== lobby) return;
        this.lobby = null;
        this.socket.send({ type: "unsubscribe_lobby" });
      },
    };
  }

  private subscribe(id: string, entry: WatchEntry, snapshot = false): void {
    const seq = entry.feed.seq;
    entry.askedAt = this.now();
    entry.missing = false;
    this.socket.send(seq !== null && !snapshot ? { type: "subscribe", auction_id: id, since_seq: seq } : { type: "subscribe", auction_id: id });
  }

  private changed(entry: WatchEntry): void {
    const s = stateOf(entry);
    if (!s) return;
    for (const w of entry.waiters.splice(0)) w(s);
    for (const fn of [...entry.listeners]) fn(s);
  }

  private lobbyChanged(): void {
    const lobby = this.lobby;
    if (!lobby) return;
    const list = sortedLobby(lobby.auctions);
    for (const fn of [...lobby.listeners]) fn(list);
  }

  private resyncLobby(): void {
    const lobby = this.lobby;
    if (!lobby) return;
    // Still open when the tick looks again (asked too recently, or the answer lost).
    lobby.gap = true;
    if (this.now() - lobby.askedAt < RESYNC_RETRY_MS) return;
    lobby.askedAt = this.now();
    // A repeated subscribe_lobby may be answered with `ok` alone: start it over.
    this.socket.send({ type: "unsubscribe_lobby" });
    this.socket.send({ type: "subscribe_lobby" });
  }

  // ------------------------------------------------------------------ bids

  /**
   * Places a bid over the WebSocket; resolves with the decision (`accepted`, `outbid`,
   * `stale`, ...: check `outcome`). Rejects with a GavelError for a refusal before any
   * decision (`unavailable`, `rate_limited`, `invalid_amount`, `unauthorized`, ...), or with
   * `outcome_unknown` if no answer came within `bids.giveUpAfterMs` (ask again with the same
   * `requestId` to learn the outcome).
   */
  bid(auctionId: string, amount: number, opts: BidOptions = {}): Promise<BidResult> {
    const requestId = opts.requestId ?? newRequestId();
    const existing = this.pending.get(requestId);
    if (existing) return new Promise((resolve, reject) => {
      const { resolve: r0, reject: j0 } = existing;
      existing.resolve = (r) => { r0(r); resolve(r); };
      existing.reject = (e) => { j0(e); reject(e); };
    });
    if (!this.session && typeof this.tokenSource !== "function") {
      return Promise.reject(new GavelError("unauthorized", "sign in (signInAsGuest or useToken) before bidding", 401, requestId));
    }
    const msg: Extract<ClientMessage, { type: "bid" }> = { type: "bid", auction_id: auctionId, amount, request_id: requestId };
    if (opts.kind && opts.kind !== "plain") msg.kind = opts.kind;
    if (opts.expectedSeq !== undefined) msg.expected_seq = opts.expectedSeq;
    // A watched auction's view is held here: the answer need not carry it again (its
    // `state` is merged into the held view when it arrives, see onBidResult).
    if (this.watches.get(auctionId)?.feed.auction) msg.lean = true;
    return new Promise<BidResult>((resolve, reject) => {
      const p: PendingBid = { requestId, msg, resolve, reject, firstAt: this.now(), sentAt: 0, uncertain: false, state: "queued" };
      this.pending.set(requestId, p);
      this.sendBid(p);
      if (p.sentAt === 0) this.bidEvent(p, "queued");
    });
  }

  /** Where an unsettled bid is (null once it settled, or for an unknown id). */
  bidStatus(requestId: string): BidStatus | null {
    const p = this.pending.get(requestId);
    return p ? statusOf(p, p.state) : null;
  }

  private bidEvent(p: PendingBid, state: BidState, outcome?: BidResult | GavelError): void {
    p.state = state;
    const s = statusOf(p, state);
    if (outcome instanceof GavelError) s.error = outcome;
    else if (outcome) s.result = outcome;
    this.emit("bid", s);
  }

  /** The request ids of bids not answered yet. */
  get pendingBids(): string[] {
    return [...this.pending.keys()];
  }

  private canBid(): boolean {
    return this.socket.isOpen && !this.awaitingAuth && this.helloUser !== null;
  }

  private sendBid(p: PendingBid): void {
    if (!this.canBid()) return;
    if (!this.socket.send(p.msg)) return;
    p.sentAt = this.now();
    // A re-send of an uncertain bid stays uncertain until the answer comes.
    if (p.state === "queued") this.bidEvent(p, "sent");
  }

  private settle(requestId: string, outcome: BidResult | GavelError): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    this.pending.delete(requestId);
    this.bidEvent(p, outcome instanceof GavelError ? "failed" : "answered", outcome);
    if (outcome instanceof GavelError) p.reject(outcome);
    else p.resolve(outcome);
  }

  // ------------------------------------------------------------------ incoming

  private onStatus(info: SocketInfo): void {
    if (info.status !== "open") {
      this.barrier = null;
      this.helloUser = null;
      for (const entry of this.watches.values()) {
        if (entry.live) {
          entry.live = false;
          this.changed(entry);
        }
      }
    }
    this.emit("status", info);
  }

  private onHello(m: Hello, fresh: boolean): void {
    this.clock.addCoarse(m.server_time, this.now());
    this.helloUser = m.user;
    if (m.user && this.session && !this.session.user) this.session = { ...this.session, user: m.user };
    if (!fresh) {
      // The answer to `auth`.
      this.awaitingAuth = false;
      if (m.user) for (const p of this.pending.values()) this.sendBid(p);
      else if (this.session) this.sessionEnded(new GavelError("unauthorized", "the server refused the fresh token", 401));
      this.emit("hello", m);
      return;
    }
    // A token the server does not accept any more (expired, or another secret): watch on,
    // hold bids, and renew it.
    this.awaitingAuth = false;
    if (this.session && !m.user) {
      this.awaitingAuth = true;
      void this.renewToken();
    }
    if (this.lobby) {
      this.lobby.askedAt = this.now();
      this.socket.send({ type: "subscribe_lobby" });
    }
    const ids = [...this.watches.keys()];
    for (const id of ids) this.subscribe(id, this.watches.get(id)!);
    // The server answers in order: this ping's pong comes after whatever the subscribes sent.
    const t = this.ping();
    this.barrier = t === null ? null : { clientTime: t, ids };
    this.clockBurst(this.opts.clock?.pings ?? 5);
    // Unanswered bids go out again with their own request ids.
    for (const p of this.pending.values()) this.sendBid(p);
    this.emit("hello", m);
  }

  private ping(): number | null {
    const t = this.now();
    return this.socket.send({ type: "ping", client_time: t }) ? t : null;
  }

  /** Several pings a little apart: the clock keeps the one with the smallest round trip. */
  private clockBurst(count: number): void {
    this.lastClockBurst = this.now();
    const spacing = this.opts.clock?.spacingMs ?? 100;
    for (let i = 1; i < count; i++) this.clockTimers.push(setTimeout(() => this.ping(), i * spacing));
    if (this.clockTimers.length > 64) this.clockTimers = this.clockTimers.slice(-16);
  }

  private onMessage(m: ServerMessage): void {
    this.emit("message", m);
    switch (m.type) {
      case "pong": {
        this.clock.addSample(m.client_time, m.server_time, this.now());
        this.emit("clock", { offset: this.clock.offset, rtt: this.clock.rtt });
        const b = this.barrier;
        if (b && m.client_time === b.clientTime) {
          this.barrier = null;
          for (const id of b.ids) {
            const entry = this.watches.get(id);
            if (entry && entry.feed.auction && !entry.live) {
              entry.live = true;
              this.changed(entry);
            }
          }
        }
        return;
      }
      case "heartbeat":
        this.clock.addCoarse(m.server_time, this.now());
        return;
      case "snapshot": {
        const entry = this.watches.get(m.auction.id);
        if (entry && entry.feed.snapshot(m.auction, m.recent_bids, m.resync) === "applied") {
          entry.live = true;
          this.changed(entry);
        }
        this.lobbyView(m.auction);
        return;
      }
      case "update": {
        const entry = this.watches.get(m.auction_id);
        if (entry && m.decided_at != null) this.measure(m.auction_id, m.decided_at);
        if (entry) {
          const hadGap = entry.feed.gapSince !== null;
          const r = entry.feed.update(m);
          if (r === "applied" || (r === "gap" && !hadGap)) this.changed(entry);
          // Ask once per gap; the tick asks again (for a snapshot) if it stays open.
          if (r === "gap" && !hadGap) this.subscribe(m.auction_id, entry);
        }
        const lobby = this.lobby;
        const cur = lobby?.auctions.get(m.auction_id);
        if (lobby && cur) {
          if (m.seq === cur.seq + 1) {
            lobby.auctions.set(m.auction_id, applyUpdate(cur, m));
            this.lobbyChanged();
          } else if (m.seq > cur.seq + 1) this.resyncLobby();
        } else if (lobby) this.resyncLobby();
        return;
      }
      case "closed": {
        const entry = this.watches.get(m.auction_id);
        if (entry) this.measure(m.auction_id, m.closed_at);
        if (entry) {
          const r = entry.feed.closed(m);
          if (r !== "ignored") this.changed(entry);
          if (r === "closed_after_gap") this.subscribe(m.auction_id, entry, true);
        }
        const cur = this.lobby?.auctions.get(m.auction_id);
        if (this.lobby && cur && m.seq > cur.seq) {
          this.lobby.auctions.set(m.auction_id, applyClosed(cur, m));
          this.lobbyChanged();
        }
        return;
      }
      case "watchers": {
        const entry = this.watches.get(m.auction_id);
        if (entry && entry.feed.setWatchers(m.count) === "applied") this.changed(entry);
        return;
      }
      case "lobby":
        if (this.lobby) {
          // The answer to the subscribe: in step again, and a later gap may ask at once.
          this.lobby.gap = false;
          this.lobby.askedAt = 0;
          this.lobby.auctions = new Map(m.auctions.map((a) => [a.id, a]));
          this.lobbyChanged();
        }
        return;
      case "auction_created":
        this.lobbyView(m.auction);
        return;
      case "bid_result": {
        const { type: _t, ...result } = m;
        this.settle(result.request_id, this.fullResult(result));
        return;
      }
      case "error":
        this.onError(m);
        return;
      case "ok":
        return;
    }
  }

  /** A lean answer (`state` only) made whole again with the view held for its auction, so
   *  `bid()` always resolves with `auction`. Without a held view (the watch ended before
   *  the answer came) it keeps `state` and has no `auction`. */
  private fullResult(r: BidResult): BidResult {
    if (r.auction || !r.state) return r;
    const held = this.watches.get(r.auction_id)?.feed.auction ?? this.lobby?.auctions.get(r.auction_id);
    if (!held) return r;
    const { state, ...rest } = r;
    return { ...rest, auction: withState(held, state) };
  }

  private lobbyView(a: AuctionView): void {
    const lobby = this.lobby;
    if (!lobby) return;
    const cur = lobby.auctions.get(a.id);
    if (cur && cur.seq >= a.seq) return;
    lobby.auctions.set(a.id, a);
    this.lobbyChanged();
  }

  private onError(m: Extract<ServerMessage, { type: "error" }>): void {
    const p = m.request_id ? this.pending.get(m.request_id) : undefined;
    const holdUnauthorized = m.code === "unauthorized" && p !== undefined && this.session !== null && this.opts.bids?.holdOnUnauthorized === true;
    if (m.code === "token_expired" || holdUnauthorized) {
      // The socket is watch-only now; a bid refused for it was not decided and goes out
      // again (same id) once the fresh token is accepted: as if never sent.
      if (p) {
        p.sentAt = 0;
        this.bidEvent(p, "queued");
      }
      this.awaitingAuth = true;
      void this.renewToken();
      return;
    }
    if (p) {
      if (m.code === "outcome_unknown") {
        // It may have been decided: ask again with the same id (never shown as lost or placed).
        p.uncertain = true;
        if (p.state !== "uncertain") this.bidEvent(p, "uncertain");
        return;
      }
      this.settle(p.requestId, new GavelError(m.code, m.message, 0, p.requestId));
      return;
    }
    const missing = m.code === "not_found" && m.auction_id ? this.watches.get(m.auction_id) : undefined;
    if (missing) missing.missing = true;
    if (m.code === "unauthorized" && this.awaitingAuth) {
      this.awaitingAuth = false;
      this.sessionEnded(new GavelError(m.code, m.message, 401));
      return;
    }
    this.emit("error", new GavelError(m.code, m.message));
  }

  /** Counts an arrival now, once the clock has a real (ping) sample: before that the
   *  offset's error is unknown. */
  private measure(auctionId: string, decidedAt: number): void {
    if (this.clock.rtt === null) return;
    this.latency.record(auctionId, decidedAt, this.clock.serverNow(this.now()));
  }

  /** Sends what `latency` counted since the last report, with the clock's error bound. */
  private reportLatency(now: number): void {
    const every = this.opts.latencyReportMs ?? 30_000;
    if (every <= 0 || now - this.lastLatencyReport < every) return;
    if (this.lastLatencyReport === 0) {
      // The first window starts now.
      this.lastLatencyReport = now;
      return;
    }
    if (this.sendLatencyReport()) this.lastLatencyReport = now;
  }

  /** Sends the latency counted since the last report now (e.g. before the page goes away;
   *  the server refuses reports less than 10 s apart). False when there is nothing to send,
   *  no clock sample yet, or no open socket (the counts are then kept). */
  sendLatencyReport(): boolean {
    const rtt = this.clock.rtt;
    if (rtt === null || this.latency.pending === 0 || !this.socket.isOpen) return false;
    const report = this.latency.take(rtt / 2);
    if (!report || !this.socket.send(report)) return false;
    this.emit("latency", report);
    return true;
  }

  /** Every 250 ms: re-send bids, retry gaps, refresh the clock, report latency. */
  private tick(): void {
    const now = this.now();
    const b = this.opts.bids ?? {};
    for (const p of [...this.pending.values()]) {
      if (now - p.firstAt > (b.giveUpAfterMs ?? 60_000)) {
        this.settle(
          p.requestId,
          p.sentAt === 0
            ? new GavelError("timeout", "the bid could not be sent (no connection or no valid token)", 0, p.requestId)
            : new GavelError("outcome_unknown", "no answer to the bid: it may have been placed; ask again with the same request id", 503, p.requestId),
        );
      } else if (p.sentAt === 0 || now - p.sentAt > (p.uncertain ? (b.unknownRetryMs ?? 500) : (b.resendAfterMs ?? 5_000))) {
        this.sendBid(p);
      }
    }
    if (!this.socket.isOpen) return;
    for (const [id, entry] of this.watches) {
      if (!entry.feed.inSync && !entry.missing && now - entry.askedAt > RESYNC_RETRY_MS) {
        // Still out of step: a full snapshot settles it.
        this.subscribe(id, entry, entry.feed.gapSince !== null || entry.feed.needSnapshot);
      }
    }
    if (this.lobby?.gap) this.resyncLobby();
    const overdue = this.opts.overdueCloseMs ?? 0;
    if (overdue > 0) {
      const serverNow = this.serverNow();
      for (const [id, entry] of this.watches) {
        const a = entry.feed.auction;
        if (a && a.status !== "closed" && !entry.missing && serverNow > a.ends_at + overdue && now - entry.askedAt > overdue) this.subscribe(id, entry);
      }
    }
    const refresh = this.opts.clock?.refreshMs ?? 60_000;
    if (refresh > 0 && now - this.lastClockBurst > refresh) {
      this.ping();
      this.clockBurst(this.opts.clock?.pings ?? 5);
    }
    this.reportLatency(now);
  }
}

function statusOf(p: PendingBid, state: BidState): BidStatus {
  const s: BidStatus = {
    requestId: p.requestId,
    auctionId: p.msg.auction_id,
    amount: p.msg.amount,
    kind: p.msg.kind ?? "plain",
    state,
    firstAt: p.firstAt,
    sentAt: p.sentAt,
  };
  if (p.msg.expected_seq !== undefined && p.msg.expected_seq !== null) s.expectedSeq = p.msg.expected_seq;
  return s;
}

function stateOf(e: WatchEntry): AuctionState | null {
  const a = e.feed.auction;
  return a ? { auction: a, recentBids: e.feed.recentBids, watchers: e.feed.watchers, live: e.live && e.feed.inSync } : null;
}

function sortedLobby(m: Map<string, AuctionView>): AuctionView[] {
  return [...m.values()].sort((a, b) => a.ends_at - b.ends_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
