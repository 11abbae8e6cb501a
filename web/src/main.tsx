import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { GavelError } from "@gavel/client";
import { App } from "./App";
import { GavelClient, loadSession } from "./client";
import { ClientContext } from "./hooks";
import "./styles.css";

const session = loadSession();
const client = new GavelClient(session);
client.start();

// A token kept from earlier in this tab may have expired: check it once.
if (session) {
  client.http.me().then(
    (user) => {
      if (user.name !== session.user.name || user.role !== session.user.role) {
        client.setSession({ ...session, user: { ...session.user, ...user } });
      }
    },
    (err) => {
      if (err instanceof GavelError && err.status === 401) {
        client.setSession(null, "Your session has expired. Please sign in again.");
      }
    },
  );
}

// For debugging and end-to-end tests: the live state, read-only by convention.
(window as unknown as { gavel: GavelClient }).gavel = client;

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ClientContext.Provider value={client}>
      <App />
    </ClientContext.Provider>
  </StrictMode>,
);
