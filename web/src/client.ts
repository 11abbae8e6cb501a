// The app's live state: one connection, the clock, the lobby, the rooms and the user's bids.
// React reads it through useSyncExternalStore (hooks.ts); everything here is plain TS.
//
// The wire protocol is @gavel/client's (clients/typescript): its LiveSocket (reconnect with
// back-off, the heartbeat watchdog, offline/online), ClockEstimator, HttpApi and the
// generated protocol types. This file holds what is the web app's own: the store the React
// components read (rooms through state.ts's reducers, the lobby, the bid shown per room),
// the session kept in sessionStorage, and "sign in to place this bid".

import {
  ClockEstimator,
  GavelError,
  LatencyRecorder,
  HttpApi,
  LiveSocket,
  newRequestId as packageRequestId,
  type AuctionView,
  type BidKind,
  type ClientMessage,
  type Hello,
  type LiveSocketOptions,
  type ServerMessage,
  type SessionResponse as Session,
  type SocketInfo,
  type SocketLike,
  type UserView,
  refreshDelay,
  withState,
  type AuctionStateView,
} from "@gavel/client";
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
}

/** A bid a visitor asked for before signing in. */
export interface BidIntent {
  auctionId: string;
  amount: number;
  kind: BidKind;
  expectedSeq?: number;
}

const SESSION_KEY = "gavel.session";

/** Ask again for what was missed if nothing came after this long. */
const RESYNC_RETRY_MS = 3_000;
/** Re-send an unanswered bid (same request_id) after this long. */
const BID_RETRY_MS = 5_000;
/** An auction still open this long after its end (server clock) is asked about again. */
const OVERDUE_CLOSE_MS = 5_000;
/** How often the delivery-latency report is sent (the server refuses them < 10 s apart). */
const LATENCY_REPORT_MS = 30_000;
/** Stop retrying an unanswered bid after this long. */
const BID_GIVE_UP_MS = 120_000;
/** Ask again about a bid answered `outcome_unknown` after this long. */
const UNKNOWN_RETRY_MS = 1_000;
/** Clock pings once connected (the heartbeats keep the socket alive; these keep the offset fresh). */
const CLOCK_PING_MS = 15_000;
/** Pings in the burst after `hello`, and their spacing: the clock keeps the fastest. */
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

export class GavelClient {
  readonly clock = new ClockEstimator();
  /** Decision → received of the watched rooms' updates, reported every 30 s
   *  (docs/protocol.md, `latency_report`). */
  readonly latency = new LatencyRecorder();
  private lastLatencyReport = 0;
  /** The HTTP API on this page's origin, with the session's token. */
  readonly http: HttpApi;
  private state: ClientState;
  private listeners = new Set<() => void>();
  private conn: LiveSocket;
  private clockTimers: ReturnType<typeof setTimeout>[] = [];
  private lastClockPingAt = 0;
  private lobbyWatchers = 0;
  private roomWatchers = new Map<string, number>();
  private resyncAskedAt = new Map<string, number>();
  private lobbyResyncAskedAt = 0;
  private pending = new Map<string, BidAttempt>();
  private ticker: ReturnType<typeof setInterval> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshing: Promise<boolean> | null = null;
  /** The socket is watch-only until an `auth` with a fresh token is answered. */
  private awaitingAuth = false;
  /** An `auth` was sent and not answered yet. */
  private authSent = false;
  /** The ping sent after resubscribing: its pong confirms these rooms. */
  private barrier: { clientTime: number; rooms: string[] } | null = null;

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
    };
    this.http = new HttpApi({ baseUrl: "", token: () => this.state.session?.token ?? null });
    this.conn = new LiveSocket({
      url: () => {
        const proto = location.protocol === "https:" ? "wss:" : "ws:";
        const token = this.state.session?.token;
        return `${proto}//${location.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ""}`;
      },
      socket: (url) => new WebSocket(url) as unknown as SocketLike,
      onHello: (m, fresh) => this.onHello(m, fresh),
      onMessage: (m) => this.onMessage(m),
      onStatus: (info) => this.onStatus(info),
      reconnect: { baseMs: 500, maxMs: 10_000 },
      ...connection,
    });
  }

  /** Connection status: anything but open makes every room's state unconfirmed. */
  private onStatus(socket: SocketInfo): void {
    // `closed` only passes by during a restart (sign-in, sign-out): the next status follows at once.
    if (socket.status === "closed" || socket.status === "idle") return;
    const info: ConnInfo = { status: socket.status, attempt: socket.attempt, retryAt: socket.retryAt };
    if (info.status !== "open") this.stopClockPings();
    this.set({ conn: info });
    if (info.status !== "open") {
      this.barrier = null;
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
    this.conn.start();
    if (!this.ticker) this.ticker = setInterval(() => this.tick(), 250);
    this.scheduleRefresh();
  }

  stop(): void {
    this.conn.stop();
    this.stopClockPings();
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
  }

  /** Estimated server time now (ms). */
  serverNow(): number {
    return this.clock.serverNow(Date.now());
  }

  // ------------------------------------------------------------ session

  setSession(session: Session | null, problem: string | null = null): void {
    saveSession(session);
    this.pending.clear();
    this.awaitingAuth = false;
    this.set({ session, sessionProblem: problem, bids: {}, helloUser: null, signInFor: null });
    const me = session?.user.id ?? null;
    for (const id of Object.keys(this.state.rooms)) this.dispatchRoom(id, { type: "me", me });
    this.scheduleRefresh();
    this.conn.restart();
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

  private scheduleRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const s = this.state.session;
    if (!s || !s.expires_at) return;
    const delay = refreshDelay(s.expires_at - this.serverNow());
    this.refreshTimer = setTimeout(() => void this.refresh(), delay);
  }

  /**
   * Exchange the session token for a fresh one (POST /api/session/refresh) and hand it to
   * the open socket with `auth`. Resolves false when the session could not be renewed.
   */
  refresh(): Promise<boolean> {
    if (this.refreshing) return this.refreshing;
    const s = this.state.session;
    if (!s) return Promise.resolve(false);
    this.refreshing = this.http
      .refreshSession(s.token)
      .then(
        (fresh) => {
          if (this.state.session?.token !== s.token) return false; // signed out meanwhile
          saveSession(fresh);
          this.set({ session: fresh });
          this.sendAuth();
          this.scheduleRefresh();
          return true;
        },
        (err) => {
          if (this.state.session?.token !== s.token) return false;
          if (err instanceof GavelError && (err.status === 401 || err.status === 403)) {
            this.sessionEnded();
          } else if (s.expires_at > this.serverNow()) {
            // The server could not be reached: try again while the token is still valid.
            this.refreshTimer = setTimeout(() => void this.refresh(), 3_000);
          } else {
            this.sessionEnded();
          }
          return false;
        },
      )
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  /** Send the current token on the open socket (answered by a `hello` naming the user). */
  private sendAuth(): void {
    const token = this.state.session?.token;
    if (token && this.send({ type: "auth", token })) {
      this.awaitingAuth = true;
      this.authSent = true;
    }
  }

  /** The session cannot be renewed: unanswered bids were never placed; ask to sign in again. */
  private sessionEnded(): void {
    for (const attempt of [...this.pending.values()]) {
      if (attempt.uncertain) {
        // It may have been decided, and without a session it can no longer be asked about.
        this.resolveBid(attempt.requestId, { state: "error", errorCode: "no_answer", serverMessage: "Session expired." });
      } else if (attempt.queued) {
        this.resolveBid(attempt.requestId, {
          state: "error",
          errorCode: "token_expired",
          serverMessage: "Your session expired before this bid was sent.",
        });
      }
    }
    // Bids sent and not answered yet keep their request ids; nobody can ask about them now.
    for (const attempt of [...this.pending.values()]) {
      this.resolveBid(attempt.requestId, { state: "error", errorCode: "no_answer", serverMessage: "Session expired." });
    }
    const name = this.state.session?.user.name ?? null;
    saveSession(null);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    this.awaitingAuth = false;
    this.set({
      session: null,
      helloUser: null,
      sessionProblem: `Your session has expired${name ? `, ${name}` : ""}. Please sign in again to bid.`,
    });
    for (const id of Object.keys(this.state.rooms)) this.dispatchRoom(id, { type: "me", me: null });
    this.conn.restart();
  }

  // ------------------------------------------------------------ subscriptions

  watchLobby(): () => void {
    this.lobbyWatchers++;
    if (this.lobbyWatchers === 1) {
      this.send({ type: "subscribe_lobby" });
      // Show the list at once over HTTP too (the socket may still be connecting); the
      // socket's `lobby` message replaces it.
      if (!this.state.lobby.loaded) {
        this.http.listAuctions().then(
          (r) => {
            if (!this.state.lobby.loaded) this.dispatchLobby({ type: "lobby", auctions: r.auctions }, false);
          },
          () => {},
        );
      }
    }
    return () => {
      this.lobbyWatchers--;
      if (this.lobbyWatchers === 0) this.send({ type: "unsubscribe_lobby" });
    };
  }

  watchAuction(id: string): () => void {
    const n = (this.roomWatchers.get(id) ?? 0) + 1;
    this.roomWatchers.set(id, n);
    if (n === 1) {
      const me = this.state.session?.user.id ?? null;
      const existing = this.state.rooms[id];
      if (!existing || existing.me !== me) this.setRoom(id, initialRoom(id, me));
      this.subscribeRoom(id);
      if (!this.state.rooms[id]?.auction) this.fetchRoom(id);
    }
    return () => {
      const left = (this.roomWatchers.get(id) ?? 1) - 1;
      if (left > 0) {
        this.roomWatchers.set(id, left);
        return;
      }
      this.roomWatchers.delete(id);
      this.send({ type: "unsubscribe", auction_id: id });
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

  private subscribeRoom(id: string, forceSnapshot = false): void {
    const room = this.state.rooms[id];
    const seq = room?.auction?.seq;
    const msg: ClientMessage =
      seq !== undefined && !forceSnapshot
        ? { type: "subscribe", auction_id: id, since_seq: seq }
        : { type: "subscribe", auction_id: id };
    this.resyncAskedAt.set(id, Date.now());
    this.send(msg);
  }

  private send(msg: ClientMessage): boolean {
    return this.conn.send(msg);
  }

  // ------------------------------------------------------------ bids

  /** Place a bid. Retries (reconnects, timeouts) reuse the same request_id. */
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
    this.sendBid(attempt);
    return attempt;
  }

  private sendBid(attempt: BidAttempt): void {
    if (this.awaitingAuth) {
      // The socket is watch-only until the fresh token is accepted; sent after that.
      this.pending.set(attempt.requestId, { ...attempt, queued: true });
      this.set({ bids: { ...this.state.bids, [attempt.auctionId]: { ...attempt, queued: true } } });
      return;
    }
    const msg: ClientMessage = {
      type: "bid",
      auction_id: attempt.auctionId,
      amount: attempt.amount,
      request_id: attempt.requestId,
    };
    if (attempt.kind !== "plain") msg.kind = attempt.kind;
    if (attempt.expectedSeq !== undefined) msg.expected_seq = attempt.expectedSeq;
    // The room holds the auction's view: the answer carries only its `state` (merged below).
    if (this.state.rooms[attempt.auctionId]?.auction) msg.lean = true;
    const sent = this.send(msg);
    const updated: BidAttempt = { ...attempt, queued: !sent, sentAt: Date.now() };
    this.pending.set(attempt.requestId, updated);
    this.set({ bids: { ...this.state.bids, [attempt.auctionId]: updated } });
  }

  /** The full view a lean answer stands for: the room's view with `state` merged in. */
  private leanView(auctionId: string, state: AuctionStateView | null | undefined): AuctionView | null {
    const held = this.state.rooms[auctionId]?.auction;
    return state && held ? withState(held, state) : null;
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

  private onHello(m: Hello, fresh: boolean): void {
    this.clock.addCoarse(m.server_time, Date.now());
    this.set({ helloUser: m.user, clockOffset: this.clock.offset, clockRtt: this.clock.rtt });
    // The refresh time is on the server's clock: place it again now that the offset is known.
    if (fresh && m.user) this.scheduleRefresh();
    if (!fresh) {
      // The answer to `auth`: with the user, bids held for the fresh token go out now.
      this.authSent = false;
      if (!m.user) return;
      this.awaitingAuth = false;
      for (const attempt of this.pending.values()) if (attempt.queued) this.sendBid(attempt);
      return;
    }
    this.authSent = false;
    // A session the server does not know any more (expired, or another secret): watch
    // anonymously, hold bids, and try to renew it.
    this.awaitingAuth = Boolean(this.state.session && !m.user);
    if (this.awaitingAuth) void this.refresh();
    // Resubscribe to everything on the new connection, from the seq we hold.
    if (this.lobbyWatchers > 0) this.send({ type: "subscribe_lobby" });
    const rooms = [...this.roomWatchers.keys()];
    for (const id of rooms) this.subscribeRoom(id);
    // A ping after the subscribes: the server answers in order, so its pong arrives after
    // whatever the subscribes sent (the missed updates, or nothing when nothing was missed).
    const t = this.ping();
    this.barrier = t === null ? null : { clientTime: t, rooms };
    // More pings a little apart: the clock keeps the one with the smallest round trip.
    this.stopClockPings();
    for (let i = 1; i < CLOCK_BURST; i++) this.clockTimers.push(setTimeout(() => this.ping(), i * CLOCK_BURST_SPACING_MS));
    // Bids that were not answered are sent again with their own request_id: the server
    // answers a repeated id with the first answer and never places a second bid.
    for (const attempt of this.pending.values()) this.sendBid(attempt);
  }

  /** Send a ping now; returns its client_time (the pong echoes it), or null if not sent. */
  private ping(): number | null {
    const t = Date.now();
    if (!this.send({ type: "ping", client_time: t })) return null;
    this.lastClockPingAt = t;
    return t;
  }

  private stopClockPings(): void {
    for (const t of this.clockTimers) clearTimeout(t);
    this.clockTimers = [];
  }

  private onMessage(m: ServerMessage): void {
    switch (m.type) {
      case "heartbeat":
        return;
      case "pong": {
        this.clock.addSample(m.client_time, m.server_time, Date.now());
        this.set({ clockOffset: this.clock.offset, clockRtt: this.clock.rtt });
        const b = this.barrier;
        if (b && m.client_time === b.clientTime) {
          this.barrier = null;
          for (const id of b.rooms) this.dispatchRoom(id, { type: "confirmed" });
        }
        return;
      }
      case "snapshot":
        this.dispatchRoom(m.auction.id, {
          type: "snapshot",
          auction: m.auction,
          recent_bids: m.recent_bids,
          resync: m.resync,
          live: true,
        });
        this.dispatchLobby({ type: "view", auction: m.auction }, false);
        if (this.state.roomErrors[m.auction.id]) {
          const roomErrors = { ...this.state.roomErrors };
          delete roomErrors[m.auction.id];
          this.set({ roomErrors });
        }
        return;
      case "update": {
        if (m.decided_at != null) this.measure(m.auction_id, m.decided_at);
        const { type: _t, ...u } = m;
        this.dispatchRoom(u.auction_id, { type: "update", update: u });
        this.dispatchLobby({ type: "update", update: u });
        return;
      }
      case "closed": {
        this.measure(m.auction_id, m.closed_at);
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
      case "bid_result": {
        const { type: _t, ...r } = m;
        const done = this.resolveBid(r.request_id, {
          state: "done",
          outcome: r.outcome,
          serverMessage: r.message,
          auction: r.auction ?? this.leanView(r.auction_id, r.state),
        });
        // Once the user's bid was decided, losing the lead is news for them.
        if (done && r.outcome !== "not_found") this.dispatchRoom(r.auction_id, { type: "participated" });
        if (done && r.outcome === "accepted" && done.kind === "max") {
          this.dispatchRoom(r.auction_id, { type: "your_max", amount: r.auction?.your_max ?? done.amount });
        }
        return;
      }
      case "error": {
        if (m.code === "token_expired") {
          // The socket is watch-only now. A bid refused for it was not decided: it waits
          // for the fresh token and goes out again with the same request_id.
          this.awaitingAuth = true;
          if (m.request_id) this.holdBid(m.request_id, { queued: true });
          void this.refresh();
          return;
        }
        if (m.request_id && m.code === "unauthorized" && this.state.session) {
          // A bid that reached a socket whose token had just expired (or was not accepted):
          // nothing was decided. Hold it for a fresh token, as after token_expired.
          this.awaitingAuth = true;
          this.holdBid(m.request_id, { queued: true });
          void this.refresh();
          return;
        }
        if (m.request_id && m.code === "outcome_unknown") {
          // It may have been decided: never say lost or placed; ask again with the same id.
          this.holdBid(m.request_id, { uncertain: true, sentAt: Date.now() });
          return;
        }
        if (m.request_id) {
          this.resolveBid(m.request_id, { state: "error", errorCode: m.code, serverMessage: m.message });
          return;
        }
        if (m.code === "unauthorized" && this.authSent) {
          // The fresh token was refused: the session cannot go on.
          this.authSent = false;
          this.sessionEnded();
          return;
        }
        if (m.auction_id && m.code === "not_found") {
          this.set({ roomErrors: { ...this.state.roomErrors, [m.auction_id]: "not_found" } });
          return;
        }
        if (m.code === "not_found") {
          // A subscribe to an unknown auction without auction_id in the error: mark the rooms
          // still waiting for their first snapshot.
          const roomErrors = { ...this.state.roomErrors };
          for (const id of this.roomWatchers.keys()) if (!this.state.rooms[id]?.auction) roomErrors[id] = "not_found";
          this.set({ roomErrors });
        }
        return;
      }
      case "ok":
      case "hello":
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
    this.fixRoomGaps(id);
  }

  private fixRoomGaps(id: string): void {
    const room = this.state.rooms[id];
    if (!room || !this.roomWatchers.has(id)) return;
    if (room.gapSince === null && !room.needSnapshot) return;
    const asked = this.resyncAskedAt.get(id) ?? 0;
    if (Date.now() - asked < RESYNC_RETRY_MS) return;
    if (room.needSnapshot) this.subscribeRoom(id, true);
    else this.subscribeRoom(id);
  }

  private dispatchLobby(action: LobbyAction, fixGaps = true): void {
    const next = lobbyReducer(this.state.lobby, action);
    if (next === this.state.lobby) return;
    this.set({ lobby: next });
    if (fixGaps) this.fixLobbyGap();
  }

  private fixLobbyGap(): void {
    if (!this.state.lobby.gap || this.lobbyWatchers === 0) return;
    if (Date.now() - this.lobbyResyncAskedAt < RESYNC_RETRY_MS) return;
    this.lobbyResyncAskedAt = Date.now();
    // A repeated subscribe_lobby is answered with `ok` alone (the server sends the whole
    // lobby once per subscription): leave and join again to get a fresh one.
    this.send({ type: "unsubscribe_lobby" });
    this.send({ type: "subscribe_lobby" });
  }

  /** Once a second: retry unanswered bids and unresolved gaps. */
  private tick(): void {
    const now = Date.now();
    for (const attempt of [...this.pending.values()]) {
      if (now - attempt.firstSentAt > BID_GIVE_UP_MS) {
        this.resolveBid(attempt.requestId, {
          state: "error",
          errorCode: "no_answer",
          serverMessage: "No answer from the server.",
        });
      } else if (
        this.conn.status === "open" &&
        !this.awaitingAuth &&
        (attempt.queued || now - attempt.sentAt > (attempt.uncertain ? UNKNOWN_RETRY_MS : BID_RETRY_MS))
      ) {
        this.sendBid(attempt);
      }
    }
    for (const id of this.roomWatchers.keys()) {
      this.fixRoomGaps(id);
      // Past the end by the server clock and still no close: ask what we missed.
      const a = this.state.rooms[id]?.auction;
      if (a && a.status !== "closed" && this.conn.status === "open" && this.serverNow() > a.ends_at + OVERDUE_CLOSE_MS) {
        if (now - (this.resyncAskedAt.get(id) ?? 0) > OVERDUE_CLOSE_MS) this.subscribeRoom(id);
      }
    }
    this.fixLobbyGap();
    if (this.conn.status === "open" && now - this.lastClockPingAt >= CLOCK_PING_MS) this.ping();
    this.reportLatency(now);
  }

  /** Counts an update of a watched room as it arrives, once the clock has a ping sample
   *  (before that the offset's error is unknown). */
  private measure(auctionId: string, decidedAt: number): void {
    if (!this.roomWatchers.has(auctionId) || this.clock.rtt === null) return;
    this.latency.record(auctionId, decidedAt, this.serverNow());
  }

  /** Every 30 s: what the rooms received since the last report, with the clock's error
   *  bound (half the round trip of its sample). */
  private reportLatency(now: number): void {
    if (this.lastLatencyReport === 0) this.lastLatencyReport = now;
    if (now - this.lastLatencyReport < LATENCY_REPORT_MS || this.conn.status !== "open") return;
    const rtt = this.clock.rtt;
    if (rtt === null || this.latency.pending === 0) return;
    const report = this.latency.take(rtt / 2);
    if (report && this.send(report)) this.lastLatencyReport = now;
  }

  // ------------------------------------------------------------ admin helpers

  /** An auction view from an HTTP answer (admin actions): refresh the lobby entry. */
  noteAuction(a: AuctionView): void {
    this.dispatchLobby({ type: "view", auction: a }, false);
  }
}
