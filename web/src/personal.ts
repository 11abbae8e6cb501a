// The signed-in user's personal channel (docs/protocol.md, "Personal channel"): where they
// stand in every auction they watch or bid on, and the notifications (`outbid`, `won`,
// `lost`, `ending_soon`) shown in the notification centre, the tab title and, when the
// user allowed it, the browser's Notification API. Plain TS: client.ts owns the instance.

import type { MyAuction, Notification } from "@gavel/client";

export interface PersonalState {
  /** Whether a `personal` answer has arrived since the last (re)subscribe. */
  ready: boolean;
  /** The followed auctions by id. */
  auctions: Record<string, MyAuction>;
  /** Newest first, at most MAX_KEPT. */
  notifications: Notification[];
  /** Notifications not seen yet (the bell's count and the tab title's badge). */
  unread: number;
  endingSoonMs: number;
}

export const initialPersonal: PersonalState = {
  ready: false,
  auctions: {},
  notifications: [],
  unread: 0,
  endingSoonMs: 60_000,
};

const MAX_KEPT = 50;
/** Ids shown before, kept across reloads and reconnects (the server may send one again
 *  after a reconnect to another node: each id is shown once). */
const SEEN_KEY = "gavel.notifications.seen";
const SEEN_MAX = 500;

function loadSeen(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(SEEN_KEY) ?? "[]");
    return Array.isArray(v) ? v.filter((x) => typeof x === "string") : [];
  } catch {
    return [];
  }
}

function saveSeen(ids: string[]): void {
  try {
    localStorage.setItem(SEEN_KEY, JSON.stringify(ids.slice(-SEEN_MAX)));
  } catch {
    // storage may be disabled: duplicates are then only filtered within the page
  }
}

export class SeenIds {
  private ids: string[] = loadSeen();
  private set = new Set(this.ids);

  /** True the first time an id is offered. */
  add(id: string): boolean {
    if (this.set.has(id)) return false;
    this.set.add(id);
    this.ids.push(id);
    if (this.ids.length > SEEN_MAX) this.set.delete(this.ids.shift()!);
    saveSeen(this.ids);
    return true;
  }
}

/** The status a notification puts its auction in. */
function statusAfter(n: Notification, prev: MyAuction | undefined): MyAuction["my_status"] | null {
  switch (n.kind) {
    case "outbid":
      return "outbid";
    case "won":
      return "won";
    case "lost":
      return "lost";
    default:
      return prev?.my_status ?? null;
  }
}

export function applyNotification(s: PersonalState, n: Notification, fresh: boolean): PersonalState {
  const prev = s.auctions[n.auction_id];
  const auctions = { ...s.auctions };
  const status = statusAfter(n, prev);
  const closed = n.kind === "won" || n.kind === "lost";
  auctions[n.auction_id] = {
    auction_id: n.auction_id,
    title: n.title,
    currency: n.currency,
    watched: prev?.watched ?? false,
    bid: prev?.bid ?? n.kind !== "ending_soon",
    my_status: status ?? "watching",
    status: closed ? "closed" : (prev?.status ?? "open"),
    price: n.price ?? null,
    ends_at: n.ends_at,
    seq: Math.max(prev?.seq ?? 0, n.seq),
    ...(n.next_steps ? { next_steps: n.next_steps } : prev?.next_steps ? { next_steps: prev.next_steps } : {}),
  };
  if (!fresh) return { ...s, auctions };
  return {
    ...s,
    auctions,
    notifications: [n, ...s.notifications].slice(0, MAX_KEPT),
    unread: s.unread + 1,
  };
}

/** The sentence a notification says. */
export function notificationText(n: Notification, money: (minor: number, currency: string) => string): string {
  const price = n.price != null ? money(n.price, n.currency) : null;
  switch (n.kind) {
    case "outbid":
      return `You were outbid on “${n.title}”${price ? `: now ${price}` : ""}.`;
    case "won":
      return `You won “${n.title}”${price ? ` for ${price}` : ""}.`;
    case "lost":
      return `“${n.title}” has ended: you did not win${price ? ` (sold for ${price})` : ""}.`;
    case "ending_soon":
      return `“${n.title}” ends soon${price ? ` (now ${price})` : ""}.`;
  }
}

/** Shows a system notification when the user allowed them and the page is not in view. */
export function systemNotify(n: Notification, text: string): void {
  if (typeof window === "undefined" || !("Notification" in window)) return;
  if (window.Notification.permission !== "granted") return;
  if (document.visibilityState === "visible" && document.hasFocus()) return;
  try {
    // `tag` = the stable id: the system shows one per id even if two tabs get it.
    const sys = new window.Notification("Gavel", { body: text, tag: n.id });
    sys.onclick = () => {
      window.focus();
      location.hash = `#/auction/${encodeURIComponent(n.auction_id)}`;
    };
  } catch {
    // some browsers allow notifications only from a service worker: the centre still has it
  }
}
