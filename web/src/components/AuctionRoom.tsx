import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import type { BidAttempt } from "../client";
import {
  answerIsCurrent,
  closingReasonText,
  formatDuration,
  formatLocalDateTime,
  formatLocalTime,
  outcomeText,
  softCloseRule,
} from "../format";
import { useClient, useClientState, useServerNow } from "../hooks";
import {
  CONFIRM_INCREMENTS,
  CONFIRM_PRICE_FACTOR,
  formatMoney,
  needsConfirmation,
  parseMoney,
  validateBidInput,
} from "../money";
import { isConfirmed, olderCursor, standing, type RoomState } from "../state";
import type { AuctionView, BidKind } from "../types";
import { Countdown } from "./Countdown";
import { SignInForm } from "./SignIn";

export function AuctionRoom({ id }: { id: string }) {
  const client = useClient();
  const s = useClientState();
  useEffect(() => client.watchAuction(id), [client, id]);
  const room = s.rooms[id];
  const a = room?.auction ?? null;

  useEffect(() => {
    if (a) document.title = `${a.title} · Gavel`;
  }, [a?.title]);

  if (s.roomErrors[id] === "not_found" && !a) {
    return (
      <section className="room-missing">
        <h1>No such auction</h1>
        <p>There is no auction called “{id}”. It may have been mistyped.</p>
        <a className="btn" href="#/">
          See all auctions
        </a>
      </section>
    );
  }
  if (!room || !a) {
    return (
      <section className="room-loading" aria-busy="true">
        <a className="back" href="#/">
          ← All auctions
        </a>
        <p role="status">{s.conn.status === "open" ? "Loading the auction…" : "Connecting to the auction house…"}</p>
      </section>
    );
  }
  return <Room room={room} auction={a} />;
}

function Room({ room, auction: a }: { room: RoomState; auction: AuctionView }) {
  const s = useClientState();
  const me = s.session?.user.id ?? null;
  const closed = a.status === "closed";
  const live = isConfirmed(room) && s.conn.status === "open";
  return (
    <article
      className={`room${closed ? " room-closed" : ""}${!live && !closed ? " room-stale" : ""}`}
      aria-labelledby="room-title"
      data-testid="auction-room"
      data-seq={a.seq}
      data-live={live ? "true" : "false"}
    >
      <div className="room-head">
        <a className="back" href="#/">
          ← All auctions
        </a>
        <div className="room-head-right">
          <Watchers count={room.watchers} />
        </div>
      </div>
      <h1 id="room-title" className="room-title">
        {a.title}
      </h1>
      {a.description && <p className="room-desc">{a.description}</p>}

      {closed && <ClosedBanner auction={a} me={me} />}

      <div className="room-grid">
        <div className="room-main">
          <PricePanel room={room} auction={a} me={me} live={live} />
          {!closed && <BidPanel room={room} auction={a} live={live} />}
        </div>
        <aside className="room-side" aria-label="Bid history and details">
          <History room={room} auction={a} me={me} />
          <Details auction={a} />
        </aside>
      </div>
    </article>
  );
}

function Watchers({ count }: { count: number | null }) {
  if (count === null) return null;
  return (
    <span className="watchers" data-testid="watchers" aria-label={`${count} watching`}>
      <span className="eye" aria-hidden="true" />
      {count} watching
    </span>
  );
}

function PricePanel({ room, auction: a, me, live }: { room: RoomState; auction: AuctionView; me: string | null; live: boolean }) {
  const s = useClientState();
  const client = useClient();
  const now = useServerNow();
  const closed = a.status === "closed";
  const extendedBy = a.ends_at - a.original_ends_at;
  // Show the live extension notice for 15 s after it happens.
  const ext = room.extension;
  const [extSeenAt, setExtSeenAt] = useState<number | null>(null);
  useEffect(() => {
    if (ext) setExtSeenAt(Date.now());
  }, [ext?.seq]);
  const extFresh = ext && extSeenAt !== null && Date.now() - extSeenAt < 15_000;

  // One closed state everywhere: the final price is the closing's, or there is none.
  const finalPrice = a.closing?.final_price ?? null;
  const priceLabel = closed ? "Final price" : !live ? "Last known price" : a.price === null ? "Starting price" : "Current price";
  const leaderIsMe = a.leader?.id === me;
  const st = standing(room);

  let priceText: string;
  if (closed) priceText = finalPrice === null ? "No sale" : formatMoney(finalPrice, a.currency);
  else priceText = formatMoney(a.price ?? a.starting_price, a.currency);

  return (
    <section className="price-panel" aria-label="Price and time" data-live={live ? "true" : "false"}>
      {!closed && !live && (
        <p className="notice notice-stale" role="status" data-testid="live-notice">
          {s.conn.status === "connecting" ? (
            <>
              <strong>Connecting…</strong> The price shown is not live yet.
            </>
          ) : (
            <>
              <strong>Not live — connection lost.</strong> This is the last state we received; it may have changed.
              Bidding resumes as soon as the live state is back.
            </>
          )}
        </p>
      )}
      <div className="price-row">
        <div className="price-block">
          <span className="price-label">{priceLabel}</span>
          <span className="price-big" data-testid="price" aria-live="polite" aria-atomic="true" key={a.seq}>
            {priceText}
          </span>
          <span className="leader-line" data-testid="leader">
            {closed ? (
              finalPrice === null && a.bid_count > 0 && a.price !== null && a.closing?.reason !== "cancelled" ? (
                <>
                  Highest bid: <strong data-testid="highest-bid">{formatMoney(a.price, a.currency)}</strong> (not sold)
                </>
              ) : null
            ) : a.leader ? (
              <>
                {live ? "Leader" : "Last known leader"}:{" "}
                <strong>{leaderIsMe ? `${a.leader.name} (you)` : a.leader.name}</strong>
              </>
            ) : (
              "No bids yet — be the first!"
            )}
          </span>
          <span className="bid-count" data-testid="bid-count">
            {a.bid_count} bid{a.bid_count === 1 ? "" : "s"}
          </span>
        </div>
        <div className="time-block">
          <Countdown auction={a} big />
          {!closed && (
            <span className="ends-at" data-testid="ends-at">
              {a.status === "scheduled" && now < a.starts_at
                ? `Opens ${formatLocalDateTime(a.starts_at, s.clockOffset)}`
                : `Ends ${formatLocalTime(a.ends_at, s.clockOffset)}`}
            </span>
          )}
          {extendedBy > 0 && (
            <span className="extended" data-testid="extended-total">
              Extended by {formatDuration(extendedBy)} in total (soft close)
            </span>
          )}
        </div>
      </div>

      {st && st !== "unconfirmed" && (
        <div
          key={`${room.leaderNoticeVersion}-${st}`}
          className={`leader-notice leader-${st === "won" ? "winning" : st === "lost" ? "outbid" : st}${closed ? " leader-final" : ""}`}
          role="status"
          aria-live="assertive"
          data-testid="leader-notice"
          data-state={st === "won" ? "winning" : st === "lost" ? "outbid" : st}
        >
          <span>
            {st === "won"
              ? "You won this auction!"
              : st === "lost"
                ? "You did not win this auction."
                : st === "winning"
                  ? "You are winning"
                  : "You have been outbid"}
            {st === "winning" && room.yourMax !== null && (
              <span className="your-max"> · your maximum {formatMoney(room.yourMax, a.currency)}</span>
            )}
          </span>
          {st === "outbid" && a.status === "open" && (
            <button
              type="button"
              className="btn btn-primary"
              data-testid="rebid"
              onClick={() => client.bidOrSignIn({ auctionId: a.id, amount: a.min_bid, kind: "plain", expectedSeq: a.seq })}
            >
              Bid {formatMoney(a.min_bid, a.currency)} now
            </button>
          )}
        </div>
      )}

      {extFresh && ext && !closed && (
        <p className="notice notice-ext" role="status" data-testid="extension-notice" key={`ext-${ext.seq}`}>
          Time extended! A bid in the last {a.soft_close ? formatDuration(a.soft_close.window_ms) : "moments"} moved the end
          to {formatLocalTime(ext.to, s.clockOffset)}.
        </p>
      )}

      <div className="status-row">
        {a.has_reserve && (
          <span
            className={`badge ${a.reserve_met ? "badge-ok" : "badge-muted"}`}
            data-testid="reserve-status"
            data-met={a.reserve_met ? "true" : "false"}
          >
            {a.reserve_met ? "Reserve met" : "Reserve not met"}
          </span>
        )}
        {a.status === "scheduled" && now < a.starts_at && <span className="badge badge-scheduled">Not open yet</span>}
      </div>
      {a.soft_close && !closed && (
        <p className="hint soft-close-rule" data-testid="soft-close-rule">
          {softCloseRule(a.soft_close)}
        </p>
      )}
    </section>
  );
}

function ClosedBanner({ auction: a, me }: { auction: AuctionView; me: string | null }) {
  const s = useClientState();
  const c = a.closing;
  const winner = c?.winner ?? null;
  const price = c?.final_price ?? null;
  let headline: string;
  let detail: string;
  if (c?.reason === "cancelled") {
    headline = "Auction cancelled";
    detail = "The auctioneer cancelled this auction. Nothing was sold.";
  } else if (winner && price !== null) {
    headline = winner.id === me ? `You won! ${formatMoney(price, a.currency)}` : `Sold to ${winner.name}`;
    detail = `${winner.id === me ? "You won" : `${winner.name} won`} for ${formatMoney(price, a.currency)}. ${closingReasonText(c?.reason ?? "ended")}.`;
  } else if (a.has_reserve && a.bid_count > 0) {
    headline = "Not sold: reserve not met";
    detail = `The highest bid${a.price !== null ? `, ${formatMoney(a.price, a.currency)},` : ""} stayed below the seller's reserve price, so there is no winner.`;
  } else {
    headline = "Ended without a winner";
    detail = a.bid_count === 0 ? "Nobody bid on this auction." : closingReasonText(c?.reason ?? "ended") + ".";
  }
  return (
    <div className={`closed-banner${winner && winner.id === me ? " closed-banner-won" : ""}`} role="alert" data-testid="closed-banner">
      <span className="hammer" aria-hidden="true" />
      <div>
        <p className="closed-headline" data-testid="closed-headline">
          {headline}
        </p>
        <p className="closed-detail">
          {detail}
          {c?.closed_at ? <> Closed at {formatLocalTime(c.closed_at, s.clockOffset)}.</> : null}
        </p>
        <p className="closed-winner" data-testid="winner" data-winner-id={winner?.id ?? ""}>
          Winner: <strong>{winner ? winner.name : "none"}</strong> · Final price:{" "}
          <strong data-testid="final-price">{price !== null ? formatMoney(price, a.currency) : "none (not sold)"}</strong>
        </p>
      </div>
    </div>
  );
}

function BidPanel({ room, auction: a, live }: { room: RoomState; auction: AuctionView; live: boolean }) {
  const client = useClient();
  const s = useClientState();
  const now = useServerNow();
  const attempt: BidAttempt | undefined = s.bids[a.id];
  const pending = attempt?.state === "pending";
  const notOpen = a.status === "scheduled" && now < a.starts_at;
  const me = s.session?.user.id ?? null;
  const leaderIsMe = a.leader?.id === me;
  const blocked = notOpen || !live;
  const signInHere = s.signInFor?.auctionId === a.id && !s.session;

  const quick = [1, 2, 5].map((n) => ({ n, amount: a.min_bid + (n - 1) * a.increment }));

  function bid(amount: number, kind: BidKind = "plain", expectedSeq?: number) {
    client.bidOrSignIn({ auctionId: a.id, amount, kind, expectedSeq });
  }

  return (
    <section className="bid-panel" aria-label="Place a bid" data-live={live ? "true" : "false"}>
      {!live && (
        <p className="notice notice-warn" role="status" data-testid="bid-not-live">
          Bidding is paused until the connection is back and the price is confirmed.
        </p>
      )}
      {notOpen && (
        <p className="notice" role="status">
          Bidding opens when the auction starts.
        </p>
      )}
      {!s.session && !signInHere && (
        <p className="hint" data-testid="visitor-hint">
          You are watching as a visitor. Choose a bid and we ask for your name first.
        </p>
      )}
      {signInHere && s.signInFor && (
        <div className="signin-inline" role="group" aria-labelledby="signin-bid-title" data-testid="signin-for-bid">
          <h2 id="signin-bid-title" className="side-title">
            Sign in to bid {formatMoney(s.signInFor.amount, a.currency)}
            {s.signInFor.kind === "max" ? " (maximum)" : ""}
          </h2>
          <SignInForm
            compact
            submitLabel={`Sign in and bid ${formatMoney(s.signInFor.amount, a.currency)}`}
            onSignedIn={(session) => client.signedInForBid(session)}
            onCancel={() => client.cancelSignIn()}
          />
        </div>
      )}
      <p className="min-bid">
        Minimum bid: <strong data-testid="min-bid">{formatMoney(a.min_bid, a.currency)}</strong>
        <span className="muted"> · increment {formatMoney(a.increment, a.currency)}</span>
      </p>
      <div className="quick-bids" role="group" aria-label={live ? "Quick bids" : "Quick bids (not live)"}>
        {quick.map((q) => (
          <button
            key={q.n}
            type="button"
            className="btn btn-bid"
            disabled={blocked}
            data-live={live ? "true" : "false"}
            aria-label={`Quick bid +${q.n}: ${formatMoney(q.amount, a.currency)}${live ? "" : " (not live)"}`}
            data-testid={`quick-bid-${q.n}`}
            onClick={() => bid(q.amount, "plain", a.seq)}
          >
            <span className="qb-amount">{formatMoney(q.amount, a.currency)}</span>
            <span className="qb-step">+{q.n} increment{q.n === 1 ? "" : "s"}</span>
          </button>
        ))}
      </div>

      <BidOutcome attempt={attempt} auction={a} room={room} />

      {/* A typed amount is what the user is willing to pay: no expected_seq, so it counts as
          long as it still reaches the minimum (quick bids are relative to the price seen). */}
      <CustomBid auction={a} disabled={blocked} onBid={(amount) => bid(amount, "plain")} />
      <MaxBid auction={a} disabled={blocked} yourMax={leaderIsMe ? room.yourMax : null} onBid={(amount) => bid(amount, "max")} />
      {a.buy_now !== null && a.buy_now_available && (
        <BuyNow auction={a} disabled={blocked || pending} onBuy={() => bid(a.buy_now!, "buy_now")} />
      )}
    </section>
  );
}

function BidOutcome({ attempt, auction: a, room }: { attempt: BidAttempt | undefined; auction: AuctionView; room: RoomState }) {
  const s = useClientState();
  const me = s.session?.user.id ?? null;
  // Only the answer that still describes the auction is shown; an older one gives way to the
  // standing above ("You are winning" / "You have been outbid").
  if (!attempt || !answerIsCurrent(attempt, a)) {
    return <div className="outcome-slot" data-testid="bid-outcome" data-state="none" role="status" aria-live="polite" />;
  }
  const answerSeq = attempt.auction?.seq;
  const t = outcomeText(attempt, a.currency, me, room.bids.find((b) => b.seq === answerSeq));
  return (
    <div
      className={`outcome outcome-${t.tone}`}
      role="status"
      aria-live="polite"
      data-testid="bid-outcome"
      data-state={attempt.state}
      data-uncertain={attempt.uncertain && attempt.state === "pending" ? "true" : undefined}
      data-outcome={attempt.outcome ?? attempt.errorCode ?? ""}
      key={attempt.requestId + attempt.state}
    >
      <p className="outcome-title">{t.title}</p>
      {t.detail && <p className="outcome-detail">{t.detail}</p>}
    </div>
  );
}

/** A large amount waits here for a second click (docs/rules.md, "Large bids"). */
function ConfirmLarge({
  amount,
  auction: a,
  what,
  onConfirm,
  onCancel,
}: {
  amount: number;
  auction: AuctionView;
  what: string;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLButtonElement>(null);
  useEffect(() => ref.current?.focus(), []);
  const steps = Math.floor((amount - a.min_bid) / Math.max(1, a.increment));
  return (
    <div className="confirm-large" role="alertdialog" aria-labelledby="confirm-large-q" data-testid="confirm-large">
      <p id="confirm-large-q" className="confirm-q">
        Are you sure? Your {what} of <strong>{formatMoney(amount, a.currency)}</strong> is far above the minimum bid of{" "}
        {formatMoney(a.min_bid, a.currency)} ({steps.toLocaleString("en-US")} increments more).
      </p>
      <p className="hint">
        We ask for a confirmation when a bid is more than {CONFIRM_INCREMENTS} increments above the minimum or more than{" "}
        {CONFIRM_PRICE_FACTOR}× the current price.
      </p>
      <div className="confirm-actions">
        <button ref={ref} type="button" className="btn btn-primary" data-testid="confirm-large-yes" onClick={onConfirm}>
          Yes, bid {formatMoney(amount, a.currency)}
        </button>
        <button type="button" className="btn" onClick={onCancel}>
          Change the amount
        </button>
      </div>
    </div>
  );
}

function CustomBid({ auction: a, disabled, onBid }: { auction: AuctionView; disabled: boolean; onBid: (n: number) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<{ text: string; minBid: number } | null>(null);
  const [confirm, setConfirm] = useState<number | null>(null);
  const errId = useId();
  const inputId = useId();
  // An error about the minimum is about the minimum it was checked against: once the
  // minimum moves it is no longer true, so it goes.
  const shownError = error && error.minBid === a.min_bid ? error.text : null;
  function submit(e: FormEvent) {
    e.preventDefault();
    const r = validateBidInput(value, a.currency, a.min_bid);
    if (!r.ok) {
      setError({ text: r.error, minBid: a.min_bid });
      return;
    }
    setError(null);
    if (needsConfirmation(r.minor, a)) {
      setConfirm(r.minor);
      return;
    }
    setValue("");
    onBid(r.minor);
  }
  return (
    <form className="custom-bid" onSubmit={submit} noValidate aria-label="Bid a custom amount">
      <label htmlFor={inputId} className="field-label">
        Your bid ({a.currency})
      </label>
      <div className="input-row">
        <input
          id={inputId}
          inputMode="decimal"
          autoComplete="off"
          placeholder={`${formatMoney(a.min_bid, a.currency)} or more`}
          value={value}
          onChange={(e) => {
            setValue(e.target.value);
            setConfirm(null);
            if (error) setError(null);
          }}
          aria-invalid={shownError ? true : undefined}
          aria-describedby={shownError ? errId : undefined}
          data-testid="custom-amount"
        />
        <button type="submit" className="btn btn-primary" disabled={disabled}>
          Place bid
        </button>
      </div>
      {shownError && (
        <p id={errId} className="field-error" role="alert" data-testid="custom-error">
          {shownError}
        </p>
      )}
      {confirm !== null && !disabled && (
        <ConfirmLarge
          amount={confirm}
          auction={a}
          what="bid"
          onConfirm={() => {
            setConfirm(null);
            setValue("");
            onBid(confirm);
          }}
          onCancel={() => setConfirm(null)}
        />
      )}
    </form>
  );
}

function MaxBid({
  auction: a,
  disabled,
  yourMax,
  onBid,
}: {
  auction: AuctionView;
  disabled: boolean;
  yourMax: number | null;
  onBid: (n: number) => void;
}) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<{ text: string; minBid: number; yourMax: number | null } | null>(null);
  const [confirm, setConfirm] = useState<number | null>(null);
  const errId = useId();
  const inputId = useId();
  const helpId = useId();
  const shownError = error && error.minBid === a.min_bid && error.yourMax === yourMax ? error.text : null;
  function submit(e: FormEvent) {
    e.preventDefault();
    const fail = (text: string) => setError({ text, minBid: a.min_bid, yourMax });
    const r = parseMoney(value, a.currency);
    if (!r.ok) return fail(r.error);
    if (yourMax !== null && r.minor <= yourMax) {
      return fail(`Your new maximum must be more than your current one (${formatMoney(yourMax, a.currency)}).`);
    }
    if (yourMax === null && r.minor < a.min_bid) {
      return fail(`Your maximum must be at least the minimum bid, ${formatMoney(a.min_bid, a.currency)}.`);
    }
    setError(null);
    if (needsConfirmation(r.minor, a)) {
      setConfirm(r.minor);
      return;
    }
    setValue("");
    onBid(r.minor);
  }
  return (
    <form className="max-bid" onSubmit={submit} noValidate aria-label="Set a maximum bid">
      <label htmlFor={inputId} className="field-label">
        Maximum bid ({a.currency}) <span className="muted">— automatic bidding</span>
      </label>
      <p id={helpId} className="hint">
        We bid for you, one increment at a time, only as far as needed, up to this amount. Nobody else sees it.
        {yourMax !== null && (
          <>
            {" "}
            Your maximum now: <strong data-testid="your-max">{formatMoney(yourMax, a.currency)}</strong>.
          </>
        )}
      </p>
      <div className="input-row">
        <input
          id={inputId}
          inputMode="decimal"
          autoComplete="off"
          value={value}
          onChange={(e) => {
            setValue(e.target.value);
            setConfirm(null);
            if (error) setError(null);
          }}
          aria-invalid={shownError ? true : undefined}
          aria-describedby={shownError ? `${errId} ${helpId}` : helpId}
          data-testid="max-amount"
        />
        <button type="submit" className="btn" disabled={disabled}>
          {yourMax !== null ? "Raise maximum" : "Set maximum"}
        </button>
      </div>
      {shownError && (
        <p id={errId} className="field-error" role="alert" data-testid="max-error">
          {shownError}
        </p>
      )}
      {confirm !== null && !disabled && (
        <ConfirmLarge
          amount={confirm}
          auction={a}
          what="maximum"
          onConfirm={() => {
            setConfirm(null);
            setValue("");
            onBid(confirm);
          }}
          onCancel={() => setConfirm(null)}
        />
      )}
    </form>
  );
}

function BuyNow({ auction: a, disabled, onBuy }: { auction: AuctionView; disabled: boolean; onBuy: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const price = formatMoney(a.buy_now, a.currency);
  return (
    <div className="buy-now" role="group" aria-label="Buy now">
      {!confirming ? (
        <button type="button" className="btn btn-buy" disabled={disabled} onClick={() => setConfirming(true)}>
          Buy now for {price}
        </button>
      ) : (
        <>
          <p className="buy-now-q">End the auction now and buy it for {price}?</p>
          <button
            type="button"
            className="btn btn-buy"
            disabled={disabled}
            autoFocus
            onClick={() => {
              setConfirming(false);
              onBuy();
            }}
          >
            Confirm: buy for {price}
          </button>
          <button type="button" className="btn btn-ghost" onClick={() => setConfirming(false)}>
            Keep bidding
          </button>
        </>
      )}
    </div>
  );
}

function History({ room, auction: a, me }: { room: RoomState; auction: AuctionView; me: string | null }) {
  const s = useClientState();
  const client = useClient();
  const bids = room.bids;
  const cursor = olderCursor(room);
  const [loading, setLoading] = useState(false);
  const [failed, setFailed] = useState(false);
  const hasAuto = bids.some((b) => b.kind === "auto");
  async function loadOlder() {
    if (cursor === null) return;
    setLoading(true);
    setFailed(false);
    try {
      await client.loadOlder(a.id, cursor);
    } catch {
      setFailed(true);
    } finally {
      setLoading(false);
    }
  }
  return (
    <section className="history" aria-labelledby="history-title">
      <h2 id="history-title" className="side-title">
        Bid history <span className="muted history-count" data-testid="history-count">
          {a.bid_count === 0
            ? ""
            : bids.length >= a.bid_count
              ? `· all ${a.bid_count} bid${a.bid_count === 1 ? "" : "s"}`
              : `· showing ${bids.length} of ${a.bid_count} bids`}
        </span>
      </h2>
      {bids.length === 0 ? (
        <p className="muted">No bids yet.</p>
      ) : (
        <ol
          className="history-list"
          aria-label="Bids, newest first"
          data-testid="bid-history"
          tabIndex={0}
        >
          {bids.map((b, i) => (
            <li key={b.seq} className={`${i === 0 ? "history-top" : ""}${b.bidder.id === me ? " history-mine" : ""}`}>
              <span className="h-name">
                {b.bidder.name}
                {b.bidder.id === me && <span className="muted"> (you)</span>}
              </span>
              <span className="h-amount">{formatMoney(b.amount, a.currency)}</span>
              <span className="h-meta">
                {b.kind === "auto" && (
                  <span className="tag" title="Placed automatically by this bidder's maximum bid">
                    auto
                  </span>
                )}
                {b.kind === "buy_now" && <span className="tag tag-buy">buy now</span>}
                <time dateTime={new Date(b.at).toISOString()}>{formatLocalTime(b.at, s.clockOffset)}</time>
              </span>
            </li>
          ))}
        </ol>
      )}
      {cursor !== null && (
        <button type="button" className="btn btn-block load-older" data-testid="load-older" disabled={loading} onClick={loadOlder}>
          {loading ? "Loading older bids…" : "Load older bids"}
        </button>
      )}
      {failed && (
        <p className="field-error" role="alert">
          Could not load older bids. Try again.
        </p>
      )}
      {hasAuto && (
        <p className="hint" data-testid="auto-legend">
          <span className="tag">auto</span> A bid the system placed for a bidder's maximum (automatic bidding): it bids
          only as far as needed to keep them in the lead, one increment above the competing bid.
        </p>
      )}
    </section>
  );
}

function Details({ auction: a }: { auction: AuctionView }) {
  const s = useClientState();
  const closed = a.status === "closed";
  return (
    <section className="details">
      <h2 className="side-title">Details</h2>
      <dl>
        <dt>Starting price</dt>
        <dd>{formatMoney(a.starting_price, a.currency)}</dd>
        <dt>Increment</dt>
        <dd>
          {a.increment_table && a.increment_table.length > 0
            ? a.increment_table.map((b) => `${formatMoney(b.increment, a.currency)} from ${formatMoney(b.from, a.currency)}`).join("; ")
            : formatMoney(a.increment, a.currency)}
        </dd>
        {a.buy_now !== null && (
          <>
            <dt>Buy now</dt>
            <dd>
              {formatMoney(a.buy_now, a.currency)} {a.buy_now_available ? "" : "(no longer offered)"}
            </dd>
          </>
        )}
        <dt>Reserve</dt>
        <dd data-testid="details-reserve">
          {!a.has_reserve ? "None" : a.reserve_met ? "Met" : closed ? "Not met" : "Not met yet"}
        </dd>
        {a.soft_close && (
          <>
            <dt>Soft close</dt>
            <dd>{softCloseRule(a.soft_close)}</dd>
          </>
        )}
        <dt>Started</dt>
        <dd>{formatLocalDateTime(a.starts_at, s.clockOffset)}</dd>
        <dt>{closed ? "Ended" : "Ends"}</dt>
        <dd>{formatLocalDateTime(a.closing?.closed_at ?? a.ends_at, s.clockOffset)}</dd>
      </dl>
    </section>
  );
}
