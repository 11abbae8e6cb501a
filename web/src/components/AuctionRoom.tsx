import { useEffect, useState } from "react";
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
import { formatMoney } from "../money";
import { isConfirmed, standing, type RoomState } from "../state";
import type { AuctionView, BidKind } from "@gavel/client";
import { BuyNow, CustomBid, MaxBid } from "./BidForms";
import { Countdown } from "./Countdown";
import { Details, History, Receipts } from "./RoomSide";
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
          <Receipts auction={a} />
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
  // Leading below a reserve is not winning: if the auction ended now, nobody would.
  const belowReserve = st === "winning" && a.has_reserve && !a.reserve_met;

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
          className={`leader-notice leader-${belowReserve ? "reserve" : st === "won" ? "winning" : st === "lost" ? "outbid" : st}${closed ? " leader-final" : ""}`}
          role="status"
          aria-live="assertive"
          data-testid="leader-notice"
          data-state={st === "won" ? "winning" : st === "lost" ? "outbid" : st}
          data-reserve={belowReserve ? "not_met" : undefined}
        >
          <span>
            {st === "won"
              ? "You won this auction!"
              : st === "lost"
                ? a.leader?.id === me && a.has_reserve && finalPrice === null && a.closing?.reason !== "cancelled"
                  ? "You did not win: your bid was the highest, but below the reserve."
                  : "You did not win this auction."
                : belowReserve
                  ? "You lead, but the reserve is not met yet"
                  : st === "winning"
                    ? "You are winning"
                    : "You have been outbid"}
            {st === "winning" && room.yourMax !== null && (
              <span className="your-max"> · your maximum {formatMoney(room.yourMax, a.currency)}</span>
            )}
            {belowReserve && (
              <span className="leader-hint">
                A maximum that reaches the reserve raises your price to it at once; a plain bid cannot raise your own lead.
              </span>
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
        <div
          className="signin-inline"
          role="group"
          aria-labelledby="signin-bid-title"
          data-testid="signin-for-bid"
          onKeyDown={(e) => {
            if (e.key === "Escape") client.cancelSignIn();
          }}
        >
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

      <BidOutcome attempt={attempt} auction={a} room={room} live={live} />

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

function BidOutcome({
  attempt,
  auction: a,
  room,
  live,
}: {
  attempt: BidAttempt | undefined;
  auction: AuctionView;
  room: RoomState;
  live: boolean;
}) {
  const s = useClientState();
  const me = s.session?.user.id ?? null;
  // Only the answer that still describes the auction is shown; an older one gives way to the
  // standing above ("You are winning" / "You have been outbid"). While the state is not
  // confirmed, an answer's claims ("your bid leads") may no longer hold: only a bid still
  // waiting for its answer is shown.
  if (!attempt || !answerIsCurrent(attempt, a) || (!live && attempt.state === "done")) {
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
