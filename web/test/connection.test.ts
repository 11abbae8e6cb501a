import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Connection, backoffDelay, deadAfterMs, type ConnInfo, type SocketLike } from "../src/connection";
import type { ServerMessage } from "../src/types";

describe("backoffDelay", () => {
  it("doubles from the base up to the cap, with ±25% jitter", () => {
    const mid = () => 0.5; // no jitter
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, 500, 10_000, mid))).toEqual([
      500, 1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
    expect(backoffDelay(0, 500, 10_000, () => 0)).toBe(375);
    expect(backoffDelay(0, 500, 10_000, () => 0.999999)).toBe(625);
    expect(backoffDelay(1000, 500, 10_000, mid)).toBe(10_000);
  });
});

/** A socket that never touches the network: the test plays the server. */
class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: { type: string; [k: string]: unknown }[] = [];
  closed = false;
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.closed = true;
    this.readyState = 3;
  }
  /** The server says something. */
  frame(msg: object) {
    this.readyState = 1;
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  hello(extra: object = {}) {
    this.frame({ type: "hello", user: null, server_time: Date.now(), limits: { max_message_bytes: 4096, max_subscriptions: 100, bids_per_second: 10 }, ...extra });
  }
}

describe("Connection: finding a dead connection", () => {
  let sockets: FakeSocket[];
  let statuses: ConnInfo["status"][];
  let messages: ServerMessage[];
  let online: boolean;
  let conn: Connection;

  beforeEach(() => {
    vi.useFakeTimers();
    sockets = [];
    statuses = [];
    messages = [];
    online = true;
    conn = new Connection({
      url: () => "ws://test/ws",
      socket: (url) => {
        const s = new FakeSocket(url);
        sockets.push(s);
        return s;
      },
      online: () => online,
      onHello: () => {},
      onMessage: (m) => messages.push(m),
      onStatus: (i) => statuses.push(i.status),
      baseDelayMs: 100,
      maxDelayMs: 100,
    });
  });
  afterEach(() => {
    conn.stop();
    vi.useRealTimers();
  });

  it("gives up on a socket 2.5 server heartbeats after its last frame", () => {
    expect(deadAfterMs(1_000)).toBe(2_500);
    conn.start();
    sockets[0].hello({ heartbeat_ms: 1_000 });
    expect(conn.status).toBe("open");
    // Heartbeats keep it alive, and are not handed to the app.
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(1_000);
      sockets[0].frame({ type: "heartbeat", server_time: Date.now() });
    }
    expect(conn.status).toBe("open");
    expect(messages).toEqual([]);
    // Then silence: dead after 2.5 s, not before.
    vi.advanceTimersByTime(2_250);
    expect(conn.status).toBe("open");
    vi.advanceTimersByTime(500);
    expect(conn.status).toBe("reconnecting");
    expect(sockets[0].closed).toBe(true);
    // And it connects again.
    vi.advanceTimersByTime(200);
    expect(sockets.length).toBe(2);
  });

  it("follows the server's interval: 400 ms heartbeats mean dead after 1 s", () => {
    conn.start();
    sockets[0].hello({ heartbeat_ms: 400 });
    expect(conn.deadlineMs).toBe(1_000);
    vi.advanceTimersByTime(1_250);
    expect(conn.status).toBe("reconnecting");
  });

  it("against a server without heartbeats, pings every second and is dead 2.5 s after the last frame", () => {
    conn.start();
    sockets[0].hello();
    expect(conn.deadlineMs).toBe(2_500);
    vi.advanceTimersByTime(1_100);
    const pings = sockets[0].sent.filter((m) => m.type === "ping").length;
    vi.advanceTimersByTime(1_000);
    expect(sockets[0].sent.filter((m) => m.type === "ping").length).toBeGreaterThan(pings);
    // The pongs keep it alive...
    sockets[0].frame({ type: "pong", client_time: Date.now(), server_time: Date.now() });
    vi.advanceTimersByTime(2_000);
    expect(conn.status).toBe("open");
    // ... and their absence does not.
    vi.advanceTimersByTime(750);
    expect(conn.status).toBe("reconnecting");
  });

  it("drops the socket at once when the browser goes offline, and says offline", () => {
    conn.start();
    sockets[0].hello({ heartbeat_ms: 1_000 });
    online = false;
    conn.goneOffline();
    expect(conn.status).toBe("offline");
    expect(sockets[0].closed).toBe(true);
    expect(statuses.at(-1)).toBe("offline");
  });

  it("gives up on a new socket that never says hello", () => {
    conn.start();
    vi.advanceTimersByTime(5_250);
    expect(sockets[0].closed).toBe(true);
    expect(conn.status).toBe("reconnecting");
  });

  it("tells a second hello (the answer to auth) from a new connection", () => {
    const fresh: boolean[] = [];
    const c = new Connection({
      url: () => "ws://test/ws",
      socket: (url) => {
        const s = new FakeSocket(url);
        sockets.push(s);
        return s;
      },
      online: () => true,
      onHello: (_m, f) => fresh.push(f),
      onMessage: () => {},
      onStatus: () => {},
    });
    c.start();
    sockets[0].hello();
    sockets[0].hello();
    c.stop();
    expect(fresh).toEqual([true, false]);
  });
});
