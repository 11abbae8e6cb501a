import { useEffect, useMemo, useState } from "react";
import { statusLabel } from "../format";
import { useClient, useClientState, useServerNow } from "../hooks";
import { formatMoney } from "../money";
import { filterAuctions, lobbySections, type LobbyFilter } from "../state";
import type { AuctionView } from "@gavel/client";
import { Countdown } from "./Countdown";
import { LobbySearch } from "./LobbySearch";

const FILTERS: { id: LobbyFilter; label: string }[] = [
  { id: "all", label: "All" },
  { id: "open", label: "Open" },
  { id: "ending", label: "Ending soon" },
  { id: "scheduled", label: "Scheduled" },
  { id: "closed", label: "Closed" },
];

export function Lobby() {
  const client = useClient();
  const s = useClientState();
  const now = useServerNow();
  const [filter, setFilter] = useState<LobbyFilter>(() => {
    const saved = sessionStorage.getItem("gavel.filter") as LobbyFilter | null;
    return saved && FILTERS.some((f) => f.id === saved) ? saved : "all";
  });
  const [sort, setSort] = useState<"ends_asc" | "ends_desc">("ends_asc");
  const [searching, setSearching] = useState(false);

  useEffect(() => client.watchLobby(), [client]);
  useEffect(() => {
    document.title = "Auctions · Gavel";
  }, []);

  const all = useMemo(() => Object.values(s.lobby.auctions), [s.lobby.auctions]);
  // Re-filter with the ticking clock so "ending soon" and "open" follow time.
  const sections = lobbySections(all, filter, now, sort);
  const showLive = filter !== "closed";
  const showEnded = filter === "all" || filter === "closed";
  const counts = useMemo(() => {
    const c: Record<string, number> = {};
    for (const f of FILTERS) c[f.id] = filterAuctions(all, f.id, now).length;
    return c;
  }, [all, Math.floor(now / 1000)]);
  const me = s.session?.user.id ?? null;

  return (
    <section className="lobby" aria-labelledby="lobby-title">
      <div className="lobby-head">
        <h1 id="lobby-title">Auctions</h1>
        <div className="lobby-controls">
          <div role="group" aria-label="Filter auctions" className="filters">
            {FILTERS.map((f) => (
              <button
                key={f.id}
                type="button"
                className="chip"
                aria-pressed={filter === f.id}
                onClick={() => {
                  setFilter(f.id);
                  sessionStorage.setItem("gavel.filter", f.id);
                }}
              >
                {f.label} <span className="chip-count">{counts[f.id] ?? 0}</span>
              </button>
            ))}
          </div>
          <label className="sort">
            <span>Sort by end time</span>
            <select aria-label="Sort by end time" value={sort} onChange={(e) => setSort(e.target.value as "ends_asc" | "ends_desc")}>
              <option value="ends_asc">Ending first</option>
              <option value="ends_desc">Ending last</option>
            </select>
          </label>
        </div>
      </div>
      {s.lobby.loaded && s.conn.status !== "open" && (
        <p className="notice notice-stale" role="status" data-testid="lobby-not-live">
          <strong>Not live — {s.conn.status === "connecting" ? "connecting" : "connection lost"}.</strong> Prices and
          leaders below are the last ones received.
        </p>
      )}
      <LobbySearch
        onActive={setSearching}
        renderList={(list) => <CardList list={list} now={now} me={me} label="Search results" />}
      />
      {searching ? null : !s.lobby.loaded ? (
        <p className="empty" role="status">
          {s.conn.status === "open" ? "Loading auctions…" : "Connecting to the auction house…"}
        </p>
      ) : all.length === 0 ? (
        <p className="empty" role="status" data-testid="lobby-empty">
          {s.session?.user.role === "admin"
            ? "No auctions yet. Create one on the Auctioneer page."
            : "No auctions yet. Check back soon."}
        </p>
      ) : (
        <>
          {showLive && (
            <section className="lobby-section" aria-labelledby="live-title" data-testid="lobby-live">
              <h2 id="live-title" className="section-title">
                {filter === "scheduled" ? "Upcoming" : filter === "all" ? "Open and upcoming" : FILTERS.find((f) => f.id === filter)?.label}
              </h2>
              {sections.live.length === 0 ? (
                <p className="empty" role="status" data-testid="nothing-live">
                  {filter === "all"
                    ? "Nothing live right now. New auctions appear here as soon as they are created."
                    : "No auctions match this filter."}
                </p>
              ) : (
                <CardList list={sections.live} now={now} me={me} label="Open and upcoming auctions" />
              )}
            </section>
          )}
          {showEnded && sections.ended.length > 0 && (
            <section className="lobby-section lobby-ended" aria-labelledby="ended-title" data-testid="lobby-ended">
              <h2 id="ended-title" className="section-title">
                Ended
              </h2>
              <CardList list={sections.ended} now={now} me={me} label="Ended auctions" />
            </section>
          )}
          {filter === "closed" && sections.ended.length === 0 && (
            <p className="empty" role="status">
              No auctions have ended yet.
            </p>
          )}
        </>
      )}
    </section>
  );
}

function CardList({ list, now, me, label }: { list: AuctionView[]; now: number; me: string | null; label: string }) {
  return (
    <ul className="cards" aria-label={label}>
      {list.map((a) => (
        <li key={a.id}>
          <AuctionCard auction={a} now={now} me={me} />
        </li>
      ))}
    </ul>
  );
}

function AuctionCard({ auction: a, now, me }: { auction: AuctionView; now: number; me: string | null }) {
  const status = statusLabel(a, now);
  const leading = a.leader && a.leader.id === me;
  return (
    <a
      href={`#/auction/${encodeURIComponent(a.id)}`}
      className={`card card-${status.toLowerCase()}`}
      data-testid="auction-card"
      data-auction-id={a.id}
    >
      <div className="card-top">
        <span className={`badge badge-${status.toLowerCase()}`}>{status}</span>
        {a.has_reserve && a.status !== "closed" && (
          <span className={`badge ${a.reserve_met ? "badge-ok" : "badge-muted"}`}>
            {a.reserve_met ? "Reserve met" : "Reserve not met"}
          </span>
        )}
        {a.buy_now_available && a.buy_now !== null && a.status !== "closed" && (
          <span className="badge badge-buy">Buy now {formatMoney(a.buy_now, a.currency)}</span>
        )}
      </div>
      <h2 className="card-title">{a.title}</h2>
      <div className="card-price">
        <span className="card-price-label">
          {a.status === "closed" ? "Final price" : a.price === null ? "Starting at" : "Current price"}
        </span>
        <span className="card-price-value" data-testid="card-price">
          {a.status === "closed"
            ? a.closing?.final_price != null
              ? formatMoney(a.closing.final_price, a.currency)
              : "No sale"
            : formatMoney(a.price ?? a.starting_price, a.currency)}
        </span>
      </div>
      <div className="card-meta">
        <span data-testid="card-leader">
          {a.status === "closed"
            ? a.closing?.winner
              ? `Winner: ${a.closing.winner.id === me ? "you" : a.closing.winner.name}`
              : "No winner"
            : a.leader
              ? `Leader: ${leading ? "you" : a.leader.name}`
              : "No bids yet"}
        </span>
        <span data-testid="card-bids">
          {a.bid_count} bid{a.bid_count === 1 ? "" : "s"}
        </span>
      </div>
      <Countdown auction={a} />
    </a>
  );
}
