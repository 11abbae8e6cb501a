// Server clock estimate from ping/pong samples (docs/protocol.md, "pong"):
//   rtt    = local_receive_time − client_time
//   offset = server_time + rtt/2 − local_receive_time
// Several samples are kept and the one with the smallest rtt wins; samples expire so the
// estimate follows a drifting local clock, and a jump of the local clock discards the old
// ones at once.

export interface ClockSample {
  rtt: number;
  offset: number;
  /** Local time the pong arrived. */
  at: number;
}

export interface ClockOptions {
  /** Samples kept (newest first). */
  maxSamples?: number;
  /** Samples older than this (relative to the newest) are dropped. */
  maxAgeMs?: number;
  /** A sample disagreeing with the estimate by more than its uncertainty plus this is a jump. */
  jumpToleranceMs?: number;
}

/** rtt given to the rough estimate taken from `hello` (any real pong beats it). */
const COARSE_RTT = 60_000;

export class ClockEstimator {
  private samples: ClockSample[] = [];
  private readonly maxSamples: number;
  private readonly maxAgeMs: number;
  private readonly jumpToleranceMs: number;

  constructor(opts: ClockOptions = {}) {
    this.maxSamples = opts.maxSamples ?? 12;
    this.maxAgeMs = opts.maxAgeMs ?? 5 * 60_000;
    this.jumpToleranceMs = opts.jumpToleranceMs ?? 1_000;
  }

  /** Add a ping/pong sample. Returns it, or null when it is unusable. */
  addPong(clientTime: number, serverTime: number, receiveTime: number): ClockSample | null {
    const rtt = receiveTime - clientTime;
    if (!Number.isFinite(rtt) || !Number.isFinite(serverTime) || rtt < 0 || rtt > 30_000) return null;
    const sample: ClockSample = { rtt, offset: serverTime + rtt / 2 - receiveTime, at: receiveTime };
    this.insert(sample);
    return sample;
  }

  /** A one-way server timestamp (e.g. from `hello`): used only until a real pong arrives. */
  addCoarse(serverTime: number, receiveTime: number): void {
    if (!Number.isFinite(serverTime)) return;
    if (this.samples.some((s) => s.rtt < COARSE_RTT)) return;
    this.samples = [{ rtt: COARSE_RTT, offset: serverTime - receiveTime, at: receiveTime }];
  }

  private insert(sample: ClockSample): void {
    const best = this.best();
    if (best && best.rtt < COARSE_RTT) {
      const uncertainty = (best.rtt + sample.rtt) / 2 + this.jumpToleranceMs;
      if (Math.abs(sample.offset - best.offset) > uncertainty) {
        // The local clock jumped (or was changed): the old samples describe another clock.
        this.samples = [];
      }
    }
    this.samples = this.samples.filter(
      (s) => s.rtt < COARSE_RTT && sample.at - s.at <= this.maxAgeMs && s.at <= sample.at + this.jumpToleranceMs,
    );
    this.samples.unshift(sample);
    if (this.samples.length > this.maxSamples) this.samples.length = this.maxSamples;
  }

  /** The retained sample with the smallest round trip. */
  best(): ClockSample | null {
    let best: ClockSample | null = null;
    for (const s of this.samples) if (!best || s.rtt < best.rtt) best = s;
    return best;
  }

  /** server time − local time, in ms (null before any sample). */
  get offset(): number | null {
    return this.best()?.offset ?? null;
  }

  get rtt(): number | null {
    const b = this.best();
    return b && b.rtt < COARSE_RTT ? b.rtt : null;
  }

  get sampleCount(): number {
    return this.samples.length;
  }

  /** Estimated server time now. */
  serverNow(localNow: number = Date.now()): number {
    return localNow + (this.offset ?? 0);
  }

  reset(): void {
    this.samples = [];
  }
}
