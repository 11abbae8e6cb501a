import type { Route } from "../App";
import { useClient, useClientState, useServerNow } from "../hooks";
import { NotificationCentre } from "./Notifications";

export function Header({ route }: { route: Route }) {
  const client = useClient();
  const s = useClientState();
  const user = s.session?.user;
  return (
    <header className="topbar">
      <a className="brand" href="#/" aria-label="Gavel, all auctions">
        <span className="brand-mark" aria-hidden="true">
          G
        </span>
        <span className="brand-name">Gavel</span>
      </a>
      <nav aria-label="Main" className="nav">
        <a href="#/" aria-current={route.page === "lobby" ? "page" : undefined}>
          Auctions
        </a>
        {user && user.role !== "admin" && (
          <a href="#/me" aria-current={route.page === "me" ? "page" : undefined} data-testid="nav-me">
            My auctions
          </a>
        )}
        {user && user.role === "admin" && (
            <a href="#/admin" aria-current={route.page === "admin" ? "page" : undefined}>
            Auctioneer
          </a>
        )}
      </nav>
      <div className="topbar-right">
        <ConnectionIndicator />
        {user && user.role !== "admin" && <NotificationCentre />}
        {user && (
          <div className="user-badge" data-testid="user-badge" aria-label={`Signed in as ${user.name}, ${user.role}`}>
            <span className="user-name" data-testid="user-name">
              {user.name}
            </span>
            <span className={`role-pill role-${user.role}`} data-testid="user-role">
              {user.role === "admin" ? "auctioneer (admin)" : user.role}
            </span>
            <button type="button" className="btn btn-ghost btn-small" onClick={() => client.setSession(null)}>
              Sign out
            </button>
          </div>
        )}
        {!user && route.page !== "signin" && (
          <a
            className="btn btn-ghost btn-small"
            data-testid="signin-link"
            href={`#/signin?next=${encodeURIComponent(location.hash || "#/")}`}
          >
            Sign in
          </a>
        )}
      </div>
    </header>
  );
}

export function ConnectionIndicator() {
  const s = useClientState();
  const now = useServerNow() - (s.clockOffset ?? 0);
  const { status, retryAt } = s.conn;
  let text: string;
  switch (status) {
    case "open":
      text = "Live";
      break;
    case "connecting":
      text = "Connecting…";
      break;
    case "reconnecting": {
      const secs = retryAt ? Math.max(0, Math.ceil((retryAt - now) / 1000)) : 0;
      text = secs > 0 ? `Reconnecting in ${secs} s…` : "Reconnecting…";
      break;
    }
    case "offline":
      text = "Offline";
      break;
  }
  return (
    <div
      className={`conn conn-${status}`}
      role="status"
      aria-live="polite"
      aria-label={`Connection: ${text}`}
      data-testid="connection"
      data-state={status}
    >
      <span className="conn-dot" aria-hidden="true" />
      <span className="conn-text">{text}</span>
    </div>
  );
}
