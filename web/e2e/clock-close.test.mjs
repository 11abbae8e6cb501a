// The countdown follows the server clock even when the computer's clock is ten minutes off,
// and the close is shown to everyone with the same winner.
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
  sleep,
  startServer,
  waitFor,
} from "./harness.mjs";

const TEN_MINUTES = 10 * 60_000;

async function remainingMs(page) {
  const v = await page.getByTestId("countdown").first().getAttribute("data-remaining-ms", { timeout: 5_000 });
  return v === null ? null : Number(v);
}

describe("server clock and closing", { timeout: 180_000 }, () => {
  const ctx = { server: null, browser: null, users: [] };
  let alice, carol, dave;

  before(async () => {
    ctx.server = await startServer("clock-close");
    ctx.browser = await launchBrowser();
    alice = await signIn(ctx.browser, ctx.server, "Alice");
    // Carol's computer runs ten minutes fast, Dave's ten minutes slow.
    carol = await signIn(ctx.browser, ctx.server, "Carol", { clockShiftMs: TEN_MINUTES });
    dave = await signIn(ctx.browser, ctx.server, "Dave", { clockShiftMs: -TEN_MINUTES });
    ctx.users.push(alice, carol, dave);
  });

  after(async (t) => cleanup(ctx, t));

  it("shows the same remaining time with a clock ten minutes off (within a second)", { timeout: 60_000 }, async () => {
    // The page's clock really is shifted.
    const skew = await carol.page.evaluate(() => Date.now()) - Date.now();
    assert.ok(Math.abs(skew - TEN_MINUTES) < 5_000, `Carol's clock is off by ${skew} ms`);

    const id = auctionId("vase");
    await ctx.server.createAuction({
      id,
      title: "Ming-style vase",
      description: "Porcelain, blue and white.",
      currency: "EUR",
      starting_price: 20000,
      increment: 1000,
      duration_ms: 5 * 60_000,
    });
    for (const u of [alice, carol, dave]) await openAuction(u.page, id);
    // Wait until every page has estimated its offset from ping/pong samples.
    for (const u of [carol, dave]) {
      await waitFor(
        async () => {
          const off = Number(await u.page.getByTestId("clock-note").getAttribute("data-offset-ms"));
          return Math.abs(Math.abs(off) - TEN_MINUTES) < 1_000;
        },
        { what: `${u.name}'s clock offset`, timeoutMs: 10_000 },
      );
    }
    await sleep(1_000); // a few more samples
    for (let i = 0; i < 3; i++) {
      const [a, c, d] = await Promise.all([remainingMs(alice.page), remainingMs(carol.page), remainingMs(dave.page)]);
      assert.ok(a > 4 * 60_000 && a <= 5 * 60_000, `Alice: ${a} ms left`);
      assert.ok(Math.abs(a - c) < 1_000, `Alice ${a} ms vs Carol (clock +10 min) ${c} ms`);
      assert.ok(Math.abs(a - d) < 1_000, `Alice ${a} ms vs Dave (clock −10 min) ${d} ms`);
      await sleep(300);
    }
    const [ta, tc] = await Promise.all(
      [alice, carol].map(async (u) => (await u.page.getByTestId("countdown").first().textContent()).replace(/\D+/g, "")),
    );
    assert.ok(Math.abs(Number(ta) - Number(tc)) <= 1, `shown ${ta} vs ${tc}`);
    await shot(carol.page, "clock-shifted-carol");
  });

  it("closes for everyone with the same winner and final price", { timeout: 60_000 }, async () => {
    const id = auctionId("lamp");
    await ctx.server.createAuction({
      id,
      title: "Tiffany lamp",
      description: "Stained glass shade.",
      currency: "USD",
      starting_price: 3000,
      increment: 200,
      duration_ms: 12_000,
    });
    for (const u of [alice, carol, dave]) await openAuction(u.page, id);
    await alice.page.getByRole("button", { name: /^Quick bid \+1/ }).click();
    await alice.page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
    await waitFor(async () => (await priceText(carol.page)) === "$30.00", { what: "Carol sees $30.00" });
    await carol.page.getByRole("button", { name: /^Quick bid \+1/ }).click();
    await carol.page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();

    for (const u of [alice, carol, dave]) {
      await u.page.getByTestId("closed-banner").waitFor({ timeout: 20_000 });
    }
    for (const u of [alice, carol, dave]) {
      const w = u.page.getByTestId("winner");
      assert.match(await w.textContent(), /Winner: Carol/);
      assert.equal((await u.page.getByTestId("final-price").textContent()).trim(), "$32.00");
    }
    assert.match(await carol.page.getByTestId("closed-headline").textContent(), /You won!/);
    assert.match(await alice.page.getByTestId("closed-headline").textContent(), /Sold to Carol/);
    assert.match(await alice.page.getByTestId("leader-notice").textContent(), /did not win/);
    // No more bidding controls.
    assert.equal(await alice.page.getByRole("button", { name: /^Quick bid/ }).count(), 0);
    const view = await ctx.server.getAuction(id);
    assert.equal(view.status, "closed");
    assert.equal(view.closing.winner.name, "Carol");
    await shot(alice.page, "closed-alice");
    await shot(carol.page, "closed-carol-won");
  });
});
