// What the <gavel-auction> box shows, as plain data: computed from the auction's state, the
// viewer and the server's time (measured offset), so it is tested without a browser
// (web/test/embed.test.ts). gavel-auction.ts puts it on the page.

import type { AuctionView, BidResult, UserView } from "@gavel/client";
import { formatRemaining, spokenRemaining } from "../src/format";
import { formatMoney } from "../src/money";

export interface BoxView {
  title: string;
  /** "Current bid", "Starting price", "Sold for", ... */
  priceLabel: string;
  price: string;
  /** Who leads, as the viewer should read it ("You are the highest bidder", "3 bids"). */
  leader: string;
  /** "Ends in", "Starts in", "Ended". */
  clockLabel: string;
  /** "04:59" (empty when there is nothing to count down). */
  clock: string;
  /** For screen readers: "4 minutes 59 seconds". */
  clockSpoken: string;
  /** The button's text, e.g. "Bid $130.00". */
  button: string;
  /** The button's accessible description: the next minimum, or why it cannot be used. */
  buttonHint: string;
  buttonEnabled: boolean;
  /** The smallest acceptable bid, in minor units (what the button bids). */
  nextMinimum: number | null;
  /** The box's phase, set as `data-state` for styling and tests. */
  phase: "loading" | "scheduled" | "open" | "closing" | "closed";
}

export interface BoxInput {
  auction: AuctionView | null;
  /** The signed-in viewer (null: watching anonymously). */
  user: UserView | null;
  /** Estimated server time now (ms). */
  serverNow: number;
  /** A bid of this viewer is waiting for its answer. */
  bidding: boolean;
  /** Whether the page can give a token (a `token` attribute or `getToken`). */
  canSignIn: boolean;
  locale?: string;
}

export function boxView(i: BoxInput): BoxView {
  const a = i.auction;
  if (!a) {
    return {
      title: "Loading the auction…",
      priceLabel: "Current bid",
      price: "—",
      leader: "",
      clockLabel: "",
      clock: "",
      clockSpoken: "",
      button: "Bid",
      buttonHint: "Loading the auction…",
      buttonEnabled: false,
      nextMinimum: null,
      phase: "loading",
    };
  }
  const money = (m: number | null | undefined) => formatMoney(m, a.currency, i.locale);
  const mine = i.user !== null && a.leader?.id === i.user.id;
  const bids = `${a.bid_count} bid${a.bid_count === 1 ? "" : "s"}`;
  if (a.status === "closed") {
    const c = a.closing;
    const sold = c?.winner && c.final_price !== null && c.reason !== "cancelled";
    const won = sold && i.user !== null && c!.winner!.id === i.user.id;
    return {
      title: a.title,
      priceLabel: sold ? "Sold for" : c?.reason === "cancelled" ? "Cancelled" : "Ended without a sale",
      price: sold ? money(c!.final_price) : "—",
      leader: won ? "You won this auction" : sold ? `Won by ${c!.winner!.name} · ${bids}` : bids,
      clockLabel: "Ended",
      clock: "",
      clockSpoken: "The auction has ended",
      button: "Auction ended",
      buttonHint: "Bidding has closed.",
      buttonEnabled: false,
      nextMinimum: null,
      phase: "closed",
    };
  }
  const notYet = a.status === "scheduled" && i.serverNow < a.starts_at;
  const remaining = notYet ? a.starts_at - i.serverNow : a.ends_at - i.serverNow;
  const over = !notYet && remaining <= 0;
  const next = a.min_bid;
  let buttonHint = `The next bid must be at least ${money(next)}.`;
  let enabled = !notYet && !over && !i.bidding && !mine;
  if (notYet) buttonHint = "Bidding has not started yet.";
  else if (over) buttonHint = "The auction is closing.";
  else if (mine) buttonHint = "You are the highest bidder.";
  else if (i.bidding) buttonHint = "Placing your bid…";
  else if (!i.user && !i.canSignIn) {
    buttonHint = "Sign in on this site to bid.";
    enabled = false;
  } else if (!i.user) buttonHint = `Sign in to bid. The next bid must be at least ${money(next)}.`;
  return {
    title: a.title,
    priceLabel: a.price === null ? "Starting price" : "Current bid",
    price: money(a.price ?? a.starting_price),
    leader: mine ? `You are the highest bidder · ${bids}` : a.leader ? `${a.leader.name} leads · ${bids}` : "No bids yet",
    clockLabel: notYet ? "Starts in" : over ? "Closing" : "Ends in",
    clock: over ? "00:00" : formatRemaining(remaining),
    clockSpoken: notYet ? `Starts in ${spokenRemaining(remaining)}` : over ? "Closing now" : `Ends in ${spokenRemaining(remaining)}`,
    button: i.bidding ? "Bidding…" : `Bid ${money(next)}`,
    buttonHint,
    buttonEnabled: enabled,
    nextMinimum: next,
    phase: notYet ? "scheduled" : over ? "closing" : "open",
  };
}

/** The line shown after a bid was answered. */
export function bidMessage(r: BidResult, currency: string, locale?: string): { tone: "good" | "warn"; text: string } {
  const price = r.auction ? formatMoney(r.auction.price, currency, locale) : null;
  const next = r.auction ? formatMoney(r.auction.min_bid, currency, locale) : null;
  switch (r.outcome) {
    case "accepted":
      return { tone: "good", text: "Your bid was placed. You are the highest bidder." };
    case "outbid":
      return { tone: "warn", text: `Someone bid more first${price ? ` (now ${price})` : ""}.${next ? ` The next bid must be at least ${next}.` : ""}` };
    case "stale":
      return { tone: "warn", text: `The price moved before your bid arrived${price ? ` (now ${price})` : ""}. Check it and bid again.` };
    case "already_leading":
      return { tone: "good", text: "You are already the highest bidder." };
    case "not_open":
      return { tone: "warn", text: "Bidding has not started yet." };
    case "closed":
      return { tone: "warn", text: "The auction has ended." };
    default:
      return { tone: "warn", text: r.message || "The bid was not placed." };
  }
}

/** The line shown when a bid failed before any decision (`rate_limited`, `unauthorized`, ...). */
export function bidErrorMessage(code: string, message: string): string {
  switch (code) {
    case "unauthorized":
    case "token_expired":
      return "Please sign in again to bid.";
    case "rate_limited":
      return "Too many bids at once. Wait a moment and try again.";
    case "admin_cannot_bid":
      return "An auctioneer account cannot bid.";
    case "unavailable":
      return "The auction house is busy. Nothing was placed; try again.";
    case "outcome_unknown":
      return "No answer yet: your bid may have been placed. The price shown will tell.";
    default:
      return message || "The bid could not be placed.";
  }
}
