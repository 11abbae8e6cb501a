// Human-readable times and outcomes.

import type { BidAttempt } from "./client";
import { formatMoney } from "./money";
import type { AuctionView } from "./types";

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

/** A duration like "30 s", "2 min", "1 min 30 s". */
export function formatDuration(ms: number): string {
  const total = Math.round(ms / 1000);
  const m = Math.floor(total / 60);
  const s = total % 60;
  if (m && s) return `${m} min ${s} s`;
  if (m) return `${m} min`;
  return `${s} s`;
}

/** A server timestamp shown on the local wall clock (corrected by the clock offset). */
export function formatLocalTime(serverMs: number, offset: number | null): string {
  const local = new Date(serverMs - (offset ?? 0));
  return local.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function formatLocalDateTime(serverMs: number, offset: number | null): string {
  const local = new Date(serverMs - (offset ?? 0));
  return local.toLocaleString(undefined, {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
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
  /** Offer a one-click re-bid at this amount. */
  rebid?: { amount: number; expectedSeq?: number };
}

/** The plain-words message for a bid attempt. */
export function outcomeText(b: BidAttempt, currency: string, me: string | null, current?: AuctionView | null): OutcomeText {
  const money = (n: number | null | undefined) => formatMoney(n ?? null, currency);
  const a = b.auction ?? null;
  const amount = money(b.amount);
  const what = b.kind === "max" ? `maximum bid of ${amount}` : b.kind === "buy_now" ? `Buy now at ${amount}` : `bid of ${amount}`;
  if (b.state === "pending") {
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
        return { tone: "bad", title: "Not signed in", detail: "Your session is not valid any more. Sign in again to bid." };
      case "unavailable":
        return { tone: "bad", title: "Bidding is paused", detail: "The server cannot take bids right now. Try again in a moment." };
      case "no_answer":
        return {
          tone: "bad",
          title: "No answer",
          detail: "The server did not answer. Check the bid history to see whether your bid was placed.",
        };
      case "invalid_amount":
        return { tone: "bad", title: "Invalid amount", detail: b.serverMessage ?? "That amount cannot be used." };
      default:
        return { tone: "bad", title: "Bid not sent", detail: b.serverMessage ?? b.errorCode ?? "Unknown error." };
    }
  }
  const price = a?.price ?? null;
  const minBid = a?.min_bid;
  const rebid = a && a.status === "open" && minBid !== undefined ? { amount: minBid, expectedSeq: a.seq } : undefined;
  // An accepted bid that has since been beaten: say so rather than "accepted".
  if (
    b.outcome === "accepted" &&
    b.kind !== "buy_now" &&
    current &&
    current.status === "open" &&
    current.leader &&
    current.leader.id !== me &&
    current.seq > (a?.seq ?? 0)
  ) {
    return {
      tone: "warn",
      title: "Outbid since your bid",
      detail: `Your ${what} led, but someone has bid more since. The price is now ${money(current.price)}.`,
      rebid: { amount: current.min_bid, expectedSeq: current.seq },
    };
  }
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
      return { tone: "ok", title: "Bid accepted", detail: `Your bid of ${amount} leads.` };
    case "outbid":
      return {
        tone: "warn",
        title: "Outbid",
        detail:
          `Your ${what} was not enough` +
          (price !== null ? `: the price is now ${money(price)}` : "") +
          (minBid !== undefined ? `, the next bid must be at least ${money(minBid)}.` : "."),
        rebid,
      };
    case "stale":
      // The auction moved on because of the user's own earlier bid (its update had not
      // arrived yet when they clicked again).
      if (a?.leader && a.leader.id === me && a.status === "open") {
        return {
          tone: "info",
          title: "You are already winning",
          detail: `Your earlier bid leads at ${money(price)}; this one was not placed.`,
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
        rebid,
      };
    case "already_leading":
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
