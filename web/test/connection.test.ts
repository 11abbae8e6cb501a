import { describe, expect, it } from "vitest";
import { backoffDelay } from "../src/connection";

describe("backoffDelay", () => {
  it("doubles from the base up to the cap, with ±25% jitter", () => {
    const mid = () => 0.5; // no jitter
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, 500, 10_000, mid))).toEqual([
      500, 1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
    expect(backoffDelay(0, 500, 10_000, () => 0)).toBe(375);
    expect(backoffDelay(0, 500, 10_000, () => 0.999999)).toBe(625);
    expect(backoffDelay(1000, 500, 10_000, mid)).toBe(10_000);
  });
});
