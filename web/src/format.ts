// Human-readable times and outcomes.

import type { BidAttempt } from "./client";
import { formatMoney } from "./money";
import type { AuctionView, BidView, SoftCloseView as SoftClose } from "@gavel/client";

/** Remaining time: "2d 03:04:05", "1:02:03", "04:59". Rounds up so "00:00" means over. */
export function formatRemaining(ms: number): string {
  if (ms <= 0) return "00:00";
  const total = Math.ceil(ms / 1000);
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${two(h)}:${two(m)}:${two(s)}`;
  if (h > 0) return `${h}:${two(m)}:${two(s)}`;
  return `${two(m)}:${two(s)}`;
}

/** Spoken form for screen readers: "4 minutes 59 seconds". */
export function spokenRemaining(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const parts: string[] = [];
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const add = (n: number, unit: string) => n && parts.push(`${n} ${unit}${n === 1 ? "" : "s"}`);
  add(d, "day");
  add(h, "hour");
  add(m, "minute");
  add(s, "second");
  return parts.join(" ") || "0 seconds";
}

/** A duration like "30 s", "2 min", "1 min 30 s", "2 h 5 min", "1 day". */
export function formatDuration(ms: number): string {
  const total = Math.round(ms / 1000);
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const parts: string[] = [];
  if (d) parts.push(`${d} day${d === 1 ? "" : "s"}`);
  if (h) parts.push(`${h} h`);
  if (m) parts.push(`${m} min`);
  if (s || parts.length === 0) parts.push(`${s} s`);
  return parts.join(" ");
}

/** A server timestamp shown on the local wall clock (corrected by the clock offset). */
export function formatLocalTime(serverMs: number, offset: number | null): string {
  const local = new Date(serverMs - (offset ?? 0));
  return local.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
}

export function formatLocalDateTime(serverMs: number, offset: number | null): string {
  const local = new Date(serverMs - (offset ?? 0));
  return local.toLocaleString(undefined, {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZoneName: "short",
  });
}

/**
 * The soft-close rule in the words of docs/rules.md ("Soft close"), for one auction.
 * `labelled` starts it with "Soft close:" (where no label stands beside it).
 */
export function softCloseRule(sc: SoftClose, labelled = true): string {
  if (sc.max_extension_ms === 0) {
    return `${labelled ? "Soft close is off" : "Off"} for this auction (its cap is 0): the end does not move.`;
  }
  const cap =
    sc.max_extension_ms === null || sc.max_extension_ms === undefined
      ? ""
      : `, never more than ${formatDuration(sc.max_extension_ms)} past the original end`;
  return (
    `${labelled ? "Soft close: a" : "A"} bid that moves the price in the last ${formatDuration(sc.window_ms)} before the end ` +
    `moves the end to ${formatDuration(sc.extend_ms)} after that bid${cap}.`
  );
}

export function closingReasonText(reason: string): string {
  switch (reason) {
    case "ended":
      return "Time is up";
    case "buy_now":
      return "Bought with Buy now";
    case "ended_early":
      return "Ended early by the auctioneer";
    case "cancelled":
      return "Cancelled by the auctioneer";
    default:
      return reason;
  }
}

export interface OutcomeText {
  tone: "ok" | "warn" | "bad" | "info";
  title: string;
  detail: string;
}

/**
 * Whether the answer to a bid still describes the auction as it is. Once the auction has
 * moved on (another bid, a proxy's answer), the standing ("You are winning" / "You have
 * been outbid") is the one current message and the old answer is no longer shown.
 */
export function answerIsCurrent(b: BidAttempt, current: AuctionView | null | undefined): boolean {
  if (b.state !== "done") return true;
  if (!current || !b.auction) return true;
  if (current.status === "closed" && b.auction.status !== "closed") return false;
  return b.auction.seq >= current.seq;
}

/**
 * The answer was `outbid` because a standing maximum answered the bid at once: the decision
 * moved the auction (its seq passed the one the bidder saw) to a price at or above the bid.
 * `entry` is the history entry at the answer's seq, when the room has it: a proxy's answer
 * is an `auto` entry.
 */
export function outbidByProxy(b: BidAttempt, entry?: BidView): boolean {
  const a = b.auction;
  if (b.outcome !== "outbid" || b.kind === "buy_now" || !a || a.price === null) return false;
  if (a.price < b.amount) return false;
  if (b.seenSeq !== undefined && a.seq <= b.seenSeq) return false;
  return entry === undefined || entry.kind === "auto";
}

/** Open with a reserve that the price has not reached: the leader would not win now. */
function belowReserve(a: AuctionView | null): boolean {
  return a !== null && a.status === "open" && a.has_reserve && !a.reserve_met;
}

/** The plain-words message for a bid attempt. */
export function outcomeText(b: BidAttempt, currency: string, me: string | null, entry?: BidView): OutcomeText {
  const money = (n: number | null | undefined) => formatMoney(n ?? null, currency);
  const a = b.auction ?? null;
  const amount = money(b.amount);
  const what = b.kind === "max" ? `maximum bid of ${amount}` : b.kind === "buy_now" ? `Buy now at ${amount}` : `bid of ${amount}`;
  if (b.state === "pending") {
    if (b.uncertain) {
      return {
        tone: "info",
        title: `Checking whether your ${what} was placed…`,
        detail:
          "The server's answer was lost on the way. We are asking again with the same request, so the bid is placed at most once; its real outcome follows.",
      };
    }
    return b.queued
      ? {
          tone: "info",
          title: `Waiting to send your ${what}…`,
          detail: "The connection is down. Your bid is sent as soon as it is back, and it can never be placed twice.",
        }
      : { tone: "info", title: `Sending your ${what}…`, detail: "" };
  }
  if (b.state === "error") {
    switch (b.errorCode) {
      case "rate_limited":
        return { tone: "warn", title: "Slow down", detail: "You are bidding too fast. Wait a moment and try again." };
      case "unauthorized":
      case "token_expired":
        return { tone: "bad", title: "Not signed in", detail: "Your session is not valid any more. Sign in again to bid; this bid was not placed." };
      case "unavailable":
        return { tone: "bad", title: "Bidding is paused", detail: "The server cannot take bids right now, and this bid was not placed. Try again in a moment." };
      case "no_answer":
        return {
          tone: "bad",
          title: "No answer",
          detail: "The server did not answer, so we cannot tell whether your bid was placed. Check the bid history.",
        };
      case "invalid_amount":
        return { tone: "bad", title: "Invalid amount", detail: b.serverMessage ?? "That amount cannot be used." };
      default:
        return { tone: "bad", title: "Bid not sent", detail: b.serverMessage ?? b.errorCode ?? "Unknown error." };
    }
  }
  const price = a?.price ?? null;
  const minBid = a?.min_bid;
  const next = minBid !== undefined ? ` The next bid must be at least ${money(minBid)}.` : "";
  switch (b.outcome) {
    case "accepted":
      if (b.kind === "max") {
        const leads = a?.leader?.id === me;
        return {
          tone: "ok",
          title: "Maximum bid set",
          detail: leads
            ? `You lead at ${money(price)}. We bid for you, one step at a time, up to ${amount}; nobody else sees your maximum.`
            : `We bid for you up to ${amount}.`,
        };
      }
      if (b.kind === "buy_now") return { tone: "ok", title: "You bought it!", detail: `Bought now for ${amount}.` };
      return {
        tone: "ok",
        title: "Bid accepted",
        detail: belowReserve(a)
          ? `Your bid of ${amount} leads, but the seller's reserve is not met yet: if the auction ended now, nobody would win.`
          : `Your bid of ${amount} leads.`,
      };
    case "outbid":
      if (outbidByProxy(b, entry)) {
        return {
          tone: "warn",
          title: "Outbid at once by another bidder's automatic bid",
          detail:
            `Another bidder had set a maximum above your ${what}, so the system bid for them at once ` +
            `(shown as “auto” in the history). The price is now ${money(price)}.${next}`,
        };
      }
      if (price !== null && price >= b.amount) {
        return {
          tone: "warn",
          title: "Someone bid more first",
          detail: `Another bid reached ${money(price)} before your ${what} arrived, so it was not placed.${next}`,
        };
      }
      return {
        tone: "warn",
        title: "Too low",
        detail: `Your ${what} was below the minimum bid, so it was not placed.${next}`,
      };
    case "stale":
      // The auction moved on because of the user's own earlier bid (its update had not
      // arrived yet when they clicked again).
      if (a?.leader && a.leader.id === me && a.status === "open") {
        return {
          tone: "info",
          title: belowReserve(a) ? "You already lead" : "You are already winning",
          detail:
            `Your earlier bid leads at ${money(price)}; this one was not placed.` +
            (belowReserve(a) ? " The reserve is not met yet." : ""),
        };
      }
      return {
        tone: "warn",
        title: "Someone bid first",
        detail:
          `The auction moved on before your ${what} arrived, so it was not placed.` +
          (price !== null
            ? a?.leader && a.leader.id !== me
              ? ` ${a.leader.name} leads at ${money(price)}.`
              : ` The price is now ${money(price)}.`
            : ""),
      };
    case "already_leading":
      if (belowReserve(a)) {
        return {
          tone: "info",
          title: "You already lead",
          detail: "A plain bid cannot raise your own lead. The reserve is not met yet: set a maximum, and once it reaches the reserve your price rises to it.",
        };
      }
      return { tone: "info", title: "You are already winning", detail: "You have the highest bid; bidding again would only raise your own price." };
    case "not_open":
      return { tone: "warn", title: "Not open yet", detail: "This auction has not started. Try again when it opens." };
    case "closed":
      return { tone: "bad", title: "Too late", detail: "The auction has ended; your bid was not placed." };
    case "buy_now_unavailable":
      return { tone: "warn", title: "Buy now is no longer available", detail: "Place a bid instead." };
    case "buy_now_price":
      return {
        tone: "warn",
        title: "Buy now price changed",
        detail: a?.buy_now ? `The buy-now price is ${money(a.buy_now)}.` : "Buy now is not offered.",
      };
    case "max_not_raised":
      return {
        tone: "warn",
        title: "Maximum not raised",
        detail: `A new maximum must be higher than your current one${a?.your_max ? ` (${money(a.your_max)})` : ""}.`,
      };
    case "not_found":
      return { tone: "bad", title: "No such auction", detail: "This auction does not exist." };
    default:
      return { tone: "info", title: b.outcome ?? "Answer", detail: b.serverMessage ?? "" };
  }
}

export function statusLabel(a: AuctionView, serverNow: number): string {
  if (a.status === "closed") return a.closing?.reason === "cancelled" ? "Cancelled" : "Closed";
  if (a.status === "scheduled" && serverNow < a.starts_at) return "Scheduled";
  if (serverNow >= a.ends_at) return "Closing";
  return "Open";
}

/** The text shown for a failed HTTP call: the server's message, or a plain one when it could not be reached. */
export function httpErrorText(err: { code: string; message: string }): string {
  if (err.code === "network") return "Cannot reach the server. Check your connection and try again.";
  if (err.code === "timeout") return "The server did not answer in time. Try again.";
  return err.message;
}

/** A latency histogram of `GET /api/admin/latency` in a few words: "p50 ≤ 5 ms · p95 ≤ 25 ms"
 *  (bucket bounds, so "at most"); "> 10 s" past the last bound; "—" without samples. */
export function latencyText(h: { count: number; p50_ms?: number | null; p95_ms?: number | null }, lastBoundMs: number): string {
  if (h.count === 0) return "—";
  const q = (v: number | null | undefined) => (v == null ? `> ${formatMs(lastBoundMs)}` : `≤ ${formatMs(v)}`);
  return `p50 ${q(h.p50_ms)} · p95 ${q(h.p95_ms)}`;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}
