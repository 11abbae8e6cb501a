// The package in a real browser (Debian's Chromium via playwright-core): the built `dist/`
// is served under the Gavel server's origin and driven with the browser's own fetch and
// WebSocket, so nothing Node-only hides in what a web page loads.

import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GavelServer } from "./server.js";

const DIST = resolve(dirname(fileURLToPath(import.meta.url)), "../../dist");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"];

describe("in a browser", () => {
  const server = new GavelServer("client-browser");
  let browser: Browser;
  beforeAll(async () => {
    await server.start();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30_000 });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server.stop();
  });

  it("signs in, watches and bids with the browser's fetch and WebSocket from a page on the server's origin", async () => {
    const { id } = await server.createAuction();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    // dist/ served as /client/* on the Gavel origin (same origin: no CORS involved).
    await page.route(`${server.url}/client/**`, (route) => {
      const file = new URL(route.request().url()).pathname.replace(/^\/client\//, "");
      route.fulfill({ status: 200, contentType: "text/javascript", body: readFileSync(join(DIST, file)) });
    });
    await page.goto(`${server.url}/`);
    // A string, not a function: the test runner would rewrite a function's `import()`.
    const script = `(async (auctionId) => {
      const { GavelClient } = await import("/client/index.js");
      const gavel = new GavelClient({ baseUrl: "" });
      const session = await gavel.signInAsGuest("Browser");
      const hello = await gavel.connect();
      const watch = gavel.watch(auctionId);
      const first = await watch.ready();
      const bid = await gavel.bid(auctionId, 10000, { expectedSeq: first.auction.seq });
      const deadline = Date.now() + 5000;
      while (watch.state.auction.seq < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const out = { user: session.user.name, helloUser: hello.user && hello.user.name, outcome: bid.outcome, seq: watch.state.auction.seq, price: watch.state.auction.price, offsetKnown: gavel.clock.offset !== null };
      gavel.close();
      return out;
    })(${JSON.stringify(id)})`;
    const result = await page.evaluate(script);
    expect(result).toEqual({ user: "Browser", helloUser: "Browser", outcome: "accepted", seq: 2, price: 10000, offsetKnown: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 40_000);
});
