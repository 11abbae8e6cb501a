// The side of the auction room: the bid history (count, scrolling list, older pages over
// before_seq, the "auto" legend), the user's signed receipts and the auction's details.

import { useState, type ReactNode } from "react";
import { formatLocalDateTime, formatLocalTime, softCloseRule } from "../format";
import { useClient, useClientState } from "../hooks";
import { formatMoney } from "../money";
import type { Verification } from "../client";
import { receiptsFile } from "../receipts";
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

/**
 * The signed receipts of the bids accepted in this browser (kept in localStorage): a
 * download in the format `gavel verify --receipt` reads, and, after the close, whether each
 * is in the published log (docs/verification.md, "For the sceptical bidder").
 */
export function Receipts({ auction: a }: { auction: AuctionView }) {
  const s = useClientState();
  const client = useClient();
  const receipts = s.receipts[a.id] ?? [];
  if (receipts.length === 0) return null;
  const v = s.verifications[a.id];
  const closed = a.status === "closed";
  function download() {
    const file = receiptsFile(a.id, receipts);
    const url = URL.createObjectURL(new Blob([file.text], { type: "application/json" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = file.name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
  return (
    <section className="receipts" aria-labelledby="receipts-title" data-testid="receipts">
      <h2 id="receipts-title" className="side-title">
        Your receipts <span className="muted history-count">· {receipts.length}</span>
      </h2>
      <p className="hint">
        The server signed each of your accepted bids. They are kept in this browser; keep the file to prove your bids
        later (<code>gavel verify --receipt</code>).
      </p>
      <ul className="receipt-list" data-testid="receipt-list">
        {receipts.map((r) => (
          <li key={`${r.seq}-${r.signature.slice(0, 16)}`}>
            <span>
              #{r.seq} · {formatMoney(r.amount, r.currency)}
            </span>
            <time className="muted" dateTime={new Date(r.at).toISOString()}>
              {formatLocalTime(r.at, s.clockOffset)}
            </time>
          </li>
        ))}
      </ul>
      <button type="button" className="btn btn-block" data-testid="download-receipts" onClick={download}>
        Download receipts
      </button>
      {closed ? (
        <VerificationLine v={v} onRetry={() => void client.verifyReceipts(a.id)} />
      ) : (
        <p className="hint">After the close they are checked against the auction's published log.</p>
      )}
    </section>
  );
}

function VerificationLine({ v, onRetry }: { v: Verification | undefined; onRetry: () => void }) {
  const state = v?.state ?? "checking";
  const n = v?.count ?? 0;
  const what = `${n} receipt${n === 1 ? "" : "s"}`;
  let text: ReactNode;
  switch (state) {
    case "verified":
      text = (
        <>
          <strong>Verified.</strong> {n === 1 ? "Your receipt is" : `All ${what} are`} in the published log, signed by the
          server's key, and the log ends at the final hash published at the close
          {v?.finalHash ? <> (<code title={v.finalHash}>{v.finalHash.slice(0, 12)}…</code>)</> : null}.
        </>
      );
      break;
    case "failed":
      text = (
        <>
          <strong>Verification failed:</strong> {v?.detail}
        </>
      );
      break;
    case "waiting":
      text = <>Checking… the log is not complete yet (its last entries are being archived).</>;
      break;
    case "unsupported":
      text = <>This browser cannot check signatures on this page (it needs https). Download the receipts and run <code>gavel verify</code>.</>;
      break;
    case "error":
      text = (
        <>
          Could not check the receipts: {v?.detail}{" "}
          <button type="button" className="btn btn-small" onClick={onRetry}>
            Check again
          </button>
        </>
      );
      break;
    default:
      text = <>Checking {what} against the published log…</>;
  }
  return (
    <p className={`verification verification-${state}`} role="status" aria-live="polite" data-testid="receipts-verification" data-state={state}>
      {text}
    </p>
  );
}
