// A scripted server side for unit tests: sockets whose frames the test sends and reads.

import type { SocketLike } from "../../src/socket.js";
import type { AuctionView, ClientMessage, ServerMessage } from "../../src/generated/protocol.js";

export class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly sent: ClientMessage[] = [];
  closedByClient = false;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("not open");
    this.sent.push(JSON.parse(data) as ClientMessage);
  }

  close(): void {
    this.closedByClient = true;
    this.readyState = 3;
  }

  /** The server accepts the connection and says hello. */
  accept(user: { id: string; name: string } | null = { id: "u-1", name: "Alice" }, heartbeatMs = 1000, serverTime = Date.now()): void {
    this.readyState = 1;
    this.onopen?.({});
    this.receive({
      type: "hello",
      user: user ? { ...user, role: "bidder" } : null,
      server_time: serverTime,
      limits: { max_message_bytes: 4096, max_subscriptions: 100, bids_per_second: 10 },
      heartbeat_ms: heartbeatMs,
    });
  }

  receive(msg: ServerMessage): void {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }

  /** The server (or the network) closes the connection. */
  drop(): void {
    this.readyState = 3;
    this.onclose?.({});
  }

  /** Sent messages of one type. */
  of<T extends ClientMessage["type"]>(type: T): Extract<ClientMessage, { type: T }>[] {
    return this.sent.filter((m) => m.type === type) as Extract<ClientMessage, { type: T }>[];
  }
}

export class Sockets {
  readonly all: FakeSocket[] = [];
  readonly factory = (url: string): SocketLike => {
    const s = new FakeSocket(url);
    this.all.push(s);
    return s;
  };
  get last(): FakeSocket {
    const s = this.all[this.all.length - 1];
    if (!s) throw new Error("no socket opened");
    return s;
  }
}

export function auction(over: Partial<AuctionView> = {}): AuctionView {
  return {
    id: "a1",
    title: "Lot",
    description: "",
    currency: "USD",
    starting_price: 10000,
    increment: 1000,
    starts_at: 0,
    ends_at: 10_000_000_000_000,
    original_ends_at: 10_000_000_000_000,
    status: "open",
    price: null,
    leader: null,
    bid_count: 0,
    seq: 1,
    min_bid: 10000,
    has_reserve: false,
    reserve_met: null,
    buy_now: null,
    buy_now_available: false,
    closing: null,
    ...over,
  };
}

/** A fetch that answers from a table of (method path) → (status, body). */
export function fakeFetch(routes: Record<string, (body: unknown, headers: Record<string, string>) => [number, unknown]>) {
  const calls: { method: string; path: string; body: unknown; headers: Record<string, string> }[] = [];
  const fn = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? "GET";
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ method, path: url.pathname + url.search, body, headers });
    const route = routes[`${method} ${url.pathname}`];
    if (!route) return new Response(JSON.stringify({ error: { code: "not_found", message: "no route" } }), { status: 404 });
    const [status, data] = route(body, headers);
    return new Response(JSON.stringify(data), { status, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
  return { fn, calls };
}
