// The bid forms of the auction room: a typed amount, a maximum (proxy) bid, buy-now, and
// the confirmation a large amount waits for (docs/rules.md, "What the web client adds").

import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { CONFIRM_INCREMENTS, CONFIRM_PRICE_FACTOR, formatMoney, needsConfirmation, parseMoney, validateBidInput } from "../money";
import type { AuctionView } from "@gavel/client";

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
    <div
      className="confirm-large"
      role="alertdialog"
      aria-labelledby="confirm-large-q"
      data-testid="confirm-large"
      onKeyDown={(e) => {
        if (e.key === "Escape") onCancel();
      }}
    >
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

export function CustomBid({ auction: a, disabled, onBid }: { auction: AuctionView; disabled: boolean; onBid: (n: number) => void }) {
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

export function MaxBid({
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

export function BuyNow({ auction: a, disabled, onBuy }: { auction: AuctionView; disabled: boolean; onBuy: () => void }) {
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
