// The signed receipts of the bids accepted in this browser (docs/verification.md, "Signed
// receipts"), kept per auction in localStorage so that they outlive the page, the session
// and a restart of the browser: a bidder can download them (the JSON `gavel verify
// --receipt` reads) and the room checks them against the published log after the close.
//
// Storage: `localStorage["gavel.receipts.v1"]` = `{ [auctionId]: Receipt[] }`, at most
// MAX_AUCTIONS auctions (the ones with the newest receipts are kept). A receipt names its
// bidder only by id and the amount the log makes public anyway: nothing secret is stored.

import type { Receipt } from "@gavel/client";

export const RECEIPTS_KEY = "gavel.receipts.v1";
/** Auctions whose receipts are kept; beyond this the oldest go. */
export const MAX_AUCTIONS = 200;

export type ReceiptStore = Record<string, Receipt[]>;

function isReceipt(r: unknown): r is Receipt {
  const x = r as Receipt;
  return (
    !!x &&
    typeof x === "object" &&
    typeof x.auction_id === "string" &&
    typeof x.seq === "number" &&
    typeof x.amount === "number" &&
    typeof x.signature === "string" &&
    typeof x.hash === "string"
  );
}

/** What this browser kept (an empty store when storage is off or holds something else). */
export function loadReceipts(storage: Pick<Storage, "getItem"> | null = safeStorage()): ReceiptStore {
  try {
    const raw = storage?.getItem(RECEIPTS_KEY);
    if (!raw) return {};
    const parsed = JSON.parse(raw) as unknown;
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return {};
    const out: ReceiptStore = {};
    for (const [id, list] of Object.entries(parsed as Record<string, unknown>)) {
      if (Array.isArray(list)) {
        const rs = list.filter(isReceipt);
        if (rs.length) out[id] = rs;
      }
    }
    return out;
  } catch {
    return {};
  }
}

export function saveReceipts(store: ReceiptStore, storage: Pick<Storage, "setItem"> | null = safeStorage()): void {
  try {
    storage?.setItem(RECEIPTS_KEY, JSON.stringify(store));
  } catch {
    // Storage full or off: the receipts last as long as the page.
  }
}

/**
 * The store with `r` added to its auction, in seq order. A repeat (a retried request is
 * answered with the very same receipt) changes nothing and returns the same store.
 */
export function addReceipt(store: ReceiptStore, r: Receipt): ReceiptStore {
  const list = store[r.auction_id] ?? [];
  if (list.some((x) => x.seq === r.seq && x.bidder_id === r.bidder_id && x.signature === r.signature)) return store;
  const next: ReceiptStore = { ...store, [r.auction_id]: [...list, r].sort((a, b) => a.seq - b.seq) };
  const ids = Object.keys(next);
  if (ids.length <= MAX_AUCTIONS) return next;
  const newest = (id: string) => Math.max(...next[id]!.map((x) => x.at));
  for (const id of ids.sort((a, b) => newest(a) - newest(b)).slice(0, ids.length - MAX_AUCTIONS)) delete next[id];
  return next;
}

/** The file "Download receipts" saves: a JSON array of receipts, as `gavel verify --receipt` reads it. */
export function receiptsFile(auctionId: string, receipts: Receipt[]): { name: string; text: string } {
  const safe = auctionId.replace(/[^A-Za-z0-9._-]/g, "_");
  return { name: `gavel-receipts-${safe}.json`, text: `${JSON.stringify(receipts, null, 2)}\n` };
}

function safeStorage(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null;
  }
}
