// Delivery latency as this client sees it (docs/protocol.md, "latency_report"): for every
// `update` (its `decided_at`) and `closed` (its `closed_at`) of a watched auction, the time
// from the authority's decision to its arrival here, read on the server's clock through the
// measured offset. Counted per auction into the server's buckets and sent every 30 s as one
// compact `latency_report`. Every figure is uncertain by the offset's error bound: half the
// round trip of the clock sample in use, sent along as `clock_error_ms`.

import type { ClientMessage } from "./generated/protocol.js";

/** Bucket upper bounds (ms, inclusive); one more bucket counts the slower ones. Must equal
 *  the server's `LATENCY_BOUNDS_MS` (it refuses reports of another length). */
export const LATENCY_BOUNDS_MS: readonly number[] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
/** What the server accepts in one report. */
export const MAX_REPORT_AUCTIONS = 64;
export const MAX_REPORT_SAMPLES = 100_000;
export const MAX_CLOCK_ERROR_MS = 60_000;

export type LatencyReportMessage = Extract<ClientMessage, { type: "latency_report" }>;

/** The bucket of a latency (a negative one, from clock error, in the first). */
export function bucketOf(ms: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (ms <= LATENCY_BOUNDS_MS[i]!) return i;
  return LATENCY_BOUNDS_MS.length;
}

export class LatencyRecorder {
  private counts = new Map<string, number[]>();
  private total = 0;

  /** Counts one arrival: `decidedAt` on the server's clock, `serverNow` the server's time
   *  at arrival (local time + offset). Drops what a report could not carry. */
  record(auctionId: string, decidedAt: number, serverNow: number): void {
    if (!Number.isFinite(decidedAt) || !Number.isFinite(serverNow) || this.total >= MAX_REPORT_SAMPLES) return;
    let c = this.counts.get(auctionId);
    if (!c) {
      if (this.counts.size >= MAX_REPORT_AUCTIONS) return;
      c = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
      this.counts.set(auctionId, c);
    }
    c[bucketOf(serverNow - decidedAt)]! += 1;
    this.total += 1;
  }

  /** Updates counted since the last report. */
  get pending(): number {
    return this.total;
  }

  /** The report of everything counted since the last one (then forgotten); null when
   *  nothing arrived. */
  take(clockErrorMs: number): LatencyReportMessage | null {
    if (this.total === 0) return null;
    const auctions = [...this.counts].map(([auction_id, counts]) => ({ auction_id, counts }));
    this.counts = new Map();
    this.total = 0;
    const clock_error_ms = Math.min(MAX_CLOCK_ERROR_MS, Math.max(0, Math.ceil(clockErrorMs)));
    return { type: "latency_report", clock_error_ms, auctions };
  }
}
