import { createContext, useContext, useEffect, useState, useSyncExternalStore } from "react";
import type { ClientState, GavelClient } from "./client";

export const ClientContext = createContext<GavelClient | null>(null);

export function useClient(): GavelClient {
  const c = useContext(ClientContext);
  if (!c) throw new Error("GavelClient missing");
  return c;
}

/** The client's state (re-renders on every change; the state object is immutable). */
export function useClientState(): ClientState {
  const c = useClient();
  return useSyncExternalStore(c.subscribe, c.getState, c.getState);
}

// One shared ticker for every countdown on the page.
const tickListeners = new Set<() => void>();
let tickTimer: ReturnType<typeof setInterval> | null = null;
let tickCount = 0;

function subscribeTick(fn: () => void): () => void {
  tickListeners.add(fn);
  if (!tickTimer) {
    tickTimer = setInterval(() => {
      tickCount++;
      for (const l of tickListeners) l();
    }, 200);
  }
  return () => {
    tickListeners.delete(fn);
    if (tickListeners.size === 0 && tickTimer) {
      clearInterval(tickTimer);
      tickTimer = null;
    }
  };
}

/** Re-render about five times a second; returns the estimated server time. */
export function useServerNow(): number {
  const c = useClient();
  useSyncExternalStore(subscribeTick, () => tickCount, () => tickCount);
  useClientState(); // the offset may change
  return c.serverNow();
}

/** The current location hash route. */
export function useHashRoute(): string {
  const [hash, setHash] = useState(() => location.hash || "#/");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/");
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return hash;
}
