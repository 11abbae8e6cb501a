import { useId, useState, type FormEvent } from "react";
import { ApiError, createSession } from "../api";
import { useClient } from "../hooks";

export function SignIn({ problem }: { problem: string | null }) {
  const client = useClient();
  const [name, setName] = useState("");
  const [asAdmin, setAsAdmin] = useState(false);
  const [adminToken, setAdminToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const errId = useId();

  async function submit(e: FormEvent) {
    e.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) {
      setError("Enter a display name.");
      return;
    }
    if ([...trimmed].length > 40) {
      setError("The name can have at most 40 characters.");
      return;
    }
    if (asAdmin && !adminToken) {
      setError("Enter the admin token, or untick the auctioneer box.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const session = await createSession(trimmed, asAdmin ? adminToken : undefined);
      client.setSession(session);
    } catch (err) {
      if (err instanceof ApiError) {
        if (err.code === "forbidden") setError("That admin token is not right.");
        else if (err.code === "invalid_name") setError(err.message || "That name cannot be used.");
        else if (err.code === "guest_sessions_disabled") setError("Guest sign-in is turned off on this server.");
        else setError(err.message);
      } else setError("Sign-in failed. Try again.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="signin" aria-labelledby="signin-title">
      <div className="signin-card">
        <h1 id="signin-title">Welcome to Gavel</h1>
        <p className="lede">Live auctions: watch prices move, bid in one click, see the hammer fall.</p>
        {problem && (
          <p className="notice notice-warn" role="alert">
            {problem}
          </p>
        )}
        <form onSubmit={submit} noValidate aria-label="Sign in">
          <label className="field">
            <span className="field-label">Your display name</span>
            <input
              name="name"
              autoComplete="nickname"
              maxLength={40}
              value={name}
              onChange={(e) => setName(e.target.value)}
              aria-invalid={error ? true : undefined}
              aria-describedby={error ? errId : undefined}
              placeholder="e.g. Alice"
              autoFocus
            />
          </label>
          <label className="check">
            <input type="checkbox" checked={asAdmin} onChange={(e) => setAsAdmin(e.target.checked)} />
            <span>I am the auctioneer (admin)</span>
          </label>
          {asAdmin && (
            <label className="field">
              <span className="field-label">Admin token</span>
              <input
                name="admin_token"
                type="password"
                autoComplete="off"
                value={adminToken}
                onChange={(e) => setAdminToken(e.target.value)}
              />
            </label>
          )}
          {error && (
            <p id={errId} className="field-error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
            {busy ? "Signing in…" : asAdmin ? "Sign in as auctioneer" : "Sign in as guest"}
          </button>
        </form>
        <p className="hint">No account needed. Your name is shown to other bidders.</p>
      </div>
    </section>
  );
}
