// The server's clock as seen from here (docs/protocol.md, "pong"):
//   rtt    = receive_time − client_time
//   offset = server_time + rtt/2 − receive_time
// Of several samples the one with the smallest round trip is the most accurate (its
// one-way delays are bounded by the smallest rtt/2). Samples expire, so the estimate follows
// a drifting local clock, and a sample that disagrees with the best by more than both
// uncertainties means the local clock jumped: the old samples are dropped at once.

export interface ClockSample {
  rtt: number;
  offset: number;
  /** Local time the answer arrived. */
  at: number;
}

export interface ClockOptions {
  /** Samples kept (newest first). */
  maxSamples?: number;
  /** Samples older than this (relative to the newest) are dropped (ms). */
  maxAgeMs?: number;
  /** Extra tolerance before a disagreeing sample counts as a local clock jump (ms). */
  jumpToleranceMs?: number;
  /** Round trips longer than this are not used (ms). */
  maxRttMs?: number;
}

export class ClockEstimator {
  private samples: ClockSample[] = [];
  private coarse: ClockSample | null = null;
  private readonly maxSamples: number;
  private readonly maxAgeMs: number;
  private readonly jumpToleranceMs: number;
  private readonly maxRttMs: number;

  constructor(opts: ClockOptions = {}) {
    this.maxSamples = opts.maxSamples ?? 16;
    this.maxAgeMs = opts.maxAgeMs ?? 10 * 60_000;
    this.jumpToleranceMs = opts.jumpToleranceMs ?? 1_000;
    this.maxRttMs = opts.maxRttMs ?? 30_000;
  }

  /** Adds a ping/pong sample; returns it, or null when it cannot be used. */
  addSample(clientTime: number, serverTime: number, receiveTime: number): ClockSample | null {
    const rtt = receiveTime - clientTime;
    if (!Number.isFinite(rtt) || !Number.isFinite(serverTime) || rtt < 0 || rtt > this.maxRttMs) return null;
    const sample: ClockSample = { rtt, offset: serverTime + rtt / 2 - receiveTime, at: receiveTime };
    const best = this.best();
    if (best && Math.abs(sample.offset - best.offset) > (best.rtt + sample.rtt) / 2 + this.jumpToleranceMs) {
      this.samples = [];
    }
    this.samples = this.samples.filter((s) => receiveTime - s.at <= this.maxAgeMs && s.at <= receiveTime);
    this.samples.unshift(sample);
    if (this.samples.length > this.maxSamples) this.samples.length = this.maxSamples;
    return sample;
  }

  /** A one-way server time (`hello`, `heartbeat`): used only until a real sample exists. */
  addCoarse(serverTime: number, receiveTime: number): void {
    if (Number.isFinite(serverTime)) this.coarse = { rtt: Infinity, offset: serverTime - receiveTime, at: receiveTime };
  }

  /** The retained sample with the smallest round trip. */
  best(): ClockSample | null {
    let best: ClockSample | null = null;
    for (const s of this.samples) if (!best || s.rtt < best.rtt) best = s;
    return best;
  }

  /** server time − local time (ms); null before any sample. */
  get offset(): number | null {
    return (this.best() ?? this.coarse)?.offset ?? null;
  }

  /** The round trip of the sample in use (ms), null without a ping sample. */
  get rtt(): number | null {
    return this.best()?.rtt ?? null;
  }

  get sampleCount(): number {
    return this.samples.length;
  }

  /** The server's time now, estimated (ms). */
  serverNow(localNow: number = Date.now()): number {
    return localNow + (this.offset ?? 0);
  }

  reset(): void {
    this.samples = [];
    this.coarse = null;
  }
}
