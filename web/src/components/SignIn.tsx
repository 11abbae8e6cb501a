import { useId, useState, type FormEvent } from "react";
import { GavelError } from "@gavel/client";
import { httpErrorText } from "../format";
import { useClient } from "../hooks";
import type { SessionResponse as Session } from "@gavel/client";

/** Which field a sign-in error belongs to (so only that field is marked invalid). */
type ErrorField = "name" | "admin_token" | "form";

/**
 * The guest sign-in form. Used on its own page (`#/signin`) and inline in an auction room
 * when a visitor places their first bid.
 */
export function SignInForm({
  compact = false,
  submitLabel,
  onSignedIn,
  onCancel,
}: {
  compact?: boolean;
  submitLabel?: string;
  onSignedIn: (s: Session) => void;
  onCancel?: () => void;
}) {
  const client = useClient();
  const [name, setName] = useState("");
  const [asAdmin, setAsAdmin] = useState(false);
  const [adminToken, setAdminToken] = useState("");
  const [error, setError] = useState<{ field: ErrorField; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const errId = useId();
  const nameId = useId();
  const tokenId = useId();

  async function submit(e: FormEvent) {
    e.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return setError({ field: "name", text: "Enter a display name." });
    if ([...trimmed].length > 40) return setError({ field: "name", text: "The name can have at most 40 characters." });
    if (asAdmin && !adminToken) {
      return setError({ field: "admin_token", text: "Enter the admin token, or untick the auctioneer box." });
    }
    setBusy(true);
    setError(null);
    try {
      const session = await client.http.createSession(trimmed, asAdmin ? adminToken : undefined);
      onSignedIn(session);
    } catch (err) {
      if (err instanceof GavelError) {
        if (err.code === "forbidden") setError({ field: "admin_token", text: "That admin token is not right." });
        else if (err.code === "invalid_name") setError({ field: "name", text: err.message || "That name cannot be used." });
        else if (err.code === "guest_sessions_disabled") setError({ field: "form", text: "Guest sign-in is turned off on this server." });
        else setError({ field: "form", text: httpErrorText(err) });
      } else setError({ field: "form", text: "Sign-in failed. Try again." });
    } finally {
      setBusy(false);
    }
  }

  const invalid = (f: ErrorField) => (error?.field === f ? true : undefined);
  const describedBy = (f: ErrorField) => (error?.field === f ? errId : undefined);
  return (
    <form onSubmit={submit} noValidate aria-label="Sign in" className={compact ? "signin-form compact" : "signin-form"}>
      <div className="field">
        <label className="field-label" htmlFor={nameId}>
          Your display name
        </label>
        <input
          id={nameId}
          name="name"
          autoComplete="nickname"
          maxLength={40}
          value={name}
          onChange={(e) => setName(e.target.value)}
          aria-invalid={invalid("name")}
          aria-describedby={describedBy("name")}
          placeholder="e.g. Alice"
          autoFocus
        />
      </div>
      {!compact && (
        <label className="check">
          <input type="checkbox" checked={asAdmin} onChange={(e) => setAsAdmin(e.target.checked)} />
          <span>I am the auctioneer (admin)</span>
        </label>
      )}
      {asAdmin && (
        <div className="field">
          <label className="field-label" htmlFor={tokenId}>
            Admin token
          </label>
          <input
            id={tokenId}
            name="admin_token"
            type="password"
            autoComplete="off"
            value={adminToken}
            onChange={(e) => setAdminToken(e.target.value)}
            aria-invalid={invalid("admin_token")}
            aria-describedby={describedBy("admin_token")}
          />
        </div>
      )}
      {error && (
        <p id={errId} className="field-error" role="alert" data-testid="signin-error" data-field={error.field}>
          {error.text}
        </p>
      )}
      <div className="signin-actions">
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? "Signing in…" : (submitLabel ?? (asAdmin ? "Sign in as auctioneer" : "Sign in as guest"))}
        </button>
        {onCancel && (
          <button type="button" className="btn btn-block" onClick={onCancel}>
            Not now
          </button>
        )}
      </div>
      <p className="hint">No account needed. Your name is shown to other bidders.</p>
    </form>
  );
}

/** The sign-in page (`#/signin`); afterwards the visitor returns to where they came from. */
export function SignIn({ problem, next }: { problem: string | null; next: string }) {
  const client = useClient();
  return (
    <section className="signin" aria-labelledby="signin-title">
      <div className="signin-card">
        <h1 id="signin-title">Sign in to Gavel</h1>
        <p className="lede">Live auctions: watch prices move, bid in one click, see the hammer fall. Watching needs no sign-in; bidding does.</p>
        {problem && (
          <p className="notice notice-warn" role="alert">
            {problem}
          </p>
        )}
        <SignInForm
          onSignedIn={(session) => {
            client.setSession(session);
            location.hash = next;
          }}
        />
        <p>
          <a className="back" href={next}>
            ← Back without signing in
          </a>
        </p>
      </div>
    </section>
  );
}
