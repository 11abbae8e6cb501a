// Sessions that outlive their token (issue 10 item 6, client side): the web client refreshes
// its token before it expires, and after a `token_expired` it re-authenticates so that bids
// work again. The server gives tokens a 6 s life here.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { auctionId, cleanup, http, launchBrowser, openAuction, signIn, sleep, socketSwitch, startServer, waitFor, waitForLive } from "./harness.mjs";

const TTL_S = 6;

/**
 * Whether the server has the session refresh of issue 10 item 6 (POST /api/session/refresh,
 * token_expired on sockets): a server without it answers 404, and these tests are skipped.
 */
async function serverRefreshes() {
  const probe = await startServer("session-probe");
  try {
    const s = await probe.session("Probe");
    const r = await http(`${probe.url}/api/session/refresh`, { method: "POST", token: s.token });
    return r.status === 200;
  } finally {
    await probe.stop();
  }
}

const skip = (await serverRefreshes()) ? false : "the server has no POST /api/session/refresh yet (issue 10 item 6, server side)";

describe("session tokens", { timeout: 180_000, skip }, () => {
  const ctx = { server: null, browser: null, users: [] };
  let alice;
  const sw = socketSwitch();

  before(async () => {
    ctx.server = await startServer("session", ["--session-ttl-secs", String(TTL_S)]);
    ctx.browser = await launchBrowser();
    alice = await signIn(ctx.browser, ctx.server, "Alice", { routeSockets: (page) => sw.install(page) });
    ctx.users.push(alice);
  });

  after(async (t) => cleanup(ctx, t));

  const token = (page) => page.evaluate(() => window.gavel.getState().session?.token ?? null);

  it("refreshes the token before it expires: still signed in and bidding after three lifetimes", { timeout: 60_000 }, async () => {
    const id = auctionId("refresh");
    await ctx.server.createAuction({ id, title: "Mantel clock", description: "", currency: "USD", starting_price: 1000, increment: 100, duration_ms: 600_000 });
    await openAuction(alice.page, id);
    const first = await token(alice.page);
    await sleep(3 * TTL_S * 1000);
    const now = await token(alice.page);
    assert.ok(now && now !== first, "a fresh token");
    assert.equal((await alice.page.getByTestId("user-name").textContent()).trim(), "Alice");
    assert.equal(await alice.page.getByTestId("session-problem").count(), 0);
    // The fresh token works over HTTP too (it is a real session token).
    const me = await fetch(`${ctx.server.url}/api/me`, { headers: { Authorization: `Bearer ${now}` } });
    assert.equal(me.status, 200);
    await alice.page.getByRole("button", { name: /^Quick bid \+1/ }).click();
    await alice.page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
  });

  it("after token_expired on the socket, re-authenticates by itself and bids work again", { timeout: 60_000 }, async () => {
    const id = auctionId("reauth");
    await ctx.server.createAuction({ id, title: "Wall clock", description: "", currency: "USD", starting_price: 1000, increment: 100, duration_ms: 600_000 });
    await openAuction(alice.page, id);
    await waitForLive(alice.page);
    // The page refreshes its token, but its auth messages are lost: the socket keeps the old
    // token, and the server says token_expired when that one runs out.
    let expired = 0;
    const dropAuth = (m) => m.type === "auth";
    sw.clientDrops.push(dropAuth);
    sw.rewriteNext(
      (m) => m.type === "error" && m.code === "token_expired",
      (m) => {
        expired++;
        sw.clientDrops.splice(sw.clientDrops.indexOf(dropAuth), 1); // auth gets through again
        return m;
      },
    );
    await waitFor(() => expired > 0, { timeoutMs: 2 * TTL_S * 1000, what: "token_expired on the socket" });
    assert.ok(sw.droppedFromClient.some((m) => m.type === "auth"), "the page had refreshed and sent auth");
    // No sign-in needed: the client re-authenticated, and a bid is placed.
    await alice.page.getByRole("button", { name: /^Quick bid \+1/ }).click();
    await alice.page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
    assert.equal(await alice.page.getByTestId("session-problem").count(), 0);
    assert.equal((await alice.page.getByTestId("user-name").textContent()).trim(), "Alice");
    const bids = await ctx.server.bids(id);
    assert.deepEqual(bids.map((b) => [b.bidder.name, b.amount]), [["Alice", 1000]]);
  });

  it("a token that expired for real (no refresh in time) asks to sign in again; watching goes on and the bid is placed after", { timeout: 60_000 }, async () => {
    const id = auctionId("expired");
    await ctx.server.createAuction({ id, title: "Cuckoo clock", description: "", currency: "USD", starting_price: 1000, increment: 100, duration_ms: 600_000 });
    await openAuction(alice.page, id);
    await waitForLive(alice.page);
    // A laptop asleep past the expiry: no refresh until the token is gone.
    let expired = 0;
    sw.rewriteNext(
      (m) => m.type === "error" && m.code === "token_expired",
      (m) => {
        expired++;
        return m;
      },
    );
    // The store's protocol client (window.gavel.live, @gavel/client's GavelClient) renews the
    // token itself (its timer, token_expired, a hello without the user): all go through its
    // renewToken, which sleeps until the test wakes the page.
    await alice.page.evaluate(() => {
      const live = window.gavel.live;
      const real = live.renewToken.bind(live);
      live.renewToken = () => (window.__awake ? real() : Promise.resolve(false));
    });
    await waitFor(() => expired > 0, { timeoutMs: 2 * TTL_S * 1000, what: "token_expired on the socket" });
    await alice.page.evaluate(() => {
      window.__awake = true;
      window.gavel.refresh();
    });
    await alice.page.getByTestId("session-problem").filter({ hasText: "Your session has expired, Alice." }).waitFor();
    // Still watching live.
    const bob = await ctx.server.session("Bob");
    assert.equal((await ctx.server.bid(bob.token, id, { amount: 1000, request_id: "bob-1" })).status, 200);
    await alice.page.getByTestId("leader").filter({ hasText: "Bob" }).waitFor();
    // The first bid asks for a name again and is then placed.
    await alice.page.getByRole("button", { name: /^Quick bid \+1/ }).click();
    const form = alice.page.getByTestId("signin-for-bid");
    await form.getByLabel("Your display name").fill("Alice");
    await form.getByRole("button", { name: /^Sign in and bid/ }).click();
    await alice.page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
    const bids = await ctx.server.bids(id);
    assert.deepEqual(bids.map((b) => [b.bidder.name, b.amount]), [["Alice", 1100], ["Bob", 1000]]);
  });
});
