// With the marketplace's identity on (external JWTs) and guests allowed beside it, a guest's
// public name carries " (guest)" (docs/security.md): the web client shows it for the guest
// themself, as leader and in the history, while the marketplace's user keeps their own name.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { auctionId, cleanup, launchBrowser, openAuction, signIn, startServer } from "./harness.mjs";

const SECRET = "marketplace-hmac-secret-for-e2e-0123456789";
const ISSUER = "https://idp.test/";
const AUDIENCE = "gavel-e2e";

/** An HS256 token of the marketplace's provider. */
function marketplaceToken(sub, name) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub, name, iat: now, exp: now + 600 })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}

describe("guest names beside the marketplace's users", { timeout: 120_000 }, () => {
  const ctx = { server: null, browser: null, users: [] };
  let alice;

  before(async () => {
    ctx.server = await startServer("guest-marker", [
      "--jwt-hmac-secret", SECRET,
      "--jwt-issuer", ISSUER,
      "--jwt-audience", AUDIENCE,
      "--guest-sessions", "true",
    ]);
    ctx.browser = await launchBrowser();
    alice = await signIn(ctx.browser, ctx.server, "Alice");
    ctx.users.push(alice);
  });

  after(async (t) => cleanup(ctx, t));

  it("shows the guest marker on the guest's name everywhere, and not on the marketplace user's", { timeout: 60_000 }, async () => {
    assert.equal((await alice.page.getByTestId("user-name").textContent()).trim(), "Alice (guest)");
    const id = auctionId("vase");
    await ctx.server.createAuction({ id, title: "Blue vase", currency: "USD", starting_price: 10000, increment: 1000, duration_ms: 10 * 60_000 });
    await openAuction(alice.page, id);
    await alice.page.getByRole("button", { name: /^Quick bid \+1/ }).click();
    await alice.page.getByTestId("leader-notice").filter({ hasText: "You are winning" }).waitFor();
    await alice.page.getByTestId("bid-history").filter({ hasText: "Alice (guest)" }).waitFor();

    // The marketplace's Alice (a real account) outbids her under her own, unmarked name.
    const token = marketplaceToken("alice-42", "Alice");
    const r = await ctx.server.bid(token, id, { amount: 12000, request_id: "market-1" });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    await alice.page.getByTestId("leader-notice").filter({ hasText: "You have been outbid" }).waitFor();
    const leader = (await alice.page.getByTestId("leader").textContent()).trim();
    assert.ok(leader.includes("Alice") && !leader.includes("(guest)"), leader);
    const history = await ctx.server.bids(id);
    assert.deepEqual(
      history.map((b) => [b.bidder.id.startsWith("ext:") ? "ext" : "guest", b.bidder.name, b.amount]),
      [["ext", "Alice", 12000], ["guest", "Alice (guest)", 10000]],
    );
  });
});
