// @gavel/client: Gavel's HTTP API and live WebSocket for browsers and Node (ESM, no
// Node-only API in what runs in a browser). docs/integration.md explains its use.

export { GavelClient, refreshDelay, jwtExpiry } from "./client.js";
export type { AuctionState, AuctionWatch, BidOptions, BidState, BidStatus, ClientEvents, GavelClientOptions, LobbyWatch, Session, TokenSource } from "./client.js";
export { HttpApi, newRequestId, errorFrom } from "./http.js";
export type { BidRetryOptions, HttpOptions, SearchParams } from "./http.js";
export { LiveSocket } from "./socket.js";
export type { Hello, LiveSocketOptions, SocketFactory, SocketInfo, SocketLike, SocketStatus } from "./socket.js";
export { AuctionFeed, applyClosed, applyUpdate, withState, MAX_RECENT_BIDS } from "./feed.js";
export type { FeedResult } from "./feed.js";
export { ClockEstimator } from "./clock.js";
export { LatencyRecorder, LATENCY_BOUNDS_MS, bucketOf } from "./latency.js";
export type { LatencyReportMessage } from "./latency.js";
export type { ClockOptions, ClockSample } from "./clock.js";
export { backoffDelay } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export { GavelError } from "./errors.js";
export { verifyReceipts, verifyWithServer, fetchLog, receiptsIn, canVerify, encodeEntry, receiptMessage, headMessage, genesisHash, keyId } from "./verify.js";
export type { VerifyInput, VerifyReport } from "./verify.js";
export type * from "./generated/protocol.js";
