import { useEffect } from "react";
import { Auctioneer } from "./components/Auctioneer";
import { AuctionRoom } from "./components/AuctionRoom";
import { Header } from "./components/Header";
import { Lobby } from "./components/Lobby";
import { MyAuctions } from "./components/MyAuctions";
import { SignIn } from "./components/SignIn";
import { useClientState, useHashRoute } from "./hooks";

export type Route =
  | { page: "lobby" }
  | { page: "auction"; id: string }
  | { page: "admin" }
  | { page: "me" }
  | { page: "signin"; next: string };

/** Where the sign-in page returns to: a hash route of this app, never anything else. */
function safeNext(raw: string | null): string {
  if (!raw) return "#/";
  return /^#\/[^\s]*$/.test(raw) && !raw.startsWith("#/signin") ? raw : "#/";
}

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/";
  const signin = /^\/signin(?:\?(.*))?$/.exec(path);
  if (signin) {
    let next: string | null = null;
    try {
      next = new URLSearchParams(signin[1] ?? "").get("next");
    } catch {
      next = null;
    }
    return { page: "signin", next: safeNext(next) };
  }
  const m = /^\/auction\/(.+)$/.exec(path);
  if (m) {
    let id = m[1];
    try {
      id = decodeURIComponent(id);
    } catch {
      // keep it raw
    }
    return { page: "auction", id };
  }
  if (path === "/admin") return { page: "admin" };
  if (path === "/me") return { page: "me" };
  return { page: "lobby" };
}

export function App() {
  const state = useClientState();
  const route = parseRoute(useHashRoute());

  useEffect(() => {
    const base = "Gavel — live auctions";
    if (route.page === "admin") document.title = `Auctioneer · ${base}`;
    else if (route.page === "lobby") document.title = base;
    else if (route.page === "signin") document.title = `Sign in · ${base}`;
  }, [route.page]);

  let main;
  if (route.page === "signin") main = <SignIn problem={state.sessionProblem} next={route.next} />;
  else if (route.page === "auction") main = <AuctionRoom key={route.id} id={route.id} />;
  else if (route.page === "admin") main = <Auctioneer />;
  else if (route.page === "me") main = <MyAuctions />;
  else main = <Lobby />;

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Header route={route} />
      <main id="main" tabIndex={-1}>
        {!state.session && state.sessionProblem && route.page !== "signin" && (
          <p className="notice notice-warn" role="alert" data-testid="session-problem">
            {state.sessionProblem}{" "}
            <a href={`#/signin?next=${encodeURIComponent(location.hash || "#/")}`}>Sign in again</a>
          </p>
        )}
        {main}
      </main>
      <footer className="footer">
        <ClockNote />
      </footer>
    </div>
  );
}

function ClockNote() {
  const s = useClientState();
  if (s.clockOffset === null) return <span>Gavel · syncing the clock with the server…</span>;
  const off = s.clockOffset / 1000;
  const drift = Math.abs(off) < 0.5 ? "your clock is right" : `your clock is ${Math.abs(off).toFixed(1)} s ${off > 0 ? "behind" : "ahead"}`;
  return (
    <span data-testid="clock-note" data-offset-ms={Math.round(s.clockOffset)}>
      Gavel · times use the server clock ({drift}
      {s.clockRtt !== null ? `, round trip ${Math.round(s.clockRtt)} ms` : ""})
    </span>
  );
}
