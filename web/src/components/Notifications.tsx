import { useEffect, useRef, useState } from "react";
import { useClient, useClientState } from "../hooks";
import { formatMoney } from "../money";
import { notificationText } from "../personal";

/** The bell in the header: unread count, the list of notifications, and the switch for the
 *  browser's own notifications. Also puts the unread count in the tab title. */
export function NotificationCentre() {
  const client = useClient();
  const s = useClientState();
  const [open, setOpen] = useState(false);
  const [permission, setPermission] = useState<string>(() =>
    typeof window !== "undefined" && "Notification" in window ? window.Notification.permission : "unsupported",
  );
  const panel = useRef<HTMLDivElement>(null);
  const { notifications, unread } = s.personal;

  // The tab title carries the unread count, whatever page sets the rest of it.
  useEffect(() => {
    const strip = (t: string) => t.replace(/^\(\d+\) /, "");
    const apply = () => {
      const base = strip(document.title);
      const want = unread > 0 ? `(${unread}) ${base}` : base;
      if (document.title !== want) document.title = want;
    };
    apply();
    const obs = new MutationObserver(apply);
    const title = document.querySelector("title");
    if (title) obs.observe(title, { childList: true, characterData: true, subtree: true });
    return () => obs.disconnect();
  }, [unread]);

  useEffect(() => {
    if (!open) return;
    client.markNotificationsRead();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") setOpen(false);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [open, unread, client]);

  if (!s.session) return null;
  const label = unread > 0 ? `Notifications, ${unread} unread` : "Notifications";
  return (
    <div className="notif" ref={panel}>
      <button
        type="button"
        className="btn btn-ghost btn-small notif-bell"
        aria-expanded={open}
        aria-controls="notif-panel"
        aria-label={label}
        data-testid="notif-bell"
        onClick={() => setOpen((o) => !o)}
      >
        <svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2">
          <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
          <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
        </svg>
        {unread > 0 && (
          <span className="notif-count" data-testid="notif-count">
            {unread}
          </span>
        )}
      </button>
      {open && (
        <div id="notif-panel" className="notif-panel" role="region" aria-label="Notifications" data-testid="notif-panel">
          <div className="notif-head">
            <strong>Notifications</strong>
            <a href="#/me" onClick={() => setOpen(false)}>
              My auctions
            </a>
          </div>
          {permission === "default" && (
            <button
              type="button"
              className="btn btn-small"
              data-testid="notif-enable"
              onClick={() => void window.Notification.requestPermission().then(setPermission)}
            >
              Also notify me outside this tab
            </button>
          )}
          {notifications.length === 0 ? (
            <p className="notif-empty">
              Nothing yet. You will hear here when you are outbid, win or lose, and a minute before an auction you
              follow ends.
            </p>
          ) : (
            <ul className="notif-list" aria-live="polite">
              {notifications.map((n) => (
                <li key={n.id} className={`notif-item notif-${n.kind}`} data-testid="notif-item" data-kind={n.kind}>
                  <a href={`#/auction/${encodeURIComponent(n.auction_id)}`} onClick={() => setOpen(false)}>
                    {notificationText(n, formatMoney)}
                  </a>
                  <time dateTime={new Date(n.at).toISOString()}>{new Date(n.at).toLocaleTimeString()}</time>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}

const STATUS_TEXT: Record<string, string> = {
  leading: "You lead",
  outbid: "Outbid",
  won: "You won",
  lost: "Not won",
  watching: "Watching",
};

/** Where the signed-in user stands in an auction, as a small badge (lobby cards, lists). */
export function MyStatusBadge({ auctionId }: { auctionId: string }) {
  const s = useClientState();
  const mine = s.personal.auctions[auctionId];
  if (!mine) return null;
  return (
    <span className={`my-status my-status-${mine.my_status}`} data-testid="my-status" data-status={mine.my_status}>
      {STATUS_TEXT[mine.my_status] ?? mine.my_status}
    </span>
  );
}

/** Watch / stop watching (signed-in users). */
export function WatchButton({ auctionId }: { auctionId: string }) {
  const client = useClient();
  const s = useClientState();
  const [busy, setBusy] = useState(false);
  if (!s.session || s.session.user.role === "admin") return null;
  const watched = s.personal.auctions[auctionId]?.watched ?? false;
  return (
    <button
      type="button"
      className="btn btn-ghost btn-small"
      aria-pressed={watched}
      data-testid="watch-button"
      disabled={busy}
      onClick={() => {
        setBusy(true);
        void client.setWatched(auctionId, !watched).finally(() => setBusy(false));
      }}
    >
      {watched ? "★ Watching" : "☆ Watch"}
    </button>
  );
}

/** "What happens next" for the winner, once the auction has closed. */
export function NextSteps({ auctionId, won }: { auctionId: string; won: boolean }) {
  const client = useClient();
  const s = useClientState();
  const fromChannel = s.personal.auctions[auctionId]?.next_steps ?? null;
  const [fetched, setFetched] = useState<{ text: string; url?: string | null } | null>(null);
  useEffect(() => {
    if (!won || fromChannel) return;
    let live = true;
    void client.nextSteps(auctionId).then((v) => {
      if (live) setFetched(v);
    });
    return () => {
      live = false;
    };
  }, [won, fromChannel, auctionId, client]);
  const steps = fromChannel ?? fetched;
  if (!won || !steps) return null;
  return (
    <section className="next-steps notice" data-testid="next-steps" aria-label="What happens next">
      <h3>What happens next</h3>
      {steps.text && <p>{steps.text}</p>}
      {steps.url && (
        <p>
          <a href={steps.url} target="_blank" rel="noopener noreferrer" data-testid="next-steps-link">
            Continue to the seller's page
          </a>
        </p>
      )}
    </section>
  );
}
