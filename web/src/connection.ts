// One WebSocket to /ws with automatic reconnect (exponential backoff with jitter), a
// dead-connection watchdog, clock pings and a status for the UI.
//
// A dead connection must show within 3 s (docs/protocol.md, "heartbeat"): the server sends
// a frame at least every `hello.heartbeat_ms` (1 s by default), so ~2.5 intervals without
// any frame means the socket is dead even if the browser still calls it open. The browser's
// `offline` event drops the socket at once. Against a server that sends no heartbeats the
// client pings every second itself, so the same deadline holds.

import type { ClientMessage, ServerMessage } from "./types";

export type ConnStatus = "connecting" | "open" | "reconnecting" | "offline";

export interface ConnInfo {
  status: ConnStatus;
  /** Failed attempts since the last successful connection. */
  attempt: number;
  /** Local time of the next attempt while reconnecting. */
  retryAt: number | null;
}

export type Hello = Extract<ServerMessage, { type: "hello" }>;

/** The parts of the browser's WebSocket this class uses (a fake one in unit tests). */
export interface SocketLike {
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number): void;
}

export interface ConnectionOptions {
  url: () => string;
  onMessage: (msg: ServerMessage) => void;
  /**
   * Called with every `hello`. `fresh` is true for the first one on a new socket (resubscribe
   * here); a later one answers an `auth` on the same socket.
   */
  onHello: (msg: Hello, fresh: boolean) => void;
  onStatus: (info: ConnInfo) => void;
  /** Local clock, overridable in tests. */
  now?: () => number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** How often to ping for clock samples once connected. */
  clockPingMs?: number;
  /** Heartbeat interval assumed when `hello` names none (the client then pings this often). */
  fallbackHeartbeatMs?: number;
  /** A new socket that has not said `hello` after this long is given up. */
  helloTimeoutMs?: number;
  /** The WebSocket constructor (a fake one in unit tests). */
  socket?: (url: string) => SocketLike;
  /** Whether the browser believes it is online. */
  online?: () => boolean;
}

/** Missed heartbeat intervals (no frame at all) after which the socket counts as dead. */
export const MISSED_HEARTBEATS = 2.5;
const OPEN = 1;

/** Backoff for the n-th consecutive failure (0-based): base·2^n capped, with ±25% jitter. */
export function backoffDelay(attempt: number, base = 500, max = 10_000, rand: () => number = Math.random): number {
  const raw = Math.min(max, base * 2 ** Math.min(attempt, 16));
  return Math.round(raw * (0.75 + rand() * 0.5));
}

/** How long without any frame means dead, for a server heartbeat interval. */
export function deadAfterMs(heartbeatMs: number): number {
  return Math.round(heartbeatMs * MISSED_HEARTBEATS);
}

export class Connection {
  private ws: SocketLike | null = null;
  private stopped = true;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private burstTimers: ReturnType<typeof setTimeout>[] = [];
  private lastFrameAt = 0;
  private lastPingAt = 0;
  private socketStartedAt = 0;
  private greeted = false;
  /** The server's heartbeat interval from `hello`, or null if it sends none. */
  private serverHeartbeatMs: number | null = null;
  private info: ConnInfo = { status: "connecting", attempt: 0, retryAt: null };
  private readonly now: () => number;

  constructor(private readonly opts: ConnectionOptions) {
    this.now = opts.now ?? (() => Date.now());
  }

  get status(): ConnStatus {
    return this.info.status;
  }

  /** The current deadline without frames before the socket counts as dead (ms). */
  get deadlineMs(): number {
    return deadAfterMs(this.serverHeartbeatMs ?? this.opts.fallbackHeartbeatMs ?? 1_000);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (typeof window !== "undefined") {
      window.addEventListener("online", this.onOnline);
      window.addEventListener("offline", this.onOffline);
    }
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (typeof window !== "undefined") {
      window.removeEventListener("online", this.onOnline);
      window.removeEventListener("offline", this.onOffline);
    }
    this.clearTimers();
    this.drop(1000);
  }

  /** Drop the current socket and connect again at once (e.g. after a new sign-in). */
  restart(): void {
    this.stop();
    this.attempt = 0;
    this.start();
  }

  send(msg: ClientMessage): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN || this.info.status !== "open") return false;
    ws.send(JSON.stringify(msg));
    if (msg.type === "ping") this.lastPingAt = this.now();
    return true;
  }

  /** Send a ping now; returns its client_time (the pong echoes it), or null if not sent. */
  ping(): number | null {
    const t = this.now();
    return this.send({ type: "ping", client_time: t }) ? t : null;
  }

  /** A burst of pings: several clock samples, the client keeps the fastest. */
  pingBurst(count = 5, spacingMs = 120): void {
    for (let i = 1; i < count; i++) {
      this.burstTimers.push(setTimeout(() => this.ping(), i * spacingMs));
    }
  }

  /** Called by the browser's `offline` event (and by tests). */
  goneOffline(): void {
    if (this.stopped) return;
    // The socket may linger for tens of seconds before the browser gives up on it: treat it
    // as dead now, so nothing stale is shown as live.
    this.drop();
    this.attempt = Math.max(1, this.attempt);
    this.scheduleReconnect();
  }

  private setInfo(info: ConnInfo): void {
    this.info = info;
    this.opts.onStatus(info);
  }

  private isOnline(): boolean {
    if (this.opts.online) return this.opts.online();
    return typeof navigator === "undefined" || navigator.onLine !== false;
  }

  private onOnline = () => {
    if (this.info.status === "reconnecting" || this.info.status === "offline") {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.attempt = 0;
      this.connect();
    }
  };

  private onOffline = () => this.goneOffline();

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    for (const t of this.burstTimers) clearTimeout(t);
    this.burstTimers = [];
  }

  /** Forget the current socket without waiting for it (no close event is processed). */
  private drop(code?: number): void {
    const ws = this.ws;
    this.ws = null;
    this.greeted = false;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.onerror = null;
      try {
        ws.close(code);
      } catch {
        // already closed
      }
    }
  }

  private newSocket(url: string): SocketLike {
    if (this.opts.socket) return this.opts.socket(url);
    return new WebSocket(url) as unknown as SocketLike;
  }

  private connect(): void {
    if (this.stopped) return;
    this.clearTimers();
    this.drop();
    this.setInfo({ status: this.attempt === 0 ? "connecting" : "reconnecting", attempt: this.attempt, retryAt: null });
    let ws: SocketLike;
    try {
      ws = this.newSocket(this.opts.url());
    } catch {
      this.attempt++;
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.greeted = false;
    this.socketStartedAt = this.now();
    this.lastFrameAt = this.socketStartedAt;
    this.startWatchdog();
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
        const hb = msg.heartbeat_ms;
        this.serverHeartbeatMs = typeof hb === "number" && hb > 0 ? hb : null;
        if (fresh) {
          this.attempt = 0;
          this.setInfo({ status: "open", attempt: 0, retryAt: null });
        }
        this.opts.onHello(msg, fresh);
        if (fresh) {
          this.ping();
          this.pingBurst();
        }
        return;
      }
      if (msg.type === "heartbeat") return;
      this.opts.onMessage(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      const greeted = this.greeted;
      this.ws = null;
      this.greeted = false;
      this.attempt = greeted ? 1 : this.attempt + 1;
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows.
    };
  }

  private startWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = setInterval(() => this.checkAlive(), 100);
  }

  /** The watchdog's check, every 100 ms while a socket exists. */
  checkAlive(): void {
    const ws = this.ws;
    if (!ws) return;
    const now = this.now();
    if (!this.greeted) {
      if (now - this.socketStartedAt > (this.opts.helloTimeoutMs ?? 5_000)) this.giveUp();
      return;
    }
    const silentFor = now - this.lastFrameAt;
    if (silentFor > this.deadlineMs) {
      this.giveUp();
      return;
    }
    // Keep frames flowing: against a server without heartbeats ping every interval; with
    // heartbeats ping only for clock samples.
    const every = this.serverHeartbeatMs === null ? (this.opts.fallbackHeartbeatMs ?? 1_000) : (this.opts.clockPingMs ?? 15_000);
    if (now - this.lastPingAt >= every) this.ping();
  }

  private giveUp(): void {
    const greeted = this.greeted;
    this.drop();
    this.attempt = greeted ? 1 : this.attempt + 1;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.clearTimers();
    const delay = backoffDelay(Math.max(0, this.attempt - 1), this.opts.baseDelayMs, this.opts.maxDelayMs);
    this.setInfo({ status: this.isOnline() ? "reconnecting" : "offline", attempt: this.attempt, retryAt: this.now() + delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
