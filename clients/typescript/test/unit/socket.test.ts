import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { LiveSocket, type SocketStatus } from "../../src/socket.js";
import { Sockets } from "./fakes.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

it("going offline drops the socket at once; coming online reconnects without waiting for the back-off", async () => {
  const sockets = new Sockets();
  const statuses: SocketStatus[] = [];
  let online = true;
  const s = new LiveSocket({
    url: () => "ws://gavel.test/ws",
    socket: sockets.factory,
    onHello: () => {},
    onMessage: () => {},
    onStatus: (i) => statuses.push(i.status),
    online: () => online,
    reconnect: { baseMs: 5_000, maxMs: 5_000, jitter: 0 },
  });
  s.start();
  sockets.last.accept();
  expect(s.status).toBe("open");
  online = false;
  s.wentOffline();
  expect(sockets.all[0]!.closedByClient).toBe(true);
  expect(statuses.at(-1)).toBe("offline");
  await vi.advanceTimersByTimeAsync(1_000);
  expect(sockets.all.length).toBe(1);
  online = true;
  s.wentOnline();
  expect(sockets.all.length).toBe(2);
  sockets.last.accept();
  expect(statuses).toEqual(["connecting", "open", "offline", "connecting", "open"]);
  s.stop();
  expect(s.status).toBe("closed");
});
