// Reconnect delays: exponential back-off with jitter, so a restarted server is not hit by
// every client at the same instant.

export interface BackoffOptions {
  /** The first delay (ms). */
  baseMs?: number;
  /** The largest delay (ms). */
  maxMs?: number;
  /** Share of the delay that is random: 0.5 draws from [50 %, 100 %] of it. */
  jitter?: number;
}

/** The delay before reconnect attempt `attempt` (0-based): base·2^attempt capped at max, jittered. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, rand: () => number = Math.random): number {
  const base = opts.baseMs ?? 250;
  const max = opts.maxMs ?? 10_000;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
  const raw = Math.min(max, base * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(raw * (1 - jitter + jitter * rand()));
}
