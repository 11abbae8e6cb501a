// The personal channel in the browser (issue 12, "What bidders expect"): a bidder on the
// lobby (no room open) is told in the notification centre and the tab title that another
// bidder outbid them; the lobby card shows where they stand; "My auctions" lists it; the
// winner sees the auctioneer's next steps in the room after the close.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { auctionId, cleanup, http, launchBrowser, openAuction, shot, signIn, WEB_DIR, waitFor } from "./harness.mjs";

describe("personal channel", { timeout: 120_000 }, () => {
  const ctx = { server: null, browser: null, users: [] };
  let ann;

  before(async () => {
    ctx.server = await (await import("./harness.mjs")).startServer("personal");
    ctx.browser = await launchBrowser();
    ann = await signIn(ctx.browser, ctx.server, "Ann");
    ctx.users.push(ann);
  });

  after(async (t) => cleanup(ctx, t));

  it("tells a bidder on the lobby that they were outbid: centre, tab title, card, My auctions", { timeout: 60_000 }, async () => {
    const id = auctionId("outbid");
    await ctx.server.createAuction({ id, title: "Brass telescope", description: "", currency: "USD", starting_price: 1000, increment: 100, duration_ms: 600_000 });
    await openAuction(ann.page, id);
    // Ann bids, then goes back to the lobby.
    await ann.page.getByTestId("auction-room").waitFor();
    const token = await ann.page.evaluate(() => window.gavel.getState().session.token);
    const mine = await ctx.server.bid(token, id, { amount: 1000, request_id: "ann-1" });
    assert.equal(mine.data.outcome, "accepted", JSON.stringify(mine.data));
    // Placed from "another device" (HTTP): a reload's `personal` answer knows it.
    await ann.page.goto(`${ctx.server.url}/#/`);
    await ann.page.reload();
    const card = ann.page.locator(`[data-testid="auction-card"][data-auction-id="${id}"]`);
    await waitFor(async () => (await card.getByTestId("card-my-status").getAttribute("data-status")) === "leading", { what: "card says leading" });
    assert.equal(await ann.page.getByTestId("notif-count").count(), 0, "nothing unread yet");

    const bob = await ctx.server.session("Bob");
    const r = await ctx.server.bid(bob.token, id, { amount: 1500, request_id: "bob-1" });
    assert.equal(r.data.outcome, "accepted");

    await waitFor(async () => (await ann.page.getByTestId("notif-count").textContent()) === "1", { what: "one unread notification" });
    await waitFor(async () => (await ann.page.title()).startsWith("(1) "), { what: "tab title badge" });
    await waitFor(async () => (await card.getByTestId("card-my-status").getAttribute("data-status")) === "outbid", { what: "card says outbid" });
    await ann.page.getByTestId("notif-bell").click();
    const item = ann.page.getByTestId("notif-item").first();
    assert.equal(await item.getAttribute("data-kind"), "outbid");
    assert.match(await item.textContent(), /outbid on “Brass telescope”: now \$15\.00/);
    const png = await shot(ann.page, "personal-notification-centre");
    if (process.env.UPDATE_DOCS_SCREENSHOT === "1") copyFileSync(png, join(WEB_DIR, "../docs/img/notification-centre.png"));
    await waitFor(async () => !(await ann.page.title()).startsWith("("), { what: "title badge cleared once read" });
    assert.equal(await ann.page.getByTestId("notif-count").count(), 0);

    // "My auctions" lists it under "I was outbid", live.
    await ann.page.goto(`${ctx.server.url}/#/me`);
    await ann.page.getByTestId("my-tab-outbid").click();
    const row = ann.page.locator(`[data-testid="my-item"][data-auction="${id}"]`);
    await row.waitFor();
    assert.equal(await row.getByTestId("my-status").getAttribute("data-status"), "outbid");
  });

  it("shows the winner the auctioneer's next steps after the close, and watching works from the room", { timeout: 60_000 }, async () => {
    const id = auctionId("steps");
    await ctx.server.createAuction({ id, title: "Walnut chest", description: "", currency: "USD", starting_price: 1000, increment: 100, duration_ms: 4_000 });
    const set = await http(`${ctx.server.url}/api/auctions/${id}/next_steps`, {
      method: "PUT",
      token: ctx.server.adminToken,
      body: { text: "Pay within 3 days; pick-up in Ghent.", url: "https://pay.example/walnut" },
    });
    assert.equal(set.status, 204, JSON.stringify(set.data));
    await openAuction(ann.page, id);
    await ann.page.getByTestId("watch-button").click();
    await waitFor(async () => (await ann.page.getByTestId("watch-button").getAttribute("aria-pressed")) === "true", { what: "watching" });
    const token = await ann.page.evaluate(() => window.gavel.getState().session.token);
    const r = await ctx.server.bid(token, id, { amount: 1000, request_id: "ann-w" });
    assert.equal(r.data.outcome, "accepted");
    await ann.page.getByTestId("next-steps").waitFor({ timeout: 15_000 });
    assert.match(await ann.page.getByTestId("next-steps").textContent(), /Pay within 3 days/);
    assert.equal(await ann.page.getByTestId("next-steps-link").getAttribute("href"), "https://pay.example/walnut");
    await waitFor(
      async () => ann.page.evaluate((i) => window.gavel.getState().personal.notifications.some((n) => n.auction_id === i && n.kind === "won"), id),
      { what: "a won notification", timeoutMs: 10_000 },
    );
  });
});
