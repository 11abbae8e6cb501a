// One error type for everything the server (or the client on its behalf) refuses.

/**
 * An error from Gavel: an HTTP error body (`{"error": {"code", "message"}}`), a WebSocket
 * `error` message, or a client-side failure (`network`, `timeout`, `closed`).
 *
 * `code` is the wire code (docs/protocol.md, "Error codes"): `unavailable` means nothing
 * was decided (retrying is safe), `outcome_unknown` that a bid may have been decided (retry
 * with the same `requestId` to learn its outcome).
 */
export class GavelError extends Error {
  override readonly name = "GavelError";

  constructor(
    /** The wire error code, or `network` / `timeout` / `closed` / `http_<status>` from this client. */
    readonly code: string,
    message: string,
    /** The HTTP status (0 when there was no HTTP answer). */
    readonly status = 0,
    /** The bid's request id, for errors about a bid. */
    readonly requestId?: string,
  ) {
    super(message);
  }
}
