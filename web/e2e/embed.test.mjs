// The embeddable bid box on a shop page served from another origin: the shop's own HTTP
// server (another host and port) serves a page that loads /embed/gavel-auction.js from Gavel
// and shows <gavel-auction>. The shop signs its user in and hands the box a token through
// `getToken`; the box shows the live price and countdown, bids, and follows another
// bidder's bid live.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { GAVEL_BIN, auctionId, cleanup, clockShiftScript, launchBrowser, shot, startServer, waitFor } from "./harness.mjs";

const TEN_MINUTES = 10 * 60_000;

/** The shop: a page with the box, a sign-in that makes a Gavel token server-side, /token. */
async function startShop(gavelUrl, auction) {
  let token = null;
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script src="${gavelUrl}/embed/gavel-auction.js"></script></head>
<body>
<h1>A shop selling a camera</h1>
<button id="signin" type="button">Sign in to the shop</button>
<gavel-auction auction="${auction}" server="${gavelUrl}" locale="en-US"></gavel-auction>
<script>
  const box = document.querySelector("gavel-auction");
  box.getToken = async () => {
    const r = await fetch("/token");
    return r.status === 200 ? r.text() : null;
  };
  window.events = [];
  for (const t of ["gavel-bid", "gavel-signin-required", "gavel-error"]) {
    document.addEventListener(t, (e) => window.events.push({ type: t, detail: e.detail }));
  }
  document.getElementById("signin").onclick = async () => {
    await fetch("/login", { method: "POST" });
    document.body.dataset.signedIn = "yes";
  };
</script>
</body></html>`;
  const srv = createServer(async (req, res) => {
    if (req.method === "GET" && req.url === "/with-token") {
      // A page rendered for a signed-in user: the token is in the attribute.
      const r = await fetch(`${gavelUrl}/api/session`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: "Carol" }),
      });
      const t = (await r.json()).token;
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script src="${gavelUrl}/embed/gavel-auction.js" defer></script></head>
<body><gavel-auction auction="${auction}" token="${t}" locale="en-US"></gavel-auction></body></html>`);
    } else if (req.method === "GET" && req.url === "/") {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(page);
    } else if (req.method === "POST" && req.url === "/login") {
      // The shop's back end gets a token for its user from Gavel (no browser involved).
      const r = await fetch(`${gavelUrl}/api/session`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: "Shopper" }),
      });
      token = (await r.json()).token;
      res.writeHead(204).end();
    } else if (req.method === "GET" && req.url === "/token") {
      if (token) res.writeHead(200, { "Content-Type": "text/plain" }).end(token);
      else res.writeHead(204).end(); // not signed in on the shop
    } else if (req.url === "/favicon.ico") res.writeHead(204).end();
    else res.writeHead(404).end();
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  // "localhost" rather than 127.0.0.1, on another port: another origin in every respect.
  return { url: `http://localhost:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) };
}

/** `--allowed-origins` where the server has it (WebSocket Origin check, CORS). */
function originArgs(origin) {
  const help = execFileSync(GAVEL_BIN, ["serve", "--help"], { encoding: "utf8" });
  return help.includes("--allowed-origins") ? ["--allowed-origins", origin] : [];
}

describe("the embeddable bid box on another origin", { timeout: 120_000 }, () => {
  const ctx = { server: null, browser: null, users: [] };
  let shop;
  const id = auctionId("embed");

  before(async () => {
    // The shop's port must be known before Gavel starts (to allow its origin): start it on
    // a placeholder auction id, which the page only names.
    const placeholder = await startShop("http://127.0.0.1:1", id);
    const shopOrigin = placeholder.url;
    await placeholder.close();
    ctx.server = await startServer("embed", originArgs(shopOrigin));
    shop = await startShop(ctx.server.url, id);
    ctx.browser = await launchBrowser();
  });

  after(async (t) => {
    await shop?.close();
    await cleanup(ctx, t);
  });

  it("shows the live price and countdown, signs in through the shop, bids, and follows another bid live", { timeout: 90_000 }, async () => {
    const auction = await ctx.server.createAuction({
      id,
      title: "Vintage camera",
      description: "Leica M3",
      currency: "USD",
      starting_price: 10000,
      increment: 1000,
      duration_ms: 10 * 60_000,
    });
    // The shopper's computer clock is ten minutes fast: the countdown must not care.
    const context = await ctx.browser.newContext();
    await context.addInitScript({ content: clockShiftScript(TEN_MINUTES) });
    const page = await context.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
    ctx.users.push({ name: "shopper", context, consoleLines });
    await page.goto(shop.url);
    assert.notEqual(new URL(page.url()).origin, new URL(ctx.server.url).origin);

    const box = page.locator("gavel-auction");
    // Open shadow DOM: Playwright's locators reach into it.
    const price = box.locator('[part="price"]');
    const button = box.getByRole("button");
    await page.locator("gavel-auction[data-live]").waitFor({ timeout: 15_000 });
    assert.equal(await box.locator('[part="title"]').textContent(), "Vintage camera");
    assert.equal(await price.textContent(), "$100.00");
    assert.equal(await button.textContent(), "Bid $100.00");
    assert.equal(await box.locator('[part="countdown"]').getAttribute("role"), "timer");
    assert.equal(await page.evaluate(() => document.querySelector("gavel-auction").shadowRoot.mode), "open");

    // The countdown runs on the server's clock: within 2 s of what the server says is left,
    // although the page's own clock is ten minutes ahead.
    const skew = (await page.evaluate(() => Date.now())) - Date.now();
    assert.ok(Math.abs(skew - TEN_MINUTES) < 5_000, `the page's clock is off by ${skew} ms`);
    await page.waitForTimeout(1_000); // the ping burst after hello
    const left = auction.ends_at - (await ctx.server.time());
    const shown = await box.locator('[part="countdown"]').textContent();
    const [m, s] = shown.split(":").map(Number);
    assert.ok(Math.abs((m * 60 + s) * 1000 - left) < 2_000, `countdown ${shown}, ${left} ms left`);

    // Not signed in on the shop: the box asks the page to sign the viewer in.
    await button.click();
    await box.locator('[part="message"]').filter({ hasText: "Please sign in on this site to bid." }).waitFor();
    assert.deepEqual(await page.evaluate(() => window.events.map((e) => e.type)), ["gavel-signin-required"]);

    // Signed in: the bid goes out with the shop's token and is accepted.
    await page.getByRole("button", { name: "Sign in to the shop" }).click();
    await page.locator("body[data-signed-in]").waitFor();
    await button.click();
    await box.locator('[part="message"]').filter({ hasText: "Your bid was placed" }).waitFor({ timeout: 15_000 });
    await waitFor(async () => (await price.textContent()) === "$100.00" && (await box.locator('[part="leader"]').textContent()).startsWith("You are the highest bidder"), {
      what: "own bid shown",
    });
    const bids = await ctx.server.bids(id);
    assert.equal(bids.length, 1);
    assert.equal(bids[0].bidder.name, "Shopper");
    assert.equal(bids[0].amount, 10000);
    assert.equal(await button.isDisabled(), true); // the leader does not outbid themselves

    // Another bidder on Gavel directly: the box follows at once.
    const bob = await ctx.server.session("Bob");
    const r = await ctx.server.bid(bob.token, id, { amount: 15000, request_id: "bob-1" });
    assert.equal(r.data.outcome, "accepted");
    await waitFor(async () => (await price.textContent()) === "$150.00", { what: "Bob's bid shown live", timeoutMs: 5_000 });
    assert.equal(await box.locator('[part="leader"]').textContent(), "Bob leads · 2 bids");
    assert.equal(await button.textContent(), "Bid $160.00");
    assert.equal(await button.isEnabled(), true);
    assert.equal(await box.locator('[part="message"]').textContent(), "You have been outbid.");
    await shot(page, "embed-cross-origin");

    // And the shopper bids again from the box.
    await button.click();
    await waitFor(async () => (await price.textContent()) === "$160.00", { what: "second bid" });
    assert.equal((await ctx.server.bids(id))[0].bidder.name, "Shopper");
    const errors = consoleLines.filter((l) => l.startsWith("[error]") || l.startsWith("[pageerror]"));
    assert.deepEqual(errors, []);
  });

  it("takes the token from the attribute, with the server taken from the script's origin", { timeout: 60_000 }, async () => {
    const context = await ctx.browser.newContext();
    const page = await context.newPage();
    const consoleLines = [];
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
    ctx.users.push({ name: "carol", context, consoleLines });
    await page.goto(`${shop.url}/with-token`);
    const box = page.locator("gavel-auction");
    await page.locator("gavel-auction[data-live]").waitFor({ timeout: 15_000 });
    const before = await ctx.server.getAuction(id);
    const button = box.getByRole("button");
    await waitFor(async () => (await button.textContent()) === `Bid $${(before.min_bid / 100).toFixed(2)}`, { what: "the next minimum on the button" });
    // The button's description names the minimum, for screen readers too.
    assert.equal(await button.getAttribute("aria-describedby"), "hint");
    await button.click();
    await box.locator('[part="message"]').filter({ hasText: "Your bid was placed" }).waitFor({ timeout: 15_000 });
    assert.equal((await ctx.server.bids(id))[0].bidder.name, "Carol");
    assert.equal(await box.locator('[part="price"]').textContent(), `$${(before.min_bid / 100).toFixed(2)}`);
    // Offline: within 3 s the box says its price may be out of date; another bid meanwhile
    // is shown once it is back online.
    await context.setOffline(true);
    const t0 = Date.now();
    await box.locator('[part="connection"]').filter({ hasText: "Offline: the price shown may be out of date." }).waitFor({ timeout: 3_000 });
    assert.ok(Date.now() - t0 < 3_000);
    assert.equal(await page.locator("gavel-auction[data-live]").count(), 0);
    const dave = await ctx.server.session("Dave");
    const nextMin = (await ctx.server.getAuction(id)).min_bid;
    assert.equal((await ctx.server.bid(dave.token, id, { amount: nextMin, request_id: "dave-1" })).data.outcome, "accepted");
    await context.setOffline(false);
    await page.locator("gavel-auction[data-live]").waitFor({ timeout: 15_000 });
    await waitFor(async () => (await box.locator('[part="price"]').textContent()) === `$${(nextMin / 100).toFixed(2)}`, { what: "Dave's bid after the reconnect" });
    assert.equal(await box.locator('[part="connection"]').textContent(), "");
    assert.equal(await box.locator('[part="message"]').textContent(), "You have been outbid.");

    // Removing the token signs the box out: it watches on, and a press asks for a sign-in.
    await page.evaluate(() => document.querySelector("gavel-auction").removeAttribute("token"));
    await waitFor(async () => (await box.locator('[part="hint"]').textContent()) === "Sign in on this site to bid.", { what: "signed out" });
    assert.equal(await button.isDisabled(), true);
    assert.deepEqual(consoleLines, []);
  });
});
