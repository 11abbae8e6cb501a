import { useEffect, useId, useState, type FormEvent } from "react";
import type { BidAttempt } from "../client";
import {
  closingReasonText,
  formatDuration,
  formatLocalDateTime,
  formatLocalTime,
  outcomeText,
} from "../format";
import { useClient, useClientState, useServerNow } from "../hooks";
import { formatMoney, parseMoney, validateBidInput } from "../money";
import type { RoomState } from "../state";
import type { AuctionView, BidView } from "../types";
import { Countdown } from "./Countdown";

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
  return (
    <article className={`room${closed ? " room-closed" : ""}`} aria-labelledby="room-title" data-testid="auction-room" data-seq={a.seq}>
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
          <PricePanel room={room} auction={a} me={me} />
          {!closed && <BidPanel room={room} auction={a} />}
        </div>
        <aside className="room-side" aria-label="Bid history">
          <History bids={room.bids} auction={a} me={me} />
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

function PricePanel({ room, auction: a, me }: { room: RoomState; auction: AuctionView; me: string | null }) {
  const s = useClientState();
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

  const priceLabel = closed ? "Final price" : a.price === null ? "Starting price" : "Current price";
  const priceValue = closed ? (a.closing?.final_price ?? a.price) : (a.price ?? a.starting_price);
  const leaderIsMe = a.leader?.id === me;
  void now;

  return (
    <section className="price-panel" aria-label="Price and time">
      <div className="price-row">
        <div className="price-block">
          <span className="price-label">{priceLabel}</span>
          <span className="price-big" data-testid="price" aria-live="polite" aria-atomic="true" key={a.seq}>
            {closed && priceValue === null ? "No sale" : formatMoney(priceValue, a.currency)}
          </span>
          <span className="leader-line" data-testid="leader">
            {a.leader
              ? closed
                ? null
                : <>Leader: <strong>{leaderIsMe ? `${a.leader.name} (you)` : a.leader.name}</strong></>
              : closed
                ? null
                : "No bids yet — be the first!"}
          </span>
          <span className="bid-count" data-testid="bid-count">
            {a.bid_count} bid{a.bid_count === 1 ? "" : "s"}
          </span>
        </div>
        <div className="time-block">
          <Countdown auction={a} big />
          {!closed && (
            <span className="ends-at">
              {a.status === "scheduled" && now < a.starts_at
                ? `Opens ${formatLocalDateTime(a.starts_at, s.clockOffset)}`
                : `Ends ${formatLocalTime(a.ends_at, s.clockOffset)}`}
            </span>
          )}
          {extendedBy > 0 && (
            <span className="extended" data-testid="extended-total">
              Extended by {formatDuration(extendedBy)} (late bids add time)
            </span>
          )}
        </div>
      </div>

      {room.leaderNotice && (
        <p
          key={room.leaderNoticeVersion}
          className={`leader-notice leader-${room.leaderNotice}${closed ? " leader-final" : ""}`}
          role="status"
          aria-live="assertive"
          data-testid="leader-notice"
          data-state={room.leaderNotice}
        >
          {closed
            ? room.leaderNotice === "winning"
              ? "You won this auction!"
              : "You did not win this auction."
            : room.leaderNotice === "winning"
              ? "You are winning"
              : "You have been outbid"}
          {!closed && room.leaderNotice === "winning" && room.yourMax !== null && (
            <span className="your-max"> · your maximum {formatMoney(room.yourMax, a.currency)}</span>
          )}
        </p>
      )}

      {extFresh && ext && !closed && (
        <p className="notice notice-ext" role="status" data-testid="extension-notice" key={`ext-${ext.seq}`}>
          Time extended! A late bid moved the end by {formatDuration(ext.to - ext.from)}, to{" "}
          {formatLocalTime(ext.to, s.clockOffset)}.
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
        {a.soft_close && !closed && (
          <span className="badge badge-muted" title="Anti-sniping">
            Soft close: a bid in the last {formatDuration(a.soft_close.window_ms)} adds {formatDuration(a.soft_close.extend_ms)}
          </span>
        )}
      </div>
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
  } else if (a.has_reserve && a.reserve_met === false && a.bid_count > 0) {
    headline = "Not sold: reserve not met";
    detail = "The highest bid stayed below the seller's reserve price, so there is no winner.";
  } else {
    headline = "Ended without a winner";
    detail = a.bid_count === 0 ? "Nobody bid on this auction." : closingReasonText(c?.reason ?? "ended") + ".";
  }
  return (
    <div className={`closed-banner${winner?.id === me ? " closed-banner-won" : ""}`} role="alert" data-testid="closed-banner">
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
          <strong data-testid="final-price">{price !== null ? formatMoney(price, a.currency) : "—"}</strong>
        </p>
      </div>
    </div>
  );
}

function BidPanel({ room, auction: a }: { room: RoomState; auction: AuctionView }) {
  const client = useClient();
  const s = useClientState();
  const now = useServerNow();
  const attempt: BidAttempt | undefined = s.bids[a.id];
  const pending = attempt?.state === "pending";
  const notOpen = a.status === "scheduled" && now < a.starts_at;
  const me = s.session?.user.id ?? null;
  const leaderIsMe = a.leader?.id === me;
  const connOk = s.conn.status === "open";

  const quick = [1, 2, 5].map((n) => ({ n, amount: a.min_bid + (n - 1) * a.increment }));

  function bid(amount: number, kind: "plain" | "max" | "buy_now" = "plain", expectedSeq?: number) {
    client.placeBid(a.id, amount, kind, expectedSeq);
  }

  return (
    <section className="bid-panel" aria-label="Place a bid">
      {!connOk && (
        <p className="notice notice-warn" role="status">
          Connection lost — reconnecting. Bids you place are sent when it is back, never twice.
        </p>
      )}
      {notOpen && (
        <p className="notice" role="status">
          Bidding opens when the auction starts.
        </p>
      )}
      <p className="min-bid">
        Minimum bid: <strong data-testid="min-bid">{formatMoney(a.min_bid, a.currency)}</strong>
        <span className="muted"> · increment {formatMoney(a.increment, a.currency)}</span>
      </p>
      <div className="quick-bids" role="group" aria-label="Quick bids">
        {quick.map((q) => (
          <button
            key={q.n}
            type="button"
            className="btn btn-bid"
            disabled={notOpen}
            aria-label={`Quick bid +${q.n}: ${formatMoney(q.amount, a.currency)}`}
            data-testid={`quick-bid-${q.n}`}
            onClick={() => bid(q.amount, "plain", a.seq)}
          >
            <span className="qb-amount">{formatMoney(q.amount, a.currency)}</span>
            <span className="qb-step">+{q.n} increment{q.n === 1 ? "" : "s"}</span>
          </button>
        ))}
      </div>

      <BidOutcome attempt={attempt} auction={a} onRebid={(amount, seq) => bid(amount, "plain", seq)} />

      {/* A typed amount is what the user is willing to pay: no expected_seq, so it counts as
          long as it still reaches the minimum (quick bids are relative to the price seen). */}
      <CustomBid auction={a} disabled={notOpen} onBid={(amount) => bid(amount, "plain")} />
      <MaxBid auction={a} disabled={notOpen} yourMax={leaderIsMe ? room.yourMax : null} onBid={(amount) => bid(amount, "max")} />
      {a.buy_now !== null && a.buy_now_available && (
        <BuyNow auction={a} disabled={notOpen || pending} onBuy={() => bid(a.buy_now!, "buy_now")} />
      )}
    </section>
  );
}

function BidOutcome({
  attempt,
  auction: a,
  onRebid,
}: {
  attempt: BidAttempt | undefined;
  auction: AuctionView;
  onRebid: (amount: number, expectedSeq?: number) => void;
}) {
  const s = useClientState();
  const me = s.session?.user.id ?? null;
  if (!attempt) return <div className="outcome-slot" data-testid="bid-outcome" data-state="none" role="status" aria-live="polite" />;
  const t = outcomeText(attempt, a.currency, me, a);
  const rebid = t.rebid && a.status === "open" ? t.rebid : undefined;
  // Prefer the newest minimum we know (the room may be ahead of the answer).
  const roomIsNewer = rebid !== undefined && a.seq >= (rebid.expectedSeq ?? 0);
  const rebidAmount = rebid ? (roomIsNewer ? a.min_bid : rebid.amount) : 0;
  const rebidSeq = rebid ? (roomIsNewer ? a.seq : rebid.expectedSeq) : undefined;
  return (
    <div
      className={`outcome outcome-${t.tone}`}
      role="status"
      aria-live="polite"
      data-testid="bid-outcome"
      data-state={attempt.state}
      data-outcome={attempt.outcome ?? attempt.errorCode ?? ""}
      key={attempt.requestId + attempt.state}
    >
      <p className="outcome-title">{t.title}</p>
      {t.detail && <p className="outcome-detail">{t.detail}</p>}
      {rebid && (
        <button
          type="button"
          className="btn btn-primary"
          data-testid="rebid"
          onClick={() => onRebid(rebidAmount, rebidSeq)}
        >
          Bid {formatMoney(rebidAmount, a.currency)} now
        </button>
      )}
    </div>
  );
}

function CustomBid({ auction: a, disabled, onBid }: { auction: AuctionView; disabled: boolean; onBid: (n: number) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const errId = useId();
  const inputId = useId();
  function submit(e: FormEvent) {
    e.preventDefault();
    const r = validateBidInput(value, a.currency, a.min_bid);
    if (!r.ok) {
      setError(r.error);
      return;
    }
    setError(null);
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
            if (error) setError(null);
          }}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? errId : undefined}
          data-testid="custom-amount"
        />
        <button type="submit" className="btn btn-primary" disabled={disabled}>
          Place bid
        </button>
      </div>
      {error && (
        <p id={errId} className="field-error" role="alert" data-testid="custom-error">
          {error}
        </p>
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
  const [error, setError] = useState<string | null>(null);
  const errId = useId();
  const inputId = useId();
  const helpId = useId();
  function submit(e: FormEvent) {
    e.preventDefault();
    const r = parseMoney(value, a.currency);
    if (!r.ok) {
      setError(r.error);
      return;
    }
    if (yourMax !== null && r.minor <= yourMax) {
      setError(`Your new maximum must be more than your current one (${formatMoney(yourMax, a.currency)}).`);
      return;
    }
    if (yourMax === null && r.minor < a.min_bid) {
      setError(`Your maximum must be at least the minimum bid, ${formatMoney(a.min_bid, a.currency)}.`);
      return;
    }
    setError(null);
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
            if (error) setError(null);
          }}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `${errId} ${helpId}` : helpId}
          data-testid="max-amount"
        />
        <button type="submit" className="btn" disabled={disabled}>
          {yourMax !== null ? "Raise maximum" : "Set maximum"}
        </button>
      </div>
      {error && (
        <p id={errId} className="field-error" role="alert" data-testid="max-error">
          {error}
        </p>
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

function History({ bids, auction: a, me }: { bids: BidView[]; auction: AuctionView; me: string | null }) {
  const s = useClientState();
  return (
    <section className="history">
      <h2 className="side-title">Bid history</h2>
      {bids.length === 0 ? (
        <p className="muted">No bids yet.</p>
      ) : (
        <ol className="history-list" aria-label="Bids, newest first" data-testid="bid-history">
          {bids.map((b, i) => (
            <li key={b.seq} className={`${i === 0 ? "history-top" : ""}${b.bidder.id === me ? " history-mine" : ""}`}>
              <span className="h-name">
                {b.bidder.name}
                {b.bidder.id === me && <span className="muted"> (you)</span>}
              </span>
              <span className="h-amount">{formatMoney(b.amount, a.currency)}</span>
              <span className="h-meta">
                {b.kind === "auto" && <span className="tag">auto</span>}
                {b.kind === "buy_now" && <span className="tag tag-buy">buy now</span>}
                <time dateTime={new Date(b.at).toISOString()}>{formatLocalTime(b.at, s.clockOffset)}</time>
              </span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function Details({ auction: a }: { auction: AuctionView }) {
  const s = useClientState();
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
        <dd>{a.has_reserve ? (a.reserve_met ? "Met" : "Not met yet") : "None"}</dd>
        <dt>Started</dt>
        <dd>{formatLocalDateTime(a.starts_at, s.clockOffset)}</dd>
        <dt>{a.status === "closed" ? "Ended" : "Ends"}</dt>
        <dd>{formatLocalDateTime(a.closing?.closed_at ?? a.ends_at, s.clockOffset)}</dd>
      </dl>
    </section>
  );
}
