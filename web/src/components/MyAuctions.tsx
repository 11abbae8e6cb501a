import { useEffect, useState } from "react";
import { useClient, useClientState, useServerNow } from "../hooks";
import { formatMoney } from "../money";
import { MyStatusBadge, WatchButton } from "./Notifications";

type Tab = "watching" | "leading" | "outbid" | "won";

const TABS: { id: Tab; label: string }[] = [
  { id: "watching", label: "I watch" },
  { id: "leading", label: "I lead" },
  { id: "outbid", label: "I was outbid" },
  { id: "won", label: "I won" },
];

/** `#/me`: the auctions I watch, lead, was outbid on and won, with live status (the personal
 *  channel keeps them current; the lobby's live prices are used where it has them). */
export function MyAuctions() {
  const client = useClient();
  const s = useClientState();
  const now = useServerNow();
  const [tab, setTab] = useState<Tab>("watching");
  useEffect(() => {
    document.title = "My auctions · Gavel — live auctions";
    return client.watchLobby();
  }, [client]);
  if (!s.session) {
    return (
      <section className="my-auctions">
        <h1>My auctions</h1>
        <p>
          <a href="#/signin?next=%23%2Fme">Sign in</a> to see the auctions you watch and bid on.
        </p>
      </section>
    );
  }
  const live = new Map(Object.entries(s.lobby.auctions));
  const all = Object.values(s.personal.auctions);
  const shown = all.filter((m) => (tab === "watching" ? m.watched : m.my_status === tab));
  return (
    <section className="my-auctions" data-testid="my-auctions">
      <h1>My auctions</h1>
      <div role="tablist" aria-label="Which auctions" className="tabs">
        {TABS.map((t) => (
          <button
            key={t.id}
            role="tab"
            type="button"
            aria-selected={tab === t.id}
            className={`tab ${tab === t.id ? "tab-on" : ""}`}
            data-testid={`my-tab-${t.id}`}
            onClick={() => setTab(t.id)}
          >
            {t.label} ({all.filter((m) => (t.id === "watching" ? m.watched : m.my_status === t.id)).length})
          </button>
        ))}
      </div>
      {!s.personal.ready && <p>Loading…</p>}
      {s.personal.ready && shown.length === 0 && <p data-testid="my-empty">Nothing here yet.</p>}
      <ul className="my-list" role="tabpanel">
        {shown.map((m) => {
          const l = live.get(m.auction_id);
          const price = l?.price ?? m.price;
          const ends = l?.ends_at ?? m.ends_at;
          const status = l?.status ?? m.status;
          const left = Math.max(0, Math.round((ends - now) / 1000));
          return (
            <li key={m.auction_id} className="my-item" data-testid="my-item" data-auction={m.auction_id}>
              <a href={`#/auction/${encodeURIComponent(m.auction_id)}`}>{m.title}</a>{" "}
              <MyStatusBadge auctionId={m.auction_id} />{" "}
              <span className="my-price">{price != null ? formatMoney(price, m.currency) : "no bids yet"}</span>{" "}
              <span className="my-when">
                {status === "closed" ? "ended" : left > 3600 ? `ends ${new Date(ends).toLocaleString()}` : `${left} s left`}
              </span>{" "}
              <WatchButton auctionId={m.auction_id} />
            </li>
          );
        })}
      </ul>
    </section>
  );
}
