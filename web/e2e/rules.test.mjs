// Proxy (maximum) bids, reserve status, buy-now and soft-close extensions in the browser.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  auctionId,
  cleanup,
  launchBrowser,
  openAuction,
  priceText,
  shot,
  signIn,
  startServer,
  waitFor,
} from "./harness.mjs";

describe("auction rules in the web client", { timeout: 240_000 }, () => {
  const ctx = { server: null, browser: null, users: [] };
  let alice, bob;

  before(async () => {
    ctx.server = await startServer("rules");
    ctx.browser = await launchBrowser();
    alice = await signIn(ctx.browser, ctx.server, "Alice");
    bob = await signIn(ctx.browser, ctx.server, "Bob");
    ctx.users.push(alice, bob);
  });

  after(async (t) => cleanup(ctx, t));

  it("a maximum bid bids automatically and outbids a plain bid at once", { timeout: 60_000 }, async () => {
    const id = auctionId("guitar");
    await ctx.server.createAuction({
      id,
      title: "Electric guitar",
      description: "1965, sunburst finish.",
      currency: "USD",
      starting_price: 10000,
      increment: 1000,
      duration_ms: 10 * 60_000,
    });
    await openAuction(alice.page, id);
    await openAuction(bob.page, id);

    // Too low a maximum is refused before sending.
    await alice.page.getByLabel(/^Maximum bid \(USD\)/).fill("50");
    await alice.page.getByRole("button", { name: "Set maximum" }).click();
    await alice.page.getByTestId("max-error").filter({ hasText: "at least the minimum bid" }).waitFor();

    await alice.page.getByLabel(/^Maximum bid \(USD\)/).fill("175");
    await alice.page.getByRole("button", { name: "Set maximum" }).click();
    await alice.page.getByTestId("bid-outcome").filter({ hasText: "Maximum bid set" }).waitFor();
    await alice.page.getByTestId("leader-notice").filter({ hasText: "You are winning" }).waitFor();
    await alice.page.getByTestId("leader-notice").filter({ hasText: "your maximum $175.00" }).waitFor();
    // The price is only what is needed: the starting price.
    await waitFor(async () => (await priceText(bob.page)) === "$100.00" && (await bob.page.getByTestId("bid-count").textContent()).includes("1 bid"), {
      what: "Bob sees Alice's opening bid",
    });
    // Bob never sees Alice's maximum.
    assert.equal(await bob.page.getByText("175").count(), 0);

    // Bob bids $110: Alice's maximum answers at once with $120.
    await bob.page.getByRole("button", { name: /^Quick bid \+1/ }).click();
    await bob.page.getByTestId("bid-outcome").filter({ hasText: "Outbid" }).waitFor();
    await waitFor(async () => (await priceText(bob.page)) === "$120.00", { what: "price $120.00 after the proxy" });
    await bob.page.locator('[data-testid="leader-notice"][data-state="outbid"]').filter({ hasText: "Outbid at once" }).waitFor();
    await bob.page.getByTestId("bid-history").locator(".tag", { hasText: "auto" }).first().waitFor();
    await alice.page.getByTestId("leader-notice").filter({ hasText: "You are winning" }).waitFor();
    await shot(bob.page, "rules-max-bob-outbid");
  });

  it("shows reserve not met, then met", { timeout: 60_000 }, async () => {
    const id = auctionId("painting");
    await ctx.server.createAuction({
      id,
      title: "Oil painting",
      description: "Harbour at dusk.",
      currency: "USD",
      starting_price: 10000,
      increment: 1000,
      reserve: 20000,
      duration_ms: 10 * 60_000,
    });
    await openAuction(alice.page, id);
    await openAuction(bob.page, id);
    for (const u of [alice, bob]) {
      await u.page.locator('[data-testid="reserve-status"][data-met="false"]').filter({ hasText: "Reserve not met" }).waitFor();
    }
    await alice.page.getByLabel("Your bid (USD)").fill("150");
    await alice.page.getByRole("button", { name: "Place bid" }).click();
    await alice.page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
    await waitFor(async () => (await priceText(bob.page)) === "$150.00", { what: "$150.00" });
    assert.equal(await bob.page.getByTestId("reserve-status").getAttribute("data-met"), "false");
    await bob.page.getByLabel("Your bid (USD)").fill("200");
    await bob.page.getByRole("button", { name: "Place bid" }).click();
    for (const u of [alice, bob]) {
      await u.page.locator('[data-testid="reserve-status"][data-met="true"]').filter({ hasText: "Reserve met" }).waitFor();
    }
  });

  it("buy now closes the auction for everyone at once", { timeout: 60_000 }, async () => {
    const id = auctionId("watch");
    await ctx.server.createAuction({
      id,
      title: "Pocket watch",
      description: "Silver, engraved.",
      currency: "USD",
      starting_price: 10000,
      increment: 1000,
      buy_now: 50000,
      duration_ms: 10 * 60_000,
    });
    await openAuction(alice.page, id);
    await openAuction(bob.page, id);
    await bob.page.getByRole("button", { name: "Buy now for $500.00" }).click();
    await bob.page.getByRole("button", { name: "Confirm: buy for $500.00" }).click();
    for (const u of [alice, bob]) await u.page.getByTestId("closed-banner").waitFor({ timeout: 10_000 });
    assert.match(await bob.page.getByTestId("closed-headline").textContent(), /You won!/);
    assert.match(await alice.page.getByTestId("closed-headline").textContent(), /Sold to Bob/);
    assert.match(await alice.page.getByTestId("closed-banner").textContent(), /Bought with Buy now/);
    assert.equal((await alice.page.getByTestId("final-price").textContent()).trim(), "$500.00");
    await shot(alice.page, "rules-buy-now-closed");
  });

  it("a late bid extends the end (soft close) and every watcher is told", { timeout: 60_000 }, async () => {
    const id = auctionId("chair");
    await ctx.server.createAuction({
      id,
      title: "Eames chair",
      description: "Rosewood and leather.",
      currency: "USD",
      starting_price: 10000,
      increment: 1000,
      duration_ms: 8_000,
      soft_close: { window_ms: 5_000, extend_ms: 10_000, max_extension_ms: 60_000 },
    });
    await openAuction(alice.page, id);
    await openAuction(bob.page, id);
    const before = await ctx.server.getAuction(id);
    // Wait until inside the soft-close window (< 5 s left).
    await waitFor(
      async () => {
        const left = Number(await alice.page.getByTestId("countdown").getAttribute("data-remaining-ms"));
        return left > 0 && left < 4_000;
      },
      { what: "the last seconds", timeoutMs: 10_000, intervalMs: 50 },
    );
    await alice.page.getByRole("button", { name: /^Quick bid \+1/ }).click();
    await alice.page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
    for (const u of [alice, bob]) {
      await u.page.getByTestId("extension-notice").filter({ hasText: "Time extended!" }).waitFor({ timeout: 5_000 });
      await u.page.getByTestId("extended-total").waitFor();
    }
    const left = Number(await bob.page.getByTestId("countdown").getAttribute("data-remaining-ms"));
    assert.ok(left > 5_000, `after the extension ${left} ms are left`);
    const after = await ctx.server.getAuction(id);
    assert.ok(after.ends_at > before.ends_at, "ends_at moved");
    await shot(bob.page, "rules-soft-close-extended");
  });
});
