// Finding auctions in the lobby (issue 12, "Find things"): the search box and filters are
// answered by the server's archive indexes (GET /api/search), shown in a real browser.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { cleanup, launchBrowser, shot, signIn, startServer, waitFor } from "./harness.mjs";

describe("lobby search", { timeout: 180_000 }, () => {
  const ctx = { server: null, browser: null, users: [] };
  let alice;

  before(async () => {
    ctx.server = await startServer("search");
    const lot = (id, title, description, category, over = {}) =>
      ctx.server.createAuction({
        id,
        title,
        description,
        category,
        currency: "USD",
        starting_price: 10000,
        increment: 1000,
        duration_ms: 20 * 60_000,
        ...over,
      });
    await lot("lamp", "Brass desk lamp", "Green glass shade", "lighting", { duration_ms: 30 * 60_000 });
    await lot("oil", "Lamp oil", "One litre", "lighting", { starting_price: 500 });
    await lot("desk", "Oak writing desk", "Three drawers", "furniture", { starting_price: 50000 });
    // Enough lamps for a second page (24 a page).
    for (let i = 0; i < 25; i++) {
      await lot(`spare-${String(i).padStart(2, "0")}`, `Spare lamp bulb ${i}`, "", "spares", { duration_ms: 40 * 60_000 + i * 1000 });
    }
    ctx.browser = await launchBrowser();
    alice = await signIn(ctx.browser, ctx.server, "Alice");
    ctx.users.push(alice);
  });

  after(async (t) => cleanup(ctx, t));

  const resultIds = async (page) => {
    const cards = page.getByTestId("search-results").getByTestId("auction-card");
    return cards.evaluateAll((els) => els.map((e) => e.getAttribute("data-auction-id")));
  };
  const search = async (page, fill) => {
    const form = page.getByRole("search", { name: "Search auctions" });
    await fill(form);
    await form.getByRole("button", { name: "Search" }).click();
    await page.getByTestId("search-results").waitFor();
    await waitFor(async () => !(await page.getByTestId("search-results").textContent()).includes("Searching…"), {
      what: "search results",
    });
  };

  it("finds by words, narrows by category and price, sorts, pages and clears", async () => {
    const page = alice.page;
    await page.getByTestId("auction-card").first().waitFor();
    const form = page.getByRole("search", { name: "Search auctions" });

    // Words match title and description as prefixes; the lobby's own lists step aside.
    await search(page, (f) => f.getByLabel("Search").fill("shade"));
    assert.deepEqual(await resultIds(page), ["lamp"]);
    assert.equal(await page.getByTestId("lobby-live").count(), 0, "the lobby lists are hidden while searching");

    await search(page, (f) => f.getByLabel("Search").fill("lamp"));
    const lamps = await resultIds(page);
    assert.equal(lamps.length, 24, "a first page of 24");
    assert.deepEqual(lamps.slice(0, 2), ["oil", "lamp"], "ending soonest first");
    await page.getByRole("button", { name: "Show more results" }).click();
    await waitFor(async () => (await resultIds(page)).length === 27, { what: "the second page" });
    assert.equal(await page.getByRole("button", { name: "Show more results" }).count(), 0, "no third page");

    // The category list comes from the server, with live counts.
    await form.getByLabel("Category").selectOption("lighting");
    await search(page, () => {});
    assert.deepEqual(await resultIds(page), ["oil", "lamp"]);
    const options = await form.getByLabel("Category").locator("option").allTextContents();
    assert.deepEqual(options, ["All categories", "furniture (1)", "lighting (2)", "spares (25)"]);

    // Price range (in dollars) and sort.
    await form.getByLabel("Category").selectOption("");
    await search(page, async (f) => {
      await f.getByLabel("Search").fill("");
      await f.getByLabel("Min price (USD)").fill("50");
      await f.getByLabel("Sort").selectOption("price_desc");
    });
    const dear = await resultIds(page);
    assert.equal(dear[0], "desk", "the dearest first");
    assert.equal(dear[1], "spare-24", "equal prices go by id, descending");
    assert.ok(!dear.includes("oil"), "oil starts at $5.00, under the minimum");
    await shot(page, "search-results");

    await search(page, async (f) => {
      await f.getByLabel("Search").fill("chandelier");
    });
    assert.match(await page.getByTestId("search-empty").textContent(), /No auctions match/);

    await form.getByRole("button", { name: "Clear" }).click();
    await page.getByTestId("lobby-live").waitFor();
    assert.equal(await page.getByTestId("search-results").count(), 0);
  });
});
