import { useEffect, useId, useMemo, useState, type FormEvent, type ReactNode } from "react";
import { GavelError, type CreateAuction as CreateAuctionBody } from "@gavel/client";
import { httpErrorText } from "../format";
import { latencyText, statusLabel } from "../format";
import { useClient, useClientState, useServerNow } from "../hooks";
import { formatMoney, parseMoney } from "../money";
import type { AuctionView, LatencyPair, LatencyStats } from "@gavel/client";
import { Countdown } from "./Countdown";

const CURRENCIES = ["USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "INR", "BRL"];

export function Auctioneer() {
  const s = useClientState();
  const client = useClient();
  useEffect(() => client.watchLobby(), [client]);
  useEffect(() => {
    document.title = "Auctioneer · Gavel";
  }, []);
  if (s.session?.user.role !== "admin") {
    return (
      <section className="admin-denied">
        <h1>Auctioneers only</h1>
        <p>
          This page is for the auctioneer. Sign in with the admin token to create and manage auctions
          {s.session ? " (sign out first)" : ""}.
        </p>
        <p className="actions">
          {!s.session && (
            <a className="btn btn-primary" href="#/signin?next=%23%2Fadmin">
              Sign in
            </a>
          )}
          <a className="btn" href="#/">
            Back to the auctions
          </a>
        </p>
      </section>
    );
  }
  return (
    <section className="admin" aria-labelledby="admin-title">
      <h1 id="admin-title">Auctioneer</h1>
      <div className="admin-grid">
        <CreateForm />
        <AuctionTable />
      </div>
    </section>
  );
}

function Field({ label, children, hint }: { label: string; children: ReactNode; hint?: string }) {
  return (
    <label className="field">
      <span className="field-label">{label}</span>
      {children}
      {hint && <span className="hint">{hint}</span>}
    </label>
  );
}

function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function CreateForm() {
  const client = useClient();
  const s = useClientState();
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [category, setCategory] = useState("");
  const [currency, setCurrency] = useState("USD");
  const [customId, setCustomId] = useState("");
  const [starting, setStarting] = useState("10.00");
  const [increment, setIncrement] = useState("1.00");
  const [startMode, setStartMode] = useState<"now" | "at">("now");
  const [startAt, setStartAt] = useState(() => toLocalInput(Date.now() + 3600_000));
  const [endMode, setEndMode] = useState<"duration" | "at">("duration");
  const [duration, setDuration] = useState("5");
  const [durationUnit, setDurationUnit] = useState<"s" | "min" | "h" | "d">("min");
  const [endAt, setEndAt] = useState(() => toLocalInput(Date.now() + 2 * 3600_000));
  const [reserve, setReserve] = useState("");
  const [buyNow, setBuyNow] = useState("");
  const [softClose, setSoftClose] = useState(false);
  const [scWindow, setScWindow] = useState("30");
  const [scExtend, setScExtend] = useState("30");
  const [scMax, setScMax] = useState("10");
  const [errors, setErrors] = useState<string[]>([]);
  const [created, setCreated] = useState<AuctionView | null>(null);
  const [busy, setBusy] = useState(false);
  const errId = useId();

  // Local wall-clock inputs → server time (the local clock may be off).
  const toServer = (local: string) => new Date(local).getTime() + (s.clockOffset ?? 0);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const errs: string[] = [];
    const body: Partial<CreateAuctionBody> = { title: title.trim(), description: description.trim(), currency };
    if (!body.title) errs.push("Give the auction a title.");
    if (category.trim()) {
      if (!/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/.test(category.trim())) {
        errs.push("The category may use a-z, 0-9 and - (up to 40), starting and ending with a letter or digit.");
      } else body.category = category.trim();
    }
    if (customId.trim()) {
      if (!/^[A-Za-z0-9._:-]{1,64}$/.test(customId.trim())) errs.push("The id may use letters, digits and - _ . : (up to 64).");
      else body.id = customId.trim();
    }
    const money = (label: string, v: string, optional: boolean): number | undefined => {
      if (optional && !v.trim()) return undefined;
      const r = parseMoney(v, currency);
      if (!r.ok) {
        errs.push(`${label}: ${r.error}`);
        return undefined;
      }
      return r.minor;
    };
    body.starting_price = money("Starting price", starting, false);
    body.increment = money("Increment", increment, false);
    const res = money("Reserve", reserve, true);
    if (res !== undefined) body.reserve = res;
    const bn = money("Buy-now price", buyNow, true);
    if (bn !== undefined) body.buy_now = bn;
    if (startMode === "at") {
      const t = toServer(startAt);
      if (!Number.isFinite(t)) errs.push("Pick a start time.");
      else body.starts_at = Math.round(t);
    }
    if (endMode === "duration") {
      const n = Number(duration);
      const unit = { s: 1000, min: 60_000, h: 3600_000, d: 86_400_000 }[durationUnit];
      if (!Number.isFinite(n) || n <= 0) errs.push("The duration must be more than zero.");
      else body.duration_ms = Math.round(n * unit);
    } else {
      const t = toServer(endAt);
      if (!Number.isFinite(t)) errs.push("Pick an end time.");
      else body.ends_at = Math.round(t);
    }
    if (softClose) {
      const w = Number(scWindow);
      const x = Number(scExtend);
      const m = scMax.trim() ? Number(scMax) : null;
      if (!(w > 0) || !(x > 0)) errs.push("Soft close: window and extension must be more than zero seconds.");
      else {
        body.soft_close = { window_ms: Math.round(w * 1000), extend_ms: Math.round(x * 1000) };
        if (m !== null) {
          if (!(m > 0)) errs.push("Soft close: the cap must be more than zero minutes.");
          else body.soft_close.max_extension_ms = Math.round(m * 60_000);
        }
      }
    }
    setErrors(errs);
    if (errs.length) return;
    setBusy(true);
    try {
      const a = await client.http.createAuction(body as CreateAuctionBody);
      client.noteAuction(a);
      setCreated(a);
      setTitle("");
      setDescription("");
      setCustomId("");
    } catch (err) {
      setErrors([err instanceof GavelError ? `${httpErrorText(err)} (${err.code})` : "Could not create the auction."]);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="create-form panel" onSubmit={submit} noValidate aria-labelledby="create-title" aria-describedby={errors.length ? errId : undefined}>
      <h2 id="create-title">New auction</h2>
      <Field label="Title">
        <input name="title" value={title} onChange={(e) => setTitle(e.target.value)} required maxLength={200} />
      </Field>
      <Field label="Description">
        <textarea name="description" rows={3} value={description} onChange={(e) => setDescription(e.target.value)} />
      </Field>
      <Field label="Category (optional, e.g. watches)">
        <input name="category" value={category} onChange={(e) => setCategory(e.target.value)} maxLength={40} />
      </Field>
      <div className="row2">
        <Field label="Currency">
          <select name="currency" value={currency} onChange={(e) => setCurrency(e.target.value)}>
            {CURRENCIES.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Id (optional)" hint="Used in the link; generated if empty.">
          <input name="id" value={customId} onChange={(e) => setCustomId(e.target.value)} placeholder="vintage-camera" />
        </Field>
      </div>
      <div className="row2">
        <Field label={`Starting price (${currency})`}>
          <input name="starting_price" inputMode="decimal" value={starting} onChange={(e) => setStarting(e.target.value)} />
        </Field>
        <Field label={`Increment (${currency})`}>
          <input name="increment" inputMode="decimal" value={increment} onChange={(e) => setIncrement(e.target.value)} />
        </Field>
      </div>
      <fieldset>
        <legend>Start</legend>
        <label className="check">
          <input type="radio" name="start_mode" checked={startMode === "now"} onChange={() => setStartMode("now")} /> Now
        </label>
        <label className="check">
          <input type="radio" name="start_mode" checked={startMode === "at"} onChange={() => setStartMode("at")} /> At a time
        </label>
        {startMode === "at" && (
          <Field label="Start time (your local time)">
            <input type="datetime-local" name="starts_at" value={startAt} onChange={(e) => setStartAt(e.target.value)} />
          </Field>
        )}
      </fieldset>
      <fieldset>
        <legend>End</legend>
        <label className="check">
          <input type="radio" name="end_mode" checked={endMode === "duration"} onChange={() => setEndMode("duration")} /> After a
          duration
        </label>
        <label className="check">
          <input type="radio" name="end_mode" checked={endMode === "at"} onChange={() => setEndMode("at")} /> At a time
        </label>
        {endMode === "duration" ? (
          <div className="row2">
            <Field label="Duration">
              <input name="duration" inputMode="decimal" value={duration} onChange={(e) => setDuration(e.target.value)} />
            </Field>
            <Field label="Unit">
              <select name="duration_unit" value={durationUnit} onChange={(e) => setDurationUnit(e.target.value as "s" | "min" | "h" | "d")}>
                <option value="s">seconds</option>
                <option value="min">minutes</option>
                <option value="h">hours</option>
                <option value="d">days</option>
              </select>
            </Field>
          </div>
        ) : (
          <Field label="End time (your local time)">
            <input type="datetime-local" name="ends_at" value={endAt} onChange={(e) => setEndAt(e.target.value)} />
          </Field>
        )}
      </fieldset>
      <div className="row2">
        <Field label={`Reserve (${currency}, optional)`} hint="Hidden minimum for a sale.">
          <input name="reserve" inputMode="decimal" value={reserve} onChange={(e) => setReserve(e.target.value)} />
        </Field>
        <Field label={`Buy-now price (${currency}, optional)`} hint="Ends the auction at once at this price.">
          <input name="buy_now" inputMode="decimal" value={buyNow} onChange={(e) => setBuyNow(e.target.value)} />
        </Field>
      </div>
      <fieldset>
        <legend>Soft close (anti-sniping)</legend>
        <label className="check">
          <input type="checkbox" name="soft_close" checked={softClose} onChange={(e) => setSoftClose(e.target.checked)} /> Late bids
          extend the auction
        </label>
        {softClose && (
          <div className="row3">
            <Field label="Window (seconds)">
              <input name="soft_close_window" inputMode="decimal" value={scWindow} onChange={(e) => setScWindow(e.target.value)} />
            </Field>
            <Field label="Extend by (seconds)">
              <input name="soft_close_extend" inputMode="decimal" value={scExtend} onChange={(e) => setScExtend(e.target.value)} />
            </Field>
            <Field label="Cap (minutes, optional)">
              <input name="soft_close_max" inputMode="decimal" value={scMax} onChange={(e) => setScMax(e.target.value)} />
            </Field>
          </div>
        )}
      </fieldset>
      {errors.length > 0 && (
        <ul id={errId} className="field-error" role="alert">
          {errors.map((e) => (
            <li key={e}>{e}</li>
          ))}
        </ul>
      )}
      {created && (
        <p className="notice notice-ok" role="status" data-testid="created-notice">
          Created “{created.title}”.{" "}
          <a href={`#/auction/${encodeURIComponent(created.id)}`}>Open the auction room</a>
        </p>
      )}
      <button type="submit" className="btn btn-primary" disabled={busy}>
        {busy ? "Creating…" : "Create auction"}
      </button>
    </form>
  );
}

/** How often the auctioneer page asks for delivery latency. */
const LATENCY_POLL_MS = 5_000;

/** `GET /api/admin/latency`, asked again every few seconds (null until the first answer or
 *  when it fails: the page works without it). */
function useLatency(): LatencyStats | null {
  const client = useClient();
  const [stats, setStats] = useState<LatencyStats | null>(null);
  useEffect(() => {
    let stopped = false;
    const poll = async () => {
      try {
        const s = await client.http.deliveryLatency(100);
        if (!stopped) setStats(s);
      } catch {
        if (!stopped) setStats(null);
      }
    };
    void poll();
    const t = setInterval(poll, LATENCY_POLL_MS);
    return () => {
      stopped = true;
      clearInterval(t);
    };
  }, [client]);
  return stats;
}

/** Delivery latency of one scope: what the watchers' browsers report (± their clock error)
 *  and what the server measured up to the socket. */
function LatencyCell({ latency, lastBound }: { latency: LatencyPair | undefined; lastBound: number }) {
  if (!latency || (latency.client.count === 0 && latency.server.count === 0)) return <span className="muted">—</span>;
  return (
    <>
      <div data-testid="latency-clients">
        {latency.client.count > 0 ? (
          <>
            clients {latencyText(latency.client, lastBound)}
            <span className="muted small"> (±{latency.max_clock_error_ms} ms)</span>
          </>
        ) : (
          <span className="muted">clients: no report yet</span>
        )}
      </div>
      <div className="muted small" data-testid="latency-server">
        server {latencyText(latency.server, lastBound)}
      </div>
    </>
  );
}

function AuctionTable() {
  const s = useClientState();
  const now = useServerNow();
  const list = useMemo(() => Object.values(s.lobby.auctions).sort((a, b) => a.ends_at - b.ends_at || a.id.localeCompare(b.id)), [s.lobby.auctions]);
  const latency = useLatency();
  const lastBound = latency?.bounds_ms.at(-1) ?? 10_000;
  const byAuction = useMemo(() => new Map((latency?.auctions ?? []).map((a) => [a.auction_id, a.latency])), [latency]);
  return (
    <section className="panel admin-list" aria-labelledby="all-title">
      <h2 id="all-title">All auctions</h2>
      {latency && (
        <div className="muted small" data-testid="latency-overall">
          Delivery, decision → screen, on this server: <LatencyCell latency={latency.overall} lastBound={lastBound} />
        </div>
      )}
      {list.length === 0 ? (
        <p className="muted">{s.lobby.loaded ? "No auctions yet." : "Loading…"}</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Auction</th>
                <th scope="col">Status</th>
                <th scope="col">Price</th>
                <th scope="col">Bids</th>
                <th scope="col">Time</th>
                <th scope="col" title="Decision → received, as the watchers' browsers report it; decision → written, as the server measured it">
                  Delivery
                </th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.map((a) => (
                <AdminRow key={a.id} auction={a} now={now} latency={byAuction.get(a.id)} lastBound={lastBound} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function AdminRow({
  auction: a,
  now,
  latency,
  lastBound,
}: {
  auction: AuctionView;
  now: number;
  latency: LatencyPair | undefined;
  lastBound: number;
}) {
  const client = useClient();
  const [confirm, setConfirm] = useState<"cancel" | "end" | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const closed = a.status === "closed";

  async function act(action: "cancel" | "end") {
    setBusy(true);
    setError(null);
    try {
      const v = action === "cancel" ? await client.http.cancelAuction(a.id) : await client.http.endAuction(a.id);
      client.noteAuction(v);
      setConfirm(null);
    } catch (err) {
      setError(err instanceof GavelError ? (err.code === "closed" ? "It has already ended." : httpErrorText(err)) : "Failed.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <tr data-testid="admin-row" data-auction-id={a.id}>
      <th scope="row">
        <a href={`#/auction/${encodeURIComponent(a.id)}`}>{a.title}</a>
        <div className="muted small">{a.id}</div>
      </th>
      <td>
        <span className={`badge badge-${statusLabel(a, now).toLowerCase()}`}>{statusLabel(a, now)}</span>
      </td>
      <td>
        {closed ? formatMoney(a.closing?.final_price ?? null, a.currency) : formatMoney(a.price ?? a.starting_price, a.currency)}
        {a.leader && !closed && <div className="muted small">{a.leader.name}</div>}
        {closed && a.closing?.winner && <div className="muted small">won by {a.closing.winner.name}</div>}
      </td>
      <td>{a.bid_count}</td>
      <td>
        <Countdown auction={a} />
      </td>
      <td data-testid="admin-latency">{closed ? <span className="muted">—</span> : <LatencyCell latency={latency} lastBound={lastBound} />}</td>
      <td>
        <div className="actions">
        {closed ? (
          <span className="muted">—</span>
        ) : confirm ? (
          <span className="actions" role="group" aria-label={`Confirm ${confirm === "cancel" ? "cancelling" : "ending"} ${a.title}`}>
            <button type="button" className="btn btn-danger btn-small" disabled={busy} onClick={() => act(confirm)} autoFocus>
              {confirm === "cancel" ? "Yes, cancel it" : "Yes, end it now"}
            </button>
            <button type="button" className="btn btn-ghost btn-small" onClick={() => setConfirm(null)}>
              No
            </button>
          </span>
        ) : (
          <>
            <button type="button" className="btn btn-small" aria-label={`End ${a.title} now`} onClick={() => setConfirm("end")}>
              End now
            </button>
            <button type="button" className="btn btn-small btn-danger-outline" aria-label={`Cancel ${a.title}`} onClick={() => setConfirm("cancel")}>
              Cancel
            </button>
          </>
        )}
        </div>
        {error && (
          <p className="field-error" role="alert">
            {error}
          </p>
        )}
      </td>
    </tr>
  );
}
