// One WebSocket to `/ws`, kept alive: reconnect with exponential back-off and jitter, and a
// watchdog that takes a socket for dead when nothing at all arrived for 2.5 heartbeat
// intervals (docs/protocol.md, "Heartbeats"). Against a server that sends no heartbeats
// (`heartbeat_ms: 0`) the socket pings at the fallback interval itself, so the same
// deadline holds. In a browser, the `offline` event drops the socket at once (it may linger
// for tens of seconds otherwise) and `online` reconnects without waiting for the back-off.
// No Node-only API: runs in browsers and in Node (pass `ws`'s WebSocket).
//
// A server that drains (a rolling restart) sends `{"type": "reconnect", "delay_ms"}` and
// closes with 1012 at that delay (docs/protocol.md). That is no failure: the socket opens
// its next connection to the same URL at once when the old one closes (or at the delay,
// whichever comes first), without back-off, and keeps reporting `open` meanwhile; only if
// the move takes longer than `quietReconnectMs` does the status show `reconnecting`.

import { backoffDelay, type BackoffOptions } from "./backoff.js";
import type { ClientMessage, ServerMessage } from "./generated/protocol.js";

/** The parts of a WebSocket used here (the browser's, `ws`'s, or a fake in tests). */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** Opens a socket to a URL. */
export type SocketFactory = (url: string) => SocketLike;

export type Hello = Extract<ServerMessage, { type: "hello" }>;

/** `offline`: reconnecting while the browser says it has no network. */
export type SocketStatus = "idle" | "connecting" | "open" | "reconnecting" | "offline" | "closed";

export interface SocketInfo {
  status: SocketStatus;
  /** Failed attempts since the last socket that said hello. */
  attempt: number;
  /** Local time of the next attempt, while reconnecting. */
  retryAt: number | null;
}

export interface LiveSocketOptions {
  /** The URL to connect to, read at every attempt (it carries the current token). */
  url: () => string;
  socket: SocketFactory;
  /** Every `hello`: `fresh` for the first on a socket (resubscribe then), else an `auth` answer. */
  onHello: (hello: Hello, fresh: boolean) => void;
  /** Every other message (heartbeats included). */
  onMessage: (msg: ServerMessage) => void;
  onStatus?: (info: SocketInfo) => void;
  reconnect?: BackoffOptions;
  /** Heartbeat interval assumed when the server names none (ms); the socket then pings this often. */
  fallbackHeartbeatMs?: number;
  /** Intervals without any frame after which the socket is dead. */
  missedHeartbeats?: number;
  /** A new socket that has not said `hello` within this is given up (ms). */
  helloTimeoutMs?: number;
  /** How often the watchdog looks (ms): a dead socket is noticed this late at most. */
  checkEveryMs?: number;
  /** Local clock (tests). */
  now?: () => number;
  /** Random source for jitter (tests). */
  random?: () => number;
  /** Whether the network is up (default: `navigator.onLine` where there is one). */
  online?: () => boolean;
  /**
   * After a server's `reconnect`, how long the move to a new connection may take (ms,
   * counted from the delay it gave) before the status shows it; until then it stays `open`.
   */
  quietReconnectMs?: number;
}

/** The browser's window events, where there is a window. */
const win = (globalThis as { window?: { addEventListener(t: string, f: () => void): void; removeEventListener(t: string, f: () => void): void } }).window;

const OPEN = 1;

export class LiveSocket {
  private ws: SocketLike | null = null;
  private running = false;
  private greeted = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private startedAt = 0;
  private lastFrameAt = 0;
  private lastSentAt = 0;
  private heartbeatMs: number | null = null;
  private info: SocketInfo = { status: "idle", attempt: 0, retryAt: null };
  /** The server asked this socket to move (`reconnect`): its close is expected. */
  private moving = false;
  private moveTimer: ReturnType<typeof setTimeout> | null = null;
  /** While set, `connecting`/`reconnecting` are not reported (a quick planned move). */
  private quietTimer: ReturnType<typeof setTimeout> | null = null;
  private withheld: SocketInfo | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: LiveSocketOptions) {
    this.now = opts.now ?? (() => Date.now());
  }

  get status(): SocketStatus {
    return this.info.status;
  }

  /** Open and said hello: messages can be sent. */
  get isOpen(): boolean {
    return this.info.status === "open" && this.ws?.readyState === OPEN;
  }

  /** How long without any frame counts as dead (ms). */
  get deadlineMs(): number {
    const every = this.heartbeatMs ?? this.opts.fallbackHeartbeatMs ?? 1_000;
    return Math.round(every * (this.opts.missedHeartbeats ?? 2.5));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    win?.addEventListener("online", this.wentOnline);
    win?.addEventListener("offline", this.wentOffline);
    this.connect();
  }

  /** Close for good (until `start`). */
  stop(): void {
    this.running = false;
    this.endQuiet(false);
    win?.removeEventListener("online", this.wentOnline);
    win?.removeEventListener("offline", this.wentOffline);
    this.clearTimers();
    this.drop(1000);
    this.setInfo({ status: "closed", attempt: 0, retryAt: null });
  }

  /** Drop the current socket and connect again now (e.g. after a sign-in). */
  restart(): void {
    this.stop();
    this.start();
  }

  /** Sends a message if the socket is open; false otherwise. */
  send(msg: ClientMessage): boolean {
    const ws = this.ws;
    if (!ws || !this.greeted || ws.readyState !== OPEN) return false;
    try {
      ws.send(JSON.stringify(msg));
    } catch {
      return false;
    }
    this.lastSentAt = this.now();
    return true;
  }

  /** The network went away (the browser's `offline` event; public for tests and other hosts). */
  readonly wentOffline = (): void => {
    if (this.running && this.ws) this.failed();
  };

  /** The network is back: reconnect now instead of at the end of the back-off. */
  readonly wentOnline = (): void => {
    if (!this.running || this.ws) return;
    this.attempt = 0;
    this.connect();
  };

  private isOnline(): boolean {
    if (this.opts.online) return this.opts.online();
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
    return nav?.onLine !== false;
  }

  private setInfo(info: SocketInfo): void {
    if (this.quietTimer && (info.status === "connecting" || info.status === "reconnecting")) {
      // A planned move in progress: shown only if it outlasts the quiet period.
      this.withheld = info;
      return;
    }
    this.withheld = null;
    this.info = info;
    this.opts.onStatus?.(info);
  }

  /** The server's `reconnect`: move to a new connection when this one closes, or at `delayMs`. */
  private moveLater(ws: SocketLike, delayMs: number): void {
    this.moving = true;
    if (this.moveTimer) clearTimeout(this.moveTimer);
    this.moveTimer = setTimeout(() => {
      if (this.ws === ws) this.moveNow();
    }, delayMs);
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this.endQuiet(true), delayMs + (this.opts.quietReconnectMs ?? 3_000));
  }

  /** Drops the socket the server asked us to leave and connects again at once. */
  private moveNow(): void {
    this.moving = false;
    if (this.moveTimer) clearTimeout(this.moveTimer);
    this.moveTimer = null;
    this.attempt = 0;
    this.drop(1000);
    this.connect();
  }

  /** The quiet period is over: report what was withheld (if `report`). */
  private endQuiet(report: boolean): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = null;
    if (this.moveTimer) clearTimeout(this.moveTimer);
    this.moveTimer = null;
    this.moving = false;
    const w = this.withheld;
    this.withheld = null;
    if (report && w) this.setInfo(w);
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  /** Forgets the current socket without waiting for its close event. */
  private drop(code?: number): void {
    const ws = this.ws;
    this.ws = null;
    this.greeted = false;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code);
    } catch {
      // already closed
    }
  }

  private connect(): void {
    if (!this.running) return;
    this.clearTimers();
    this.drop();
    this.setInfo({ status: this.attempt === 0 ? "connecting" : "reconnecting", attempt: this.attempt, retryAt: null });
    let ws: SocketLike;
    try {
      ws = this.opts.socket(this.opts.url());
    } catch {
      this.failed();
      return;
    }
    this.ws = ws;
    this.startedAt = this.lastFrameAt = this.now();
    this.watchdog = setInterval(() => this.checkAlive(), this.opts.checkEveryMs ?? 100);
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = this.now();
      let msg: ServerMessage;
      try {
        msg = JSON.parse(String(ev.data)) as ServerMessage;
      } catch {
        return;
      }
      if (msg.type === "hello") {
        const fresh = !this.greeted;
        this.greeted = true;
        this.heartbeatMs = msg.heartbeat_ms > 0 ? msg.heartbeat_ms : null;
        if (fresh) {
          this.attempt = 0;
          const moved = this.quietTimer !== null && this.info.status === "open";
          this.endQuiet(false);
          // After a quiet move the status never left `open`: nothing to report.
          if (!moved) this.setInfo({ status: "open", attempt: 0, retryAt: null });
        }
        this.opts.onHello(msg, fresh);
        return;
      }
      if (msg.type === "reconnect") this.moveLater(ws, Math.max(0, msg.delay_ms));
      this.opts.onMessage(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      if (this.moving) this.moveNow();
      else this.failed();
    };
    ws.onerror = () => {
      // onclose follows
    };
  }

  /** The watchdog's check (every `checkEveryMs` while a socket exists; public for tests). */
  checkAlive(): void {
    if (!this.ws) return;
    const now = this.now();
    if (!this.greeted) {
      if (now - this.startedAt > (this.opts.helloTimeoutMs ?? 5_000)) this.failed();
      return;
    }
    if (now - this.lastFrameAt > this.deadlineMs) {
      this.failed();
      return;
    }
    // Without server heartbeats, keep frames flowing ourselves: the pong is a frame.
    const every = this.opts.fallbackHeartbeatMs ?? 1_000;
    if (this.heartbeatMs === null && now - this.lastSentAt >= every) {
      this.send({ type: "ping", client_time: now });
    }
  }

  private failed(): void {
    // A socket that fails in the middle of a move is no longer moving: its next attempt
    // backs off as usual (still unreported until the quiet period ends).
    this.moving = false;
    const wasGreeted = this.greeted;
    this.drop();
    this.clearTimers();
    if (!this.running) return;
    this.attempt = wasGreeted ? 1 : this.attempt + 1;
    const delay = backoffDelay(this.attempt - 1, this.opts.reconnect, this.opts.random);
    this.setInfo({ status: this.isOnline() ? "reconnecting" : "offline", attempt: this.attempt, retryAt: this.now() + delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
