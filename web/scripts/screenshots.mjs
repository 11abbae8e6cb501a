#!/usr/bin/env node
// The screenshots in the README and docs/ (docs/img/*.png), taken from a demo catalogue on a
// real `gavel` server in Debian's Chromium (the e2e harness starts both).
//
//   cd web && npm run screenshots          # GAVEL_BIN, CHROMIUM_PATH as for `npm run e2e`
//
// Rebuild the binary first (`cargo build -p gavel-server`): it serves web/dist.
// Writes lobby.png, auction-room.png (desktop), auction-room-phone.png (390 px, 7-digit
// prices) and, when the client has a notification centre, notifications.png.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser, openAuction, signIn, startServer, waitFor, waitForLive, WEB_DIR, http } from "../e2e/harness.mjs";

const OUT = join(WEB_DIR, "../docs/img");
mkdirSync(OUT, { recursive: true });

const MIN = 60_000;
let rid = 0;
const requestId = () => `demo-${++rid}`;

async function main() {
  const server = await startServer("screenshots");
  let browser;
  try {
    browser = await launchBrowser();
    const now = await server.time();
    const bidders = {};
    for (const name of ["Bob", "Carol", "Dmitri", "Eva"]) bidders[name] = await server.session(name);
    const bid = async (who, id, amount, kind) => {
      const r = await server.bid(bidders[who].token, id, { amount, request_id: requestId(), ...(kind ? { kind } : {}) });
      if (r.status !== 200 && r.status !== 409) throw new Error(`bid ${who} ${id} ${amount}: ${r.status} ${JSON.stringify(r.data)}`);
    };
    const end = async (id) => {
      const r = await http(`${server.url}/api/auctions/${id}/end`, { method: "POST", token: server.adminToken, body: {} });
      if (r.status !== 200) throw new Error(`end ${id}: ${r.status}`);
    };
    const lot = (id, title, description, over = {}) =>
      server.createAuction({ id, title, description, currency: "USD", starting_price: 5000, increment: 500, duration_ms: 45 * MIN, ...over });

    // The catalogue: open lots (one ending soon, one with buy now), one upcoming, two ended.
    await lot("carriage-clock", "Carriage clock", "Brass, 19th century, keeps good time.", { duration_ms: 38 * MIN });
    await lot("eames-chair", "Eames lounge chair", "1970s, rosewood and black leather, with ottoman.", {
      starting_price: 150000,
      increment: 5000,
      reserve: 300000,
      duration_ms: 4 * MIN,
      soft_close: { window_ms: 2 * MIN, extend_ms: 2 * MIN, max_extension_ms: 10 * MIN },
    });
    await lot("leica-m3", "Leica M3 camera", "Double stroke, with Summicron 50 mm.", {
      starting_price: 80000,
      increment: 2500,
      buy_now: 250000,
      duration_ms: 90 * MIN,
    });
    await lot("first-edition", "Signed first edition", "A classic novel, signed by the author.", {
      starting_price: 20000,
      increment: 1000,
      starts_at: now + 2 * 60 * MIN,
      duration_ms: 3 * 60 * MIN,
    });
    await lot("art-deco-lamp", "Art deco table lamp", "Bronze and frosted glass.", { duration_ms: 30 * MIN });
    await lot("oak-dresser", "Oak dresser", "Three drawers, original handles.", { reserve: 40000, duration_ms: 30 * MIN });
    await lot("grand-piano", "Concert grand piano", "Nine feet, fully restored, with bench.", {
      starting_price: 120000000,
      increment: 500000,
      buy_now: 350000000,
      duration_ms: 3 * 60 * MIN,
    });

    await bid("Bob", "eames-chair", 150000);
    await bid("Carol", "eames-chair", 185000);
    await bid("Bob", "leica-m3", 80000);
    await bid("Eva", "art-deco-lamp", 5000);
    await bid("Dmitri", "art-deco-lamp", 7500);
    await bid("Eva", "art-deco-lamp", 9000);
    await end("art-deco-lamp");
    await bid("Carol", "oak-dresser", 22000);
    await end("oak-dresser");
    await bid("Dmitri", "grand-piano", 120000000);
    await bid("Eva", "grand-piano", 126500000);
    await bid("Bob", "carriage-clock", 5000);
    await bid("Carol", "carriage-clock", 6000);

    // The lobby, as Alice sees it (she bids on the clock below).
    const alice = await signIn(browser, server, "Alice");
    const page = alice.page;
    // No flash or pop animation caught half-way.
    await page.emulateMedia({ reducedMotion: "reduce" });
    await page.goto(`${server.url}/#/`);
    await waitFor(async () => (await page.locator('[data-testid="auction-card"]').count()) === 7, { what: "7 cards" });
    await page.screenshot({ path: join(OUT, "lobby.png"), fullPage: true });

    // The room: Alice sets a maximum, Bob bids and her maximum answers (an "auto" row).
    await openAuction(page, "carriage-clock");
    await page.locator('[data-testid="auction-room"][data-live="true"]').waitFor();
    await page.getByLabel(/^Maximum bid \(USD\)/).fill("100"); // within the large-bid rule (min $65, increment $5): no confirmation
    await page.getByRole("button", { name: "Set maximum" }).click();
    await page.getByTestId("bid-outcome").filter({ hasText: "Maximum bid set" }).waitFor();
    await bid("Bob", "carriage-clock", 8000);
    await page.locator('[data-testid="bid-history"] .tag', { hasText: "auto" }).nth(0).waitFor();
    await page.getByTestId("leader-notice").filter({ hasText: "You are winning" }).waitFor();
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(OUT, "auction-room.png"), fullPage: true });

    // A 390 px phone on a 7-digit lot.
    const phone = await signIn(browser, server, "Pat", { viewport: { width: 390, height: 844 } });
    await phone.page.emulateMedia({ reducedMotion: "reduce" });
    await openAuction(phone.page, "grand-piano");
    await phone.page.locator('[data-testid="auction-room"][data-live="true"]').waitFor();
    await waitForLive(phone.page);
    const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
    if (width > 390) throw new Error(`the phone page is ${width} px wide`);
    await phone.page.screenshot({ path: join(OUT, "auction-room-phone.png"), fullPage: true });

    // The notification centre, once the client has one (issue 12, "a personal channel").
    const bell = page.getByRole("button", { name: /notification/i });
    if ((await bell.count()) > 0) {
      await page.goto(`${server.url}/#/`);
      await bid("Carol", "carriage-clock", 11000); // above Alice's maximum: she is outbid
      await bell.first().click();
      await page.waitForTimeout(500);
      await page.screenshot({ path: join(OUT, "notifications.png"), fullPage: true });
      console.log("notifications.png written");
    } else {
      console.log("no notification centre in this client: notifications.png not taken");
    }
    console.log(`screenshots written to ${OUT}`);
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
