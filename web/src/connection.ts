// One WebSocket to /ws with automatic reconnect (exponential backoff with jitter),
// heartbeat pings (which double as clock samples) and a status for the UI.

import type { ClientMessage, ServerMessage } from "./types";

export type ConnStatus = "connecting" | "open" | "reconnecting" | "offline";

export interface ConnInfo {
  status: ConnStatus;
  /** Failed attempts since the last successful connection. */
  attempt: number;
  /** Local time of the next attempt while reconnecting. */
  retryAt: number | null;
}

export interface ConnectionOptions {
  url: () => string;
  onMessage: (msg: ServerMessage) => void;
  /** Called with every `hello` (a new connection is ready: resubscribe here). */
  onHello: (msg: Extract<ServerMessage, { type: "hello" }>) => void;
  onStatus: (info: ConnInfo) => void;
  /** Local clock, overridable in tests. */
  now?: () => number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  heartbeatMs?: number;
}

/** Backoff for the n-th consecutive failure (0-based): base·2^n capped, with ±25% jitter. */
export function backoffDelay(attempt: number, base = 500, max = 10_000, rand: () => number = Math.random): number {
  const raw = Math.min(max, base * 2 ** Math.min(attempt, 16));
  return Math.round(raw * (0.75 + rand() * 0.5));
}

export class Connection {
  private ws: WebSocket | null = null;
  private stopped = true;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private burstTimers: ReturnType<typeof setTimeout>[] = [];
  private lastMessageAt = 0;
  private info: ConnInfo = { status: "connecting", attempt: 0, retryAt: null };
  private readonly now: () => number;

  constructor(private readonly opts: ConnectionOptions) {
    this.now = opts.now ?? (() => Date.now());
  }

  get status(): ConnStatus {
    return this.info.status;
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
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000);
    }
  }

  /** Drop the current socket and connect again at once (e.g. after a new sign-in). */
  restart(): void {
    this.stop();
    this.attempt = 0;
    this.start();
  }

  send(msg: ClientMessage): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.info.status !== "open") return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** A burst of pings: several clock samples, the client keeps the fastest. */
  pingBurst(count = 5, spacingMs = 120): void {
    for (let i = 0; i < count; i++) {
      this.burstTimers.push(setTimeout(() => this.send({ type: "ping", client_time: this.now() }), i * spacingMs));
    }
  }

  private setInfo(info: ConnInfo): void {
    this.info = info;
    this.opts.onStatus(info);
  }

  private onOnline = () => {
    if (this.info.status === "reconnecting" || this.info.status === "offline") {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.connect();
    }
  };

  private onOffline = () => {
    // The socket may linger for a while; the heartbeat closes it if it is dead.
  };

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    for (const t of this.burstTimers) clearTimeout(t);
    this.burstTimers = [];
  }

  private connect(): void {
    if (this.stopped) return;
    this.clearTimers();
    this.setInfo({ status: this.attempt === 0 ? "connecting" : "reconnecting", attempt: this.attempt, retryAt: null });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let greeted = false;
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastMessageAt = this.now();
      let msg: ServerMessage;
      try {
        msg = JSON.parse(String(ev.data)) as ServerMessage;
      } catch {
        return;
      }
      if (msg.type === "hello") {
        greeted = true;
        this.attempt = 0;
        this.setInfo({ status: "open", attempt: 0, retryAt: null });
        this.startHeartbeat();
        this.opts.onHello(msg);
        this.pingBurst();
        return;
      }
      this.opts.onMessage(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!greeted) this.attempt++;
      else this.attempt = 1;
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows.
    };
  }

  private startHeartbeat(): void {
    const every = this.opts.heartbeatMs ?? 15_000;
    this.lastMessageAt = this.now();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      // No message at all (not even a pong) for two periods: the socket is dead.
      if (this.now() - this.lastMessageAt > every * 2 + 5_000) {
        const ws = this.ws;
        this.ws = null;
        if (ws) {
          ws.onclose = null;
          ws.onmessage = null;
          ws.close();
        }
        this.attempt = 1;
        this.scheduleReconnect();
        return;
      }
      this.send({ type: "ping", client_time: this.now() });
    }, every);
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.clearTimers();
    const delay = backoffDelay(Math.max(0, this.attempt - 1), this.opts.baseDelayMs, this.opts.maxDelayMs);
    const offline = typeof navigator !== "undefined" && navigator.onLine === false;
    this.setInfo({ status: offline ? "offline" : "reconnecting", attempt: this.attempt, retryAt: this.now() + delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
