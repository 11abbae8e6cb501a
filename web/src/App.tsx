import { useEffect } from "react";
import { Auctioneer } from "./components/Auctioneer";
import { AuctionRoom } from "./components/AuctionRoom";
import { Header } from "./components/Header";
import { Lobby } from "./components/Lobby";
import { SignIn } from "./components/SignIn";
import { useClientState, useHashRoute } from "./hooks";

export type Route = { page: "lobby" } | { page: "auction"; id: string } | { page: "admin" };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/";
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
  return { page: "lobby" };
}

export function App() {
  const state = useClientState();
  const route = parseRoute(useHashRoute());

  useEffect(() => {
    const base = "Gavel — live auctions";
    if (route.page === "admin") document.title = `Auctioneer · ${base}`;
    else if (route.page === "lobby") document.title = base;
  }, [route.page]);

  let main;
  if (!state.session) main = <SignIn problem={state.sessionProblem} />;
  else if (route.page === "auction") main = <AuctionRoom key={route.id} id={route.id} />;
  else if (route.page === "admin") main = <Auctioneer />;
  else main = <Lobby />;

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Header route={route} />
      <main id="main" tabIndex={-1}>
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
