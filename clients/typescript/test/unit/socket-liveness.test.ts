// Finding a dead connection within 3 s (docs/protocol.md, "Heartbeats"): the cases the web
// client's own connection was tested with (web/test/connection.test.ts) before it switched
// to this package's LiveSocket.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LiveSocket, type SocketStatus } from "../../src/socket.js";
import type { ServerMessage } from "../../src/generated/protocol.js";
import { Sockets } from "./fakes.js";

describe("LiveSocket: finding a dead connection", () => {
  let sockets: Sockets;
  let statuses: SocketStatus[];
  let messages: ServerMessage[];
  let fresh: boolean[];
  let s: LiveSocket;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    sockets = new Sockets();
    statuses = [];
    messages = [];
    fresh = [];
    s = new LiveSocket({
      url: () => "ws://gavel.test/ws",
      socket: sockets.factory,
      online: () => true,
      onHello: (_m, f) => fresh.push(f),
      onMessage: (m) => messages.push(m),
      onStatus: (i) => statuses.push(i.status),
      reconnect: { baseMs: 100, maxMs: 100, jitter: 0 },
    });
  });
  afterEach(() => {
    s.stop();
    vi.useRealTimers();
  });

  it("gives up on a socket 2.5 server heartbeats after its last frame, and connects again", () => {
    s.start();
    sockets.last.accept(null, 1_000);
    expect(s.status).toBe("open");
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(1_000);
      sockets.last.receive({ type: "heartbeat", server_time: Date.now() });
    }
    expect(s.status).toBe("open");
    expect(messages.map((m) => m.type)).toEqual(["heartbeat", "heartbeat", "heartbeat", "heartbeat", "heartbeat"]);
    // Then silence: dead after 2.5 s, not before.
    vi.advanceTimersByTime(2_250);
    expect(s.status).toBe("open");
    vi.advanceTimersByTime(500);
    expect(s.status).toBe("reconnecting");
    expect(sockets.all[0]!.closedByClient).toBe(true);
    vi.advanceTimersByTime(150);
    expect(sockets.all.length).toBe(2);
  });

  it("follows the server's interval: 400 ms heartbeats mean dead after 1 s", () => {
    s.start();
    sockets.last.accept(null, 400);
    expect(s.deadlineMs).toBe(1_000);
    vi.advanceTimersByTime(900);
    expect(s.status).toBe("open");
    vi.advanceTimersByTime(350);
    expect(s.status).toBe("reconnecting");
  });

  it("against a server without heartbeats, pings every second and is dead 2.5 s after the last frame", () => {
    s.start();
    sockets.last.accept(null, 0);
    expect(s.deadlineMs).toBe(2_500);
    vi.advanceTimersByTime(1_100);
    const pings = sockets.last.of("ping").length;
    expect(pings).toBeGreaterThan(0);
    vi.advanceTimersByTime(1_000);
    expect(sockets.last.of("ping").length).toBeGreaterThan(pings);
    // The pongs keep it alive...
    sockets.last.receive({ type: "pong", client_time: Date.now(), server_time: Date.now() });
    vi.advanceTimersByTime(2_000);
    expect(s.status).toBe("open");
    // ... and their absence does not.
    vi.advanceTimersByTime(750);
    expect(s.status).toBe("reconnecting");
  });

  it("gives up on a new socket that never says hello", () => {
    s.start();
    vi.advanceTimersByTime(4_900);
    expect(sockets.all[0]!.closedByClient).toBe(false);
    vi.advanceTimersByTime(350);
    expect(sockets.all[0]!.closedByClient).toBe(true);
    expect(s.status).toBe("reconnecting");
  });

  it("tells a second hello (the answer to auth) from a new connection", () => {
    s.start();
    sockets.last.accept();
    sockets.last.accept();
    expect(fresh).toEqual([true, false]);
    expect(statuses).toEqual(["connecting", "open"]);
  });
});
