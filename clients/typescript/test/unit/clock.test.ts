// The clock estimator's cases, moved here from the web client's own copy (web/test/clock.test.ts)
// when the web client switched to this package.
import { describe, expect, it } from "vitest";
import { ClockEstimator } from "../../src/clock.js";

describe("ClockEstimator", () => {
  it("computes offset = server_time + rtt/2 − local_receive_time", () => {
    const c = new ClockEstimator();
    // Sent at local 1000, server stamped 5050, received at local 1100 → rtt 100.
    const s = c.addSample(1000, 5050, 1100);
    expect(s).toEqual({ rtt: 100, offset: 5050 + 50 - 1100, at: 1100 });
    expect(c.offset).toBe(4000);
    expect(c.serverNow(2000)).toBe(6000);
  });

  it("keeps the sample with the smallest round trip", () => {
    const c = new ClockEstimator();
    const trueOffset = 600_000; // the local clock is ten minutes behind the server
    // rtt 300 with an asymmetric path (server answered late): offset estimate off by 100
    c.addSample(10_000, 10_000 + trueOffset + 250, 10_300);
    // rtt 20, symmetric
    c.addSample(10_500, 10_500 + trueOffset + 10, 10_520);
    // rtt 200
    c.addSample(11_000, 11_000 + trueOffset + 100, 11_200);
    expect(c.rtt).toBe(20);
    expect(c.offset).toBe(trueOffset);
  });

  it("handles a local clock far ahead of the server", () => {
    const c = new ClockEstimator();
    const local = 1_764_000_600_000; // ten minutes ahead
    const server = 1_764_000_000_000;
    c.addSample(local, server + 15, local + 30);
    expect(c.offset).toBe(-600_000);
    expect(c.serverNow(local + 1000)).toBe(server + 1000);
  });

  it("ignores unusable samples", () => {
    const c = new ClockEstimator();
    expect(c.addSample(2000, 5000, 1000)).toBeNull(); // negative rtt
    expect(c.addSample(0, 5000, 60_000)).toBeNull(); // absurd rtt
    expect(c.addSample(0, Number.NaN, 10)).toBeNull();
    expect(c.offset).toBeNull();
    expect(c.serverNow(123)).toBe(123);
  });

  it("expires old samples so the estimate follows drift", () => {
    const c = new ClockEstimator({ maxAgeMs: 60_000 });
    c.addSample(0, 1000 + 5, 10); // rtt 10, offset 1000
    c.addSample(30_000, 30_000 + 1200 + 20, 30_040); // rtt 40, offset 1200 (drifted)
    expect(c.offset).toBe(1000); // the old one is still fresher than maxAge and better
    c.addSample(70_000, 70_000 + 1300 + 25, 70_050); // 70 s after the first: it expires
    expect(c.rtt).toBe(40);
    expect(c.offset).toBe(1200);
  });

  it("limits the number of samples", () => {
    const c = new ClockEstimator({ maxSamples: 3 });
    c.addSample(0, 500 + 1, 2); // best, rtt 2
    for (let i = 1; i <= 3; i++) c.addSample(i * 100, i * 100 + 500 + 5, i * 100 + 10);
    expect(c.sampleCount).toBe(3);
    expect(c.rtt).toBe(10); // the rtt-2 sample was pushed out
  });

  it("drops old samples when the local clock jumps", () => {
    const c = new ClockEstimator();
    c.addSample(1000, 2000 + 5, 1010); // offset 1000, rtt 10
    // The user sets the clock back by five minutes: the next sample disagrees wildly.
    c.addSample(1100 - 300_000, 2100 + 20, 1140 - 300_000); // rtt 40
    expect(c.sampleCount).toBe(1);
    expect(c.offset).toBe(2120 + 20 - (1140 - 300_000));
  });

  it("uses a coarse hello timestamp only until a real pong arrives", () => {
    const c = new ClockEstimator();
    c.addCoarse(10_000, 4_000);
    expect(c.offset).toBe(6_000);
    expect(c.rtt).toBeNull();
    c.addSample(5_000, 11_010, 5_020);
    expect(c.offset).toBe(6_000);
    expect(c.rtt).toBe(20);
    c.addCoarse(99_999, 5_100); // ignored now
    expect(c.offset).toBe(6_000);
  });
});
