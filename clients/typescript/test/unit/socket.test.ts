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

function moving(quietReconnectMs?: number) {
  const sockets = new Sockets();
  const statuses: SocketStatus[] = [];
  const hellos: boolean[] = [];
  const s = new LiveSocket({
    url: () => "ws://gavel.test/ws",
    socket: sockets.factory,
    onHello: (_h, fresh) => hellos.push(fresh),
    onMessage: () => {},
    onStatus: (i) => statuses.push(i.status),
    reconnect: { baseMs: 5_000, maxMs: 5_000, jitter: 0 },
    quietReconnectMs,
  });
  return { sockets, statuses, hellos, s };
}

it("a server's reconnect moves to a new socket when the old one closes (1012), at once and without a status change", async () => {
  const { sockets, statuses, hellos, s } = moving();
  s.start();
  sockets.last.accept();
  sockets.last.receive({ type: "reconnect", delay_ms: 2_000, reason: "draining" });
  // The old socket keeps serving until the server closes it.
  await vi.advanceTimersByTimeAsync(1_500);
  expect(sockets.all.length).toBe(1);
  expect(s.isOpen).toBe(true);
  sockets.last.drop(); // the server's close 1012, before the delay
  expect(sockets.all.length).toBe(2); // no back-off
  expect(sockets.all[1]!.url).toBe("ws://gavel.test/ws"); // the same URL
  expect(s.status).toBe("open");
  sockets.last.accept();
  expect(hellos).toEqual([true, true]); // the new socket's hello is fresh: resubscribe
  expect(statuses).toEqual(["connecting", "open"]);
  s.stop();
});

it("a server's reconnect moves at its delay when the server has not closed by then", async () => {
  const { sockets, statuses, s } = moving();
  s.start();
  sockets.last.accept();
  sockets.last.receive({ type: "reconnect", delay_ms: 800, reason: "draining" });
  await vi.advanceTimersByTimeAsync(799);
  expect(sockets.all.length).toBe(1);
  await vi.advanceTimersByTimeAsync(1);
  expect(sockets.all[0]!.closedByClient).toBe(true);
  expect(sockets.all.length).toBe(2);
  sockets.last.accept();
  expect(statuses).toEqual(["connecting", "open"]);
  s.stop();
});

it("a move that cannot connect shows reconnecting only after the quiet period, then backs off as usual", async () => {
  const { sockets, statuses, s } = moving(3_000);
  s.start();
  sockets.last.accept();
  sockets.last.receive({ type: "reconnect", delay_ms: 0, reason: "draining" });
  sockets.last.drop();
  expect(sockets.all.length).toBe(2);
  sockets.last.drop(); // nobody listens (a single node restarting)
  await vi.advanceTimersByTimeAsync(2_900);
  expect(statuses).toEqual(["connecting", "open"]);
  expect(s.status).toBe("open");
  await vi.advanceTimersByTimeAsync(200);
  expect(statuses).toEqual(["connecting", "open", "reconnecting"]);
  // The ordinary back-off (5 s here) from the failed attempt.
  await vi.advanceTimersByTimeAsync(2_000);
  expect(sockets.all.length).toBe(3);
  sockets.last.accept();
  expect(statuses.at(-1)).toBe("open");
  s.stop();
});

it("without a reconnect message a close is a failure, shown at once (the move is not the default)", async () => {
  const { sockets, statuses, s } = moving();
  s.start();
  sockets.last.accept();
  sockets.last.drop();
  expect(statuses.at(-1)).toBe("reconnecting");
  expect(sockets.all.length).toBe(1); // waits for its back-off
  s.stop();
});
