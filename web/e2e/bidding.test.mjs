// Two users in two browser contexts bid against each other on a real gavel server.
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

describe("live bidding between two users", { timeout: 180_000 }, () => {
  const ctx = { server: null, browser: null, users: [] };
  let alice, bob;

  before(async () => {
    ctx.server = await startServer("bidding");
    ctx.browser = await launchBrowser();
    alice = await signIn(ctx.browser, ctx.server, "Alice");
    bob = await signIn(ctx.browser, ctx.server, "Bob");
    ctx.users.push(alice, bob);
  });

  after(async (t) => cleanup(ctx, t));

  it("shows the name and role of the signed-in user", { timeout: 30_000 }, async () => {
    assert.equal((await alice.page.getByTestId("user-name").textContent()).trim(), "Alice");
    assert.equal((await alice.page.getByTestId("user-role").textContent()).trim(), "bidder");
    assert.equal((await bob.page.getByTestId("user-name").textContent()).trim(), "Bob");
  });

  it("A bids and B sees the new price, leader and history", { timeout: 60_000 }, async () => {
    const id = auctionId("camera");
    await ctx.server.createAuction({
      id,
      title: "Vintage camera",
      description: "Leica M3, 1957, with a 50 mm Summicron lens.",
      currency: "USD",
      starting_price: 10000,
      increment: 1000,
      duration_ms: 10 * 60_000,
    });
    // Bob finds it in the lobby, live.
    await bob.page.goto(`${ctx.server.url}/#/`);
    await bob.page.locator(`[data-testid="auction-card"][data-auction-id="${id}"]`).waitFor();
    await openAuction(alice.page, id);
    await openAuction(bob.page, id);
    assert.equal(await priceText(alice.page), "$100.00");
    assert.equal(await priceText(bob.page), "$100.00");

    // Alice takes the +2 quick bid: min_bid ($100) + one increment = $110.
    await alice.page.getByRole("button", { name: /^Quick bid \+2/ }).click();
    await alice.page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
    await alice.page.getByTestId("leader-notice").filter({ hasText: "You are winning" }).waitFor();

    await waitFor(async () => (await priceText(bob.page)) === "$110.00", { what: "Bob sees $110.00" });
    await bob.page.getByTestId("leader").filter({ hasText: "Alice" }).waitFor();
    await bob.page.getByTestId("bid-history").filter({ hasText: "Alice" }).waitFor();
    assert.match(await bob.page.getByTestId("bid-count").textContent(), /1 bid/);
    // Bob never bid: no "outbid" news for him.
    assert.equal(await bob.page.getByTestId("leader-notice").count(), 0);

    // Bob types a custom amount below the minimum: refused before sending.
    await bob.page.getByLabel("Your bid (USD)").fill("115");
    await bob.page.getByRole("button", { name: "Place bid" }).click();
    await bob.page.getByTestId("custom-error").filter({ hasText: "The minimum bid is $120.00." }).waitFor();
    // Then a valid one in major units with cents.
    await bob.page.getByLabel("Your bid (USD)").fill("125.50");
    await bob.page.getByRole("button", { name: "Place bid" }).click();
    await bob.page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
    await bob.page.getByTestId("leader-notice").filter({ hasText: "You are winning" }).waitFor();

    await waitFor(async () => (await priceText(alice.page)) === "$125.50", { what: "Alice sees $125.50" });
    await alice.page.getByTestId("leader-notice").filter({ hasText: "You have been outbid" }).waitFor();
    const history = await ctx.server.bids(id);
    assert.deepEqual(
      history.map((b) => [b.bidder.name, b.amount]),
      [
        ["Bob", 12550],
        ["Alice", 11000],
      ],
    );
    await shot(alice.page, "bidding-alice-outbid");
    await shot(bob.page, "bidding-bob-winning");
  });

  it("both click the same quick bid at once: exactly one wins, the other is told and can re-bid", { timeout: 60_000 }, async () => {
    const id = auctionId("clock");
    await ctx.server.createAuction({
      id,
      title: "Carriage clock",
      description: "Brass, 19th century, keeps good time.",
      currency: "USD",
      starting_price: 5000,
      increment: 500,
      duration_ms: 10 * 60_000,
    });
    await openAuction(alice.page, id);
    await openAuction(bob.page, id);
    // Let both see the same state first.
    const { seq } = await ctx.server.getAuction(id);
    // (and live: bid buttons are enabled only once the socket confirmed the state; the
    // clicks below are plain DOM clicks, which a disabled button ignores)
    for (const u of [alice, bob]) await u.page.locator(`[data-testid="auction-room"][data-seq="${seq}"][data-live="true"]`).waitFor();

    // Both click at the same wall-clock instant (scheduled inside each page), long before
    // either could see the other's bid come back.
    const at = Date.now() + 400;
    await Promise.all(
      [alice, bob].map((u) =>
        u.page.evaluate(
          (when) =>
            new Promise((resolve) => {
              setTimeout(() => {
                document.querySelector('[data-testid="quick-bid-1"]').click();
                resolve();
              }, Math.max(0, when - Date.now()));
            }),
          at,
        ),
      ),
    );
    for (const u of [alice, bob]) {
      await u.page.locator('[data-testid="bid-outcome"][data-state="done"]').waitFor();
    }
    const notices = await waitFor(
      async () => {
        const states = [];
        for (const u of [alice, bob]) {
          const n = u.page.getByTestId("leader-notice");
          if ((await n.count()) !== 1) return null;
          states.push(await n.getAttribute("data-state"));
        }
        return states.includes("winning") && states.includes("outbid") ? states : null;
      },
      { what: "one winning and one outbid" },
    );
    const winner = notices[0] === "winning" ? alice : bob;
    const loser = winner === alice ? bob : alice;
    assert.equal((await winner.page.getByTestId("bid-outcome").getAttribute("data-outcome")), "accepted");
    const loserOutcome = await loser.page.getByTestId("bid-outcome").getAttribute("data-outcome");
    assert.ok(["stale", "outbid"].includes(loserOutcome), `loser outcome ${loserOutcome}`);
    // The loser sees the new price and a one-click re-bid at the new minimum.
    await waitFor(async () => (await priceText(loser.page)) === "$50.00", { what: "loser sees $50.00" });
    const rebid = loser.page.getByTestId("rebid");
    await rebid.filter({ hasText: "Bid $55.00 now" }).waitFor();
    await shot(loser.page, "simultaneous-loser");
    await rebid.click();
    await loser.page.getByTestId("leader-notice").filter({ hasText: "You are winning" }).waitFor();
    await winner.page.getByTestId("leader-notice").filter({ hasText: "You have been outbid" }).waitFor();
    await waitFor(async () => (await priceText(winner.page)) === "$55.00", { what: "$55.00 everywhere" });
    const history = await ctx.server.bids(id);
    assert.equal(history.length, 2, "exactly two bids placed");
    await loser.page.waitForTimeout(1_500); // let the price highlight fade
    await shot(loser.page, "auction-room");
  });
});
