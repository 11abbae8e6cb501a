// The side of the auction room: the bid history (count, scrolling list, older pages over
// before_seq, the "auto" legend) and the auction's details.

import { useState } from "react";
import { formatLocalDateTime, formatLocalTime, softCloseRule } from "../format";
import { useClient, useClientState } from "../hooks";
import { formatMoney } from "../money";
import { olderCursor, type RoomState } from "../state";
import type { AuctionView } from "@gavel/client";

export function History({ room, auction: a, me }: { room: RoomState; auction: AuctionView; me: string | null }) {
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

export function Details({ auction: a }: { auction: AuctionView }) {
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
            <dd>{softCloseRule(a.soft_close, false)}</dd>
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
