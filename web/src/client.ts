// The app's live state: one connection, the clock, the lobby, the rooms and the user's bids.
// React reads it through useSyncExternalStore (hooks.ts); everything here is plain TS.
//
// The protocol is @gavel/client's GavelClient (clients/typescript): the socket (reconnect,
// heartbeat watchdog, offline/online), resubscription with the barrier ping, bids with their
// request ids (re-sent, `outcome_unknown` asked again, held for a fresh token), the token
// renewal, the clock and the latency reports. This file holds only what React renders: rooms
// (state.ts's reducers, fed with every message), the lobby, the bid shown per room (from the
// package's `bid` events), the session kept in sessionStorage, and "sign in to place this bid".

import {
  GavelClient as LiveClient,
  GavelError,
  newRequestId as packageRequestId,
  type AuctionView,
  type AuctionWatch,
  type BidKind,
  type BidResult,
  type BidStatus,
  type ClockEstimator,
  type LatencyRecorder,
  type HttpApi,
  type LiveSocketOptions,
  type LobbyWatch,
  type ServerMessage,
  type Session as LiveSession,
  type SessionResponse as Session,
  type SocketInfo,
  type SocketLike,
  type UserView,
  verifyWithServer,
} from "@gavel/client";
import { addReceipt, loadReceipts, saveReceipts, type ReceiptStore } from "./receipts";
import {
  initialLobby,
  initialRoom,
  lobbyReducer,
  roomReducer,
  type LobbyAction,
  type LobbyState,
  type RoomAction,
  type RoomState,
} from "./state";

export { refreshDelay } from "@gavel/client";
export type { Session };

/** The socket's status as the UI shows it. */
export type ConnStatus = "connecting" | "open" | "reconnecting" | "offline";

export interface ConnInfo {
  status: ConnStatus;
  /** Failed attempts since the last successful connection. */
  attempt: number;
  /** Local time of the next attempt while reconnecting. */
  retryAt: number | null;
}

/** Parts of the socket's options a test may replace (a fake socket, the network state, back-off). */
export type ConnectionOverrides = Partial<Pick<LiveSocketOptions, "socket" | "online" | "reconnect" | "now" | "fallbackHeartbeatMs" | "helloTimeoutMs">>;

/** What the user last tried in a room, and what came of it. */
export interface BidAttempt {
  requestId: string;
  auctionId: string;
  amount: number;
  kind: BidKind;
  expectedSeq?: number;
  /** The auction's seq the room showed when the bid was made. */
  seenSeq?: number;
  /** pending: not answered yet; done: a bid_result; error: an error message or a give-up. */
  state: "pending" | "done" | "error";
  outcome?: string;
  serverMessage?: string;
  errorCode?: string;
  /** The auction as of the decision (for "the price is now …"). */
  auction?: AuctionView | null;
  /** Still waiting for a connection (or a fresh token) to send it. */
  queued: boolean;
  /**
   * The server answered `outcome_unknown`: the bid may have been decided. It stays pending
   * (never shown as lost or placed) and is asked again with the same request_id.
   */
  uncertain?: boolean;
  sentAt: number;
  firstSentAt: number;
}

export interface ClientState {
  session: Session | null;
  /** Set when the server forgot our token (expired or restarted with another secret). */
  sessionProblem: string | null;
  conn: ConnInfo;
  helloUser: UserView | null;
  clockOffset: number | null;
  clockRtt: number | null;
  lobby: LobbyState;
  rooms: Record<string, RoomState>;
  roomErrors: Record<string, string>;
  /** The latest bid attempt per auction. */
  bids: Record<string, BidAttempt>;
  /** A visitor tried to bid: sign-in is asked for, then this bid is placed. */
  signInFor: BidIntent | null;
  /** The signed receipts of the bids accepted in this browser, per auction (receipts.ts). */
  receipts: ReceiptStore;
  /** Per closed auction with receipts: their check against the published log. */
  verifications: Record<string, Verification>;
}

/**
 * The check of an auction's receipts against its log after the close (@gavel/client's
 * verifyReceipts): `checking`; `verified`; `failed` (`detail`: the first thing wrong);
 * `waiting` (the log served does not reach the signed head yet: asked again shortly);
 * `unsupported` (this browser has no WebCrypto Ed25519 here); `error` (the server could not
 * be asked: `detail`).
 */
export interface Verification {
  state: "checking" | "verified" | "failed" | "waiting" | "unsupported" | "error";
  detail?: string;
  /** The receipts checked. */
  count: number;
  /** The final hash the log ends at (when verified). */
  finalHash?: string;
}

/** A bid a visitor asked for before signing in. */
export interface BidIntent {
  auctionId: string;
  amount: number;
  kind: BidKind;
  expectedSeq?: number;
}

const SESSION_KEY = "gavel.session";

/** A log not yet complete (distributed mode: entries are archived shortly after) is asked
 *  for again this often, this many times. */
const VERIFY_RETRY_MS = 2_000;
const VERIFY_TRIES = 30;

/** Protocol timings the web asks of GavelClient. */
const BID_RETRY_MS = 5_000;
const UNKNOWN_RETRY_MS = 1_000;
const BID_GIVE_UP_MS = 120_000;
const OVERDUE_CLOSE_MS = 5_000;
const CLOCK_PING_MS = 15_000;
const CLOCK_BURST = 5;
const CLOCK_BURST_SPACING_MS = 120;

/** A request id (1–64 of A-Za-z0-9-_.:), `w-` for the web client. */
export function newRequestId(): string {
  return packageRequestId("w");
}

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    if (!s.token || !s.user) return null;
    if (s.expires_at && s.expires_at < Date.now() - 24 * 3600_000) return null;
    return s;
  } catch {
    return null;
  }
}

function saveSession(s: Session | null): void {
  try {
    if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    else sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // storage may be disabled: the session then lasts as long as the page
  }
}

function toLive(s: Session): LiveSession {
  return { token: s.token, user: s.user, expiresAt: s.expires_at, kind: "gavel" };
}

function fromLive(s: LiveSession, before: Session | null): Session | null {
  const user = s.user ?? before?.user;
  if (!user) return null;
  return { token: s.token, user, expires_at: s.expiresAt ?? before?.expires_at ?? 0 };
}

export class GavelClient {
  /** The protocol client: socket, resubscription, bids, token renewal, clock, latency. */
  readonly live: LiveClient;
  readonly clock: ClockEstimator;
  /** Decision → received of the watched rooms' updates, reported every 30 s
   *  (docs/protocol.md, `latency_report`). */
  readonly latency: LatencyRecorder;
  /** The HTTP API on this page's origin, with the session's token. */
  readonly http: HttpApi;
  /**
   * Test hook (web/e2e): the WebSocket opened last, i.e. the connection in use (GavelClient
   * keeps one at a time). Browser tests close it or wrap its `send` to lose a message.
   */
  readonly conn: { ws: SocketLike | null } = { ws: null };
  private state: ClientState;
  private listeners = new Set<() => void>();
  private lobbyWatchers = 0;
  private lobbyWatch: LobbyWatch | null = null;
  private roomWatchers = new Map<string, number>();
  private watches = new Map<string, AuctionWatch>();
  /** Bids not settled yet, as shown. */
  private pending = new Map<string, BidAttempt>();
  /** Bids the UI stopped following (signed out, session over): their events are ignored. */
  private abandoned = new Set<string>();
  /** The session is ending: bids failing now were never sent because of it. */
  private ending = false;
  private stopped = false;

  /** `connection` overrides parts of the socket's options (a fake socket in unit tests). */
  constructor(session: Session | null, connection: ConnectionOverrides = {}) {
    this.state = {
      session,
      sessionProblem: null,
      conn: { status: "connecting", attempt: 0, retryAt: null },
      helloUser: null,
      clockOffset: null,
      clockRtt: null,
      lobby: initialLobby,
      rooms: {},
      roomErrors: {},
      bids: {},
      signInFor: null,
      receipts: loadReceipts(),
      verifications: {},
    };
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.live = new LiveClient({
      baseUrl: "",
      wsUrl: `${proto}//${location.host}/ws`,
      socketFactory: (url) => {
        const ws = connection.socket ? connection.socket(url) : (new WebSocket(url) as unknown as SocketLike);
        this.conn.ws = ws;
        return ws;
      },
      reconnect: connection.reconnect ?? { baseMs: 500, maxMs: 10_000 },
      online: connection.online,
      now: connection.now,
      fallbackHeartbeatMs: connection.fallbackHeartbeatMs,
      helloTimeoutMs: connection.helloTimeoutMs,
      session: session ? toLive(session) : undefined,
      clock: { pings: CLOCK_BURST, spacingMs: CLOCK_BURST_SPACING_MS, refreshMs: CLOCK_PING_MS },
      bids: { resendAfterMs: BID_RETRY_MS, unknownRetryMs: UNKNOWN_RETRY_MS, giveUpAfterMs: BID_GIVE_UP_MS, holdOnUnauthorized: true },
      overdueCloseMs: OVERDUE_CLOSE_MS,
    });
    this.clock = this.live.clock;
    this.latency = this.live.latency;
    this.http = this.live.http;
    this.live.on("status", (info) => this.onStatus(info));
    this.live.on("hello", (m) => this.set({ helloUser: m.user, clockOffset: this.clock.offset, clockRtt: this.clock.rtt }));
    this.live.on("clock", (c) => this.set({ clockOffset: c.offset, clockRtt: c.rtt }));
    this.live.on("message", (m) => this.onMessage(m));
    this.live.on("bid", (b) => this.onBid(b));
    this.live.on("sessionEnded", () => this.onSessionEnded());
    this.live.on("session", (s) => this.onSession(s));
  }

  /** Connection status: anything but open makes every room's state unconfirmed. */
  private onStatus(socket: SocketInfo): void {
    // `closed` only passes by during a restart (sign-in, sign-out): the next status follows at once.
    if (socket.status === "closed" || socket.status === "idle") return;
    const info: ConnInfo = { status: socket.status, attempt: socket.attempt, retryAt: socket.retryAt };
    this.set({ conn: info });
    if (info.status !== "open") {
      for (const id of Object.keys(this.state.rooms)) this.dispatchRoom(id, { type: "unconfirmed" });
    }
  }

  // ------------------------------------------------------------ store plumbing

  getState = (): ClientState => this.state;

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  private set(patch: Partial<ClientState>): void {
    this.state = { ...this.state, ...patch };
    for (const fn of this.listeners) fn();
  }

  start(): void {
    this.stopped = false;
    void this.live.connect();
  }

  stop(): void {
    this.stopped = true;
    this.live.close();
  }

  /** Estimated server time now (ms). */
  serverNow(): number {
    return this.live.serverNow();
  }

  // ------------------------------------------------------------ session

  setSession(session: Session | null, problem: string | null = null): void {
    saveSession(session);
    for (const id of this.pending.keys()) this.abandoned.add(id);
    this.pending.clear();
    this.set({ session, sessionProblem: problem, bids: {}, helloUser: null, signInFor: null });
    const me = session?.user.id ?? null;
    for (const id of Object.keys(this.state.rooms)) this.dispatchRoom(id, { type: "me", me });
    if (session) this.live.useSession(toLive(session));
    else this.live.signOut();
  }

  /** Place a bid, or, for a visitor, ask them to sign in first and place it then. */
  bidOrSignIn(intent: BidIntent): void {
    if (this.state.session) this.placeBid(intent.auctionId, intent.amount, intent.kind, intent.expectedSeq);
    else this.requestSignIn(intent);
  }

  /** A visitor asked to bid: keep the bid and ask them to sign in first. */
  requestSignIn(intent: BidIntent): void {
    this.set({ signInFor: intent });
  }

  cancelSignIn(): void {
    this.set({ signInFor: null });
  }

  /** Signed in at a bid: the bid they asked for is placed (it waits for the connection). */
  signedInForBid(session: Session): void {
    const intent = this.state.signInFor;
    this.setSession(session);
    if (intent) this.placeBid(intent.auctionId, intent.amount, intent.kind, intent.expectedSeq);
  }

  /** Renew the session now (POST /api/session/refresh; the socket gets the fresh token). */
  refresh(): Promise<boolean> {
    return this.live.renewToken();
  }

  /** A renewed session (stored), or null when it ended. */
  private onSession(s: LiveSession | null): void {
    if (!s) {
      const name = this.state.session?.user.name ?? null;
      this.ending = false;
      saveSession(null);
      if (!this.state.session) return;
      this.set({
        session: null,
        helloUser: null,
        sessionProblem: `Your session has expired${name ? `, ${name}` : ""}. Please sign in again to bid.`,
      });
      for (const id of Object.keys(this.state.rooms)) this.dispatchRoom(id, { type: "me", me: null });
      return;
    }
    const next = fromLive(s, this.state.session);
    if (!next || next.token === this.state.session?.token) return;
    saveSession(next);
    this.set({ session: next });
  }

  /** The session cannot be renewed: no bid is shown as placed or lost without an answer. */
  private onSessionEnded(): void {
    this.ending = true;
    for (const attempt of [...this.pending.values()]) {
      // Never sent: the package fails it next (shown as "expired before it was sent").
      if (attempt.queued) continue;
      // Sent or uncertain: it may have been decided, and without a session nobody can ask.
      this.abandoned.add(attempt.requestId);
      this.resolveBid(attempt.requestId, { state: "error", errorCode: "no_answer", serverMessage: "Session expired." });
    }
  }

  // ------------------------------------------------------------ subscriptions

  watchLobby(): () => void {
    this.lobbyWatchers++;
    if (this.lobbyWatchers === 1) {
      this.lobbyWatch = this.live.watchLobby();
      // Show the list at once over HTTP too (the socket may still be connecting); the
      // socket's `lobby` message replaces it.
      if (!this.state.lobby.loaded) {
        this.http.listAuctions().then(
          (r) => {
            if (!this.state.lobby.loaded) this.dispatchLobby({ type: "lobby", auctions: r.auctions });
          },
          () => {},
        );
      }
    }
    return () => {
      this.lobbyWatchers--;
      if (this.lobbyWatchers === 0) {
        this.lobbyWatch?.close();
        this.lobbyWatch = null;
      }
    };
  }

  watchAuction(id: string): () => void {
    const n = (this.roomWatchers.get(id) ?? 0) + 1;
    this.roomWatchers.set(id, n);
    if (n === 1) {
      const me = this.state.session?.user.id ?? null;
      const existing = this.state.rooms[id];
      if (!existing || existing.me !== me) this.setRoom(id, initialRoom(id, me));
      // Confirmed once the package says so (a snapshot, or the barrier pong after resubscribing).
      this.watches.set(
        id,
        this.live.watch(id, (s) => {
          if (s.live) this.dispatchRoom(id, { type: "confirmed" });
        }),
      );
      if (!this.state.rooms[id]?.auction) this.fetchRoom(id);
    }
    return () => {
      const left = (this.roomWatchers.get(id) ?? 1) - 1;
      if (left > 0) {
        this.roomWatchers.set(id, left);
        return;
      }
      this.roomWatchers.delete(id);
      this.watches.get(id)?.close();
      this.watches.delete(id);
    };
  }

  /** Load the next older page of an auction's history (GET .../bids?before_seq=). */
  async loadOlder(id: string, cursor: number, limit = 50): Promise<void> {
    const page = await this.http.bids(id, { beforeSeq: cursor, limit });
    this.dispatchRoom(id, { type: "older", bids: page.bids, next_before_seq: page.next_before_seq });
  }

  /** The auction and its recent bids over HTTP, shown until the socket's snapshot arrives. */
  private fetchRoom(id: string): void {
    Promise.all([this.http.getAuction(id), this.http.bids(id, { limit: 20 })]).then(
      ([auction, history]) => {
        const room = this.state.rooms[id];
        if (!room || room.auction) return; // the socket was faster
        this.dispatchRoom(id, { type: "snapshot", auction, recent_bids: history.bids, resync: false });
      },
      (err) => {
        if (err instanceof GavelError && err.code === "not_found" && !this.state.rooms[id]?.auction) {
          this.set({ roomErrors: { ...this.state.roomErrors, [id]: "not_found" } });
        }
      },
    );
  }

  // ------------------------------------------------------------ bids

  /** Place a bid. Retries (reconnects, timeouts) reuse the same request_id (GavelClient's). */
  placeBid(auctionId: string, amount: number, kind: BidKind = "plain", expectedSeq?: number): BidAttempt {
    const now = Date.now();
    const attempt: BidAttempt = {
      requestId: newRequestId(),
      auctionId,
      amount,
      kind,
      expectedSeq,
      seenSeq: this.state.rooms[auctionId]?.auction?.seq,
      state: "pending",
      queued: true,
      sentAt: now,
      firstSentAt: now,
    };
    this.pending.set(attempt.requestId, attempt);
    this.set({ bids: { ...this.state.bids, [auctionId]: attempt } });
    this.live.bid(auctionId, amount, { kind, expectedSeq, requestId: attempt.requestId }).catch((e: unknown) => {
      // Refused before any event (no session at all): shown as the refusal.
      if (this.pending.has(attempt.requestId) && e instanceof GavelError && !this.live.bidStatus(attempt.requestId)) {
        this.resolveBid(attempt.requestId, { state: "error", errorCode: e.code, serverMessage: e.message });
      }
    });
    return this.state.bids[auctionId] ?? attempt;
  }

  /** A bid moved on (GavelClient's `bid` event): what the room shows. */
  private onBid(b: BidStatus): void {
    if (this.abandoned.has(b.requestId) || this.stopped) return;
    const attempt = this.pending.get(b.requestId);
    if (!attempt) return;
    const sentAt = b.sentAt || attempt.sentAt;
    switch (b.state) {
      case "queued":
        this.holdBid(b.requestId, { queued: true });
        return;
      case "sent":
        this.holdBid(b.requestId, { queued: false, sentAt });
        return;
      case "uncertain":
        // It may have been decided: never say lost or placed; asked again with the same id.
        this.holdBid(b.requestId, { queued: false, uncertain: true, sentAt });
        return;
      case "answered": {
        const r = b.result!;
        const done = this.resolveBid(b.requestId, { state: "done", outcome: r.outcome, serverMessage: r.message, auction: r.auction ?? null });
        this.keepReceipt(r);
        // Once the user's bid was decided, losing the lead is news for them.
        if (done && r.outcome !== "not_found") this.dispatchRoom(r.auction_id, { type: "participated" });
        if (done && r.outcome === "accepted" && done.kind === "max") {
          this.dispatchRoom(r.auction_id, { type: "your_max", amount: r.auction?.your_max ?? done.amount });
        }
        return;
      }
      case "failed": {
        const e = b.error!;
        if (this.ending) {
          this.resolveBid(b.requestId, { state: "error", errorCode: "token_expired", serverMessage: "Your session expired before this bid was sent." });
        } else if (e.code === "timeout" || e.code === "outcome_unknown") {
          // Given up: no answer in time (a server's own outcome_unknown keeps it pending).
          this.resolveBid(b.requestId, { state: "error", errorCode: "no_answer", serverMessage: "No answer from the server." });
        } else {
          this.resolveBid(b.requestId, { state: "error", errorCode: e.code, serverMessage: e.message });
        }
        return;
      }
    }
  }

  private resolveBid(requestId: string, patch: Partial<BidAttempt>): BidAttempt | null {
    const attempt = this.pending.get(requestId);
    if (!attempt) return null;
    this.pending.delete(requestId);
    const done: BidAttempt = { ...attempt, ...patch, queued: false };
    // Only the latest attempt in a room is shown.
    const shown = this.state.bids[attempt.auctionId];
    if (!shown || shown.requestId === requestId || shown.state !== "pending") {
      this.set({ bids: { ...this.state.bids, [attempt.auctionId]: done } });
    }
    return done;
  }

  /** Keep a bid pending with some fields changed (shown if it is the room's latest). */
  private holdBid(requestId: string, patch: Partial<BidAttempt>): void {
    const attempt = this.pending.get(requestId);
    if (!attempt) return;
    const held: BidAttempt = { ...attempt, ...patch, state: "pending" };
    this.pending.set(requestId, held);
    const shown = this.state.bids[attempt.auctionId];
    if (!shown || shown.requestId === requestId) this.set({ bids: { ...this.state.bids, [attempt.auctionId]: held } });
  }

  dismissBid(auctionId: string): void {
    const bids = { ...this.state.bids };
    delete bids[auctionId];
    this.set({ bids });
  }

  // ------------------------------------------------------------ incoming

  /** Every server message, as received: the rooms' and the lobby's reducers. */
  private onMessage(m: ServerMessage): void {
    switch (m.type) {
      case "snapshot":
        this.dispatchRoom(m.auction.id, {
          type: "snapshot",
          auction: m.auction,
          recent_bids: m.recent_bids,
          resync: m.resync,
          live: true,
        });
        this.dispatchLobby({ type: "view", auction: m.auction });
        if (this.state.roomErrors[m.auction.id]) {
          const roomErrors = { ...this.state.roomErrors };
          delete roomErrors[m.auction.id];
          this.set({ roomErrors });
        }
        return;
      case "update": {
        const { type: _t, ...u } = m;
        this.dispatchRoom(u.auction_id, { type: "update", update: u });
        this.dispatchLobby({ type: "update", update: u });
        return;
      }
      case "closed": {
        const { type: _t, ...c } = m;
        this.dispatchRoom(c.auction_id, { type: "closed", closed: c });
        this.dispatchLobby({ type: "closed", closed: c });
        return;
      }
      case "watchers":
        this.dispatchRoom(m.auction_id, { type: "watchers", count: m.count });
        return;
      case "lobby":
        this.dispatchLobby({ type: "lobby", auctions: m.auctions });
        return;
      case "auction_created":
        this.dispatchLobby({ type: "created", auction: m.auction });
        return;
      case "error": {
        if (m.request_id || m.code !== "not_found") return; // bids: the `bid` events
        if (m.auction_id) {
          this.set({ roomErrors: { ...this.state.roomErrors, [m.auction_id]: "not_found" } });
          return;
        }
        // A subscribe to an unknown auction without auction_id in the error: mark the rooms
        // still waiting for their first snapshot.
        const roomErrors = { ...this.state.roomErrors };
        for (const id of this.roomWatchers.keys()) if (!this.state.rooms[id]?.auction) roomErrors[id] = "not_found";
        this.set({ roomErrors });
        return;
      }
      default:
        return;
    }
  }

  private setRoom(id: string, room: RoomState): void {
    this.set({ rooms: { ...this.state.rooms, [id]: room } });
  }

  private dispatchRoom(id: string, action: RoomAction): void {
    const room = this.state.rooms[id];
    if (!room) return;
    const next = roomReducer(room, action);
    if (next === room) return;
    this.setRoom(id, next);
    this.maybeVerify(id);
  }

  private dispatchLobby(action: LobbyAction): void {
    const next = lobbyReducer(this.state.lobby, action);
    if (next === this.state.lobby) return;
    this.set({ lobby: next });
  }

  // ------------------------------------------------------------ receipts

  /** An accepted bid's signed receipt: kept with the auction's others (localStorage). */
  private keepReceipt(r: BidResult): void {
    if (r.outcome !== "accepted" || !r.receipt) return;
    const receipts = addReceipt(this.state.receipts, r.receipt);
    if (receipts === this.state.receipts) return;
    saveReceipts(receipts);
    this.set({ receipts });
  }

  /** Once a watched auction with receipts here has closed, check them (once per set of receipts). */
  private maybeVerify(id: string): void {
    const a = this.state.rooms[id]?.auction;
    const receipts = this.state.receipts[id];
    if (!a || a.status !== "closed" || !receipts?.length) return;
    const v = this.state.verifications[id];
    if (v && v.count === receipts.length) return;
    void this.verifyReceipts(id);
  }

  /**
   * Checks the auction's receipts against its log, its signed head, the server's keys and
   * the final hash published at the close; the result is `verifications[id]`.
   */
  async verifyReceipts(id: string, tries = VERIFY_TRIES): Promise<Verification> {
    const receipts = this.state.receipts[id] ?? [];
    const finalHash = this.state.rooms[id]?.auction?.log_hash ?? null;
    const put = (v: Verification) => {
      this.set({ verifications: { ...this.state.verifications, [id]: v } });
      return v;
    };
    if (this.state.verifications[id]?.state !== "waiting") put({ state: "checking", count: receipts.length });
    let v: Verification;
    try {
      const r = await verifyWithServer(this.http, id, receipts, finalHash);
      if (r.ok) v = { state: "verified", count: receipts.length, finalHash: r.lastHash ?? undefined };
      else if (r.failure === "incomplete" && tries > 1) {
        v = { state: "waiting", count: receipts.length, detail: r.problem };
        setTimeout(() => {
          if (!this.stopped && this.state.verifications[id]?.state === "waiting") void this.verifyReceipts(id, tries - 1);
        }, VERIFY_RETRY_MS);
      } else v = { state: r.failure === "unsupported" ? "unsupported" : "failed", count: receipts.length, detail: r.problem };
    } catch (e) {
      v = { state: "error", count: receipts.length, detail: e instanceof Error ? e.message : String(e) };
    }
    // Receipts added meanwhile are checked by the next round.
    if ((this.state.receipts[id]?.length ?? 0) !== receipts.length) {
      put(v);
      this.maybeVerify(id);
      return v;
    }
    return put(v);
  }

  // ------------------------------------------------------------ admin helpers

  /** An auction view from an HTTP answer (admin actions): refresh the lobby entry. */
  noteAuction(a: AuctionView): void {
    this.dispatchLobby({ type: "view", auction: a });
  }
}
