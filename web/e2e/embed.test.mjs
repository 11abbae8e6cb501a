// The embeddable bid box on a shop page served from another origin: the shop's own HTTP
// server (another host and port) serves a page that loads /embed/gavel-auction.js from Gavel
// and shows <gavel-auction>. The shop signs its user in and hands the box a token of its
// own identity provider (an HS256 JWT Gavel accepts through --jwt-hmac-secret) through
// `getToken` or the `token` attribute; the box shows the live price and countdown, bids,
// and follows other bidders (guests on Gavel itself) live.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { auctionId, cleanup, clockShiftScript, launchBrowser, shot, startServer, waitFor } from "./harness.mjs";

const TEN_MINUTES = 10 * 60_000;

const SECRET = "shop-identity-hmac-secret-for-e2e-0123456789";
const ISSUER = "https://id.shop.test/";
const AUDIENCE = "gavel-embed-e2e";

/** A token of the shop's identity provider for one of its users (HS256, ten minutes). */
function shopToken(sub, name, ttlSecs = 600) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub, name, iat: now, exp: now + ttlSecs })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}

/**
 * The shop: a page with the box, its own sign-in, and /token (a JWT for the signed-in user).
 * Started before Gavel (whose --allowed-origins names it): set `gavelUrl` before use.
 */
async function startShop(auction) {
  let signedIn = false;
  const shop = { gavelUrl: null, shortTokens: 0 };
  const page = (gavelUrl) => `<!doctype html>
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
    const gavelUrl = shop.gavelUrl;
    if (req.method === "GET" && req.url === "/with-token") {
      // A page rendered for a signed-in user: the token is in the attribute.
      const t = shopToken("shop-user-carol", "Carol");
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script src="${gavelUrl}/embed/gavel-auction.js" defer></script></head>
<body><gavel-auction auction="${auction}" token="${t}" locale="en-US"></gavel-auction></body></html>`);
    } else if (req.method === "GET" && req.url === "/") {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(page(gavelUrl));
    } else if (req.method === "POST" && req.url === "/login") {
      signedIn = true;
      res.writeHead(204).end();
    } else if (req.method === "GET" && req.url === "/token") {
      // Minted by the shop for its signed-in user; Gavel never sees the shop's sign-in.
      if (signedIn) res.writeHead(200, { "Content-Type": "text/plain" }).end(shopToken("shop-user-1", "Shopper"));
      else res.writeHead(204).end(); // not signed in on the shop
    } else if (req.method === "GET" && req.url === "/short") {
      // A box whose tokens live 6 s: it must ask getToken again before each one expires.
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script src="${gavelUrl}/embed/gavel-auction.js"></script></head>
<body><gavel-auction auction="${auction}" locale="en-US"></gavel-auction>
<script>document.querySelector("gavel-auction").getToken = async () => (await fetch("/short-token")).text();</script>
</body></html>`);
    } else if (req.method === "GET" && req.url === "/short-token") {
      shop.shortTokens++;
      res.writeHead(200, { "Content-Type": "text/plain" }).end(shopToken("shop-user-erin", "Erin", 6));
    } else if (req.url === "/favicon.ico") res.writeHead(204).end();
    else res.writeHead(404).end();
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  // "localhost" rather than 127.0.0.1, on another port: another origin in every respect.
  shop.url = `http://localhost:${srv.address().port}`;
  shop.close = () => new Promise((r) => srv.close(r));
  return shop;
}


describe("the embeddable bid box on another origin", { timeout: 120_000 }, () => {
  const ctx = { server: null, browser: null, users: [] };
  let shop, stranger;
  const id = auctionId("embed");

  before(async () => {
    shop = await startShop(id);
    stranger = await startShop(id);
    // Only the shop's origin may open WebSockets to Gavel (besides Gavel's own).
    ctx.server = await startServer("embed", [
      "--allowed-origins", shop.url,
      "--jwt-hmac-secret", SECRET,
      "--jwt-issuer", ISSUER,
      "--jwt-audience", AUDIENCE,
      "--guest-sessions", "true", // Bob and Dave bid as guests on Gavel itself
      "--jwt-leeway-secs", "0", // a token is refused the second it expires
    ]);
    shop.gavelUrl = stranger.gavelUrl = ctx.server.url;
    ctx.browser = await launchBrowser();
  });

  after(async (t) => {
    await shop?.close();
    await stranger?.close();
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
    assert.equal(await box.locator('[part="leader"]').textContent(), "Bob (guest) leads · 2 bids");
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

  it("stays not live on a page whose origin is not in --allowed-origins", { timeout: 30_000 }, async () => {
    const context = await ctx.browser.newContext();
    const page = await context.newPage();
    ctx.users.push({ name: "stranger", context, consoleLines: [] });
    const refused = [];
    page.on("websocket", (ws) => ws.on("socketerror", (e) => refused.push(String(e))));
    await page.goto(stranger.url);
    assert.notEqual(new URL(stranger.url).origin, new URL(shop.url).origin);
    // The script itself loads (a classic script needs no CORS); the WebSocket is refused.
    await page.locator("gavel-auction[data-state]").waitFor();
    await waitFor(async () => refused.length > 0, { what: "a refused WebSocket", timeoutMs: 10_000 });
    await page.waitForTimeout(2_000);
    assert.equal(await page.locator("gavel-auction[data-live]").count(), 0);
    assert.equal(await page.locator("gavel-auction").getAttribute("data-state"), "loading");
    assert.equal(await page.locator("gavel-auction").getByRole("button").isDisabled(), true);
    const log = readFileSync(ctx.server.logPath, "utf8");
    assert.ok(log.includes("WebSocket upgrade refused") && log.includes(stranger.url.replace(/\/$/, "")), "the refusal is logged with the origin");
  });

  it("asks getToken again before the token expires, and bids with the fresh one", { timeout: 60_000 }, async () => {
    const context = await ctx.browser.newContext();
    const page = await context.newPage();
    const consoleLines = [];
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
    ctx.users.push({ name: "erin", context, consoleLines });
    await page.goto(`${shop.url}/short`);
    const box = page.locator("gavel-auction");
    await page.locator("gavel-auction[data-live]").waitFor({ timeout: 15_000 });
    // Signed in at once (getToken gives a token): the hint offers the next minimum.
    await waitFor(async () => (await box.locator('[part="hint"]').textContent()).startsWith("The next bid must be at least"), { what: "signed in" });
    const first = shop.shortTokens;
    assert.ok(first >= 1);
    // 6 s tokens: by 11 s later at least two more were fetched, and the first has expired.
    await page.waitForTimeout(11_000);
    assert.ok(shop.shortTokens >= first + 2, `getToken called ${shop.shortTokens} times`);
    await page.locator("gavel-auction[data-live]").waitFor();
    const min = (await ctx.server.getAuction(id)).min_bid;
    await box.getByRole("button").click();
    await box.locator('[part="message"]').filter({ hasText: "Your bid was placed" }).waitFor({ timeout: 15_000 });
    const last = (await ctx.server.bids(id))[0];
    assert.equal(last.bidder.name, "Erin");
    assert.equal(last.amount, min);
    assert.deepEqual(consoleLines, []);
  });
});
