// Signed receipts in the browser (issue 15): the room keeps the bidder's receipts
// (localStorage), downloads them as the JSON `gavel verify --receipt` reads, and after the
// close checks them in the page (WebCrypto Ed25519 + SHA-256) against /api/keys and the
// published log up to the final log_hash: "Verified", or what failed. The real `gavel
// verify` reads the downloaded file and agrees, both ways.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ARTIFACTS, GAVEL_BIN, auctionId, cleanup, http, launchBrowser, openAuction, shot, signIn, startServer, waitForLive } from "./harness.mjs";

/** `gavel verify` against the server with a receipts file: exit status and output. */
function gavelVerify(server, id, file) {
  const r = spawnSync(GAVEL_BIN, ["verify", "--server", server.url, "--auction", id, "--receipt", file], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Clicks "Download receipts" and returns the saved file's path and parsed content. */
async function download(page, name) {
  const [dl] = await Promise.all([page.waitForEvent("download"), page.getByTestId("download-receipts").click()]);
  const path = join(ARTIFACTS, name);
  await dl.saveAs(path);
  return { path, suggested: dl.suggestedFilename(), receipts: JSON.parse(readFileSync(path, "utf8")) };
}

describe("signed receipts in the web client", { timeout: 180_000 }, () => {
  const ctx = { server: null, browser: null, users: [] };
  let alice;

  before(async () => {
    ctx.server = await startServer("receipts");
    ctx.browser = await launchBrowser();
    alice = await signIn(ctx.browser, ctx.server, "Alice");
    ctx.users.push(alice);
  });

  after(async (t) => cleanup(ctx, t));

  const end = (id) => http(`${ctx.server.url}/api/auctions/${encodeURIComponent(id)}/end`, { method: "POST", token: ctx.server.adminToken, body: {} });

  it("keeps the receipts of accepted bids, downloads them for gavel verify, and shows them verified after the close", { timeout: 90_000 }, async () => {
    const page = alice.page;
    const id = auctionId("receipts");
    await ctx.server.createAuction({ id, title: "Signed lot", description: "", currency: "USD", starting_price: 1000, increment: 100, duration_ms: 600_000 });
    await openAuction(page, id);
    await page.locator('[data-testid="auction-room"][data-live="true"]').waitFor();
    const me = await page.evaluate(() => window.gavel.getState().session.user.id);

    // Alice bids, Bob outbids her over HTTP, Alice bids again: two accepted bids, two receipts.
    await page.getByRole("button", { name: /^Quick bid \+1/ }).click();
    await page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
    const bob = await ctx.server.session("Bob");
    assert.equal((await ctx.server.bid(bob.token, id, { amount: 1200, request_id: "bob-1" })).status, 200);
    await page.getByTestId("leader-notice").filter({ hasText: "You have been outbid" }).waitFor();
    await page.getByRole("button", { name: /^Quick bid \+1/ }).click();
    await page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
    const section = page.getByTestId("receipts");
    await section.filter({ hasText: "Your receipts · 2" }).waitFor();
    assert.deepEqual((await page.getByTestId("receipt-list").locator("li").allTextContents()).map((t) => t.split(" · ")[1].slice(0, 6)), ["$10.00", "$13.00"]);
    // Open: nothing checked yet.
    assert.equal(await page.getByTestId("receipts-verification").count(), 0);

    // The download: a JSON array of Alice's two receipts.
    const file = await download(page, `receipts-${id}.json`);
    assert.equal(file.suggested, `gavel-receipts-${id}.json`);
    assert.deepEqual(file.receipts.map((r) => [r.auction_id, r.bidder_id, r.seq, r.amount]), [[id, me, 2, 1000], [id, me, 4, 1300]]);

    // They survive a reload (localStorage).
    await page.reload();
    await waitForLive(page);
    await section.filter({ hasText: "Your receipts · 2" }).waitFor();

    // The close: checked in the page against the keys and the log up to the final hash.
    assert.equal((await end(id)).status, 200);
    const verified = page.getByTestId("receipts-verification");
    await verified.and(page.locator('[data-state="verified"]')).waitFor({ timeout: 15_000 });
    const finalHash = (await ctx.server.getAuction(id)).log_hash;
    assert.match(finalHash, /^[0-9a-f]{64}$/);
    assert.match(await verified.textContent(), /^Verified\. All 2 receipts are in the published log, signed by the server's key/);
    assert.equal(await verified.locator("code").getAttribute("title"), finalHash);
    await shot(page, "receipts-verified");

    // gavel verify reads the downloaded file and agrees.
    const cli = gavelVerify(ctx.server, id, file.path);
    assert.equal(cli.status, 0, cli.out);
    assert.equal(cli.out.match(/^receipt: .* ok$/gm)?.length, 2, cli.out);
  });

  it("a receipt altered after the fact is shown as failed, and gavel verify fails it too", { timeout: 90_000 }, async () => {
    const page = alice.page;
    const id = auctionId("tampered");
    await ctx.server.createAuction({ id, title: "Altered lot", description: "", currency: "USD", starting_price: 1000, increment: 100, duration_ms: 600_000 });
    await openAuction(page, id);
    await page.locator('[data-testid="auction-room"][data-live="true"]').waitFor();
    await page.getByRole("button", { name: /^Quick bid \+2/ }).click();
    await page.getByTestId("bid-outcome").filter({ hasText: "Bid accepted" }).waitFor();
    await page.getByTestId("receipts").filter({ hasText: "Your receipts · 1" }).waitFor();
    // Someone raises the amount in the kept receipt (1100 → 5000) and reloads.
    const seq = await page.evaluate((auction) => {
      const store = JSON.parse(localStorage.getItem("gavel.receipts.v1"));
      store[auction][0].amount = 5000;
      localStorage.setItem("gavel.receipts.v1", JSON.stringify(store));
      return store[auction][0].seq;
    }, id);
    await page.reload();
    await waitForLive(page);
    await page.getByTestId("receipt-list").filter({ hasText: "$50.00" }).waitFor();
    const file = await download(page, `receipts-${id}-altered.json`);
    assert.equal(file.receipts[0].amount, 5000);

    assert.equal((await end(id)).status, 200);
    const line = page.getByTestId("receipts-verification");
    await line.and(page.locator('[data-state="failed"]')).waitFor({ timeout: 15_000 });
    assert.equal(
      (await line.textContent()).trim(),
      `Verification failed: receipt for seq ${seq}: the signature does not match the server's key: the receipt was altered or not issued by this server`,
    );
    await shot(page, "receipts-failed");

    const cli = gavelVerify(ctx.server, id, file.path);
    assert.equal(cli.status, 1, cli.out);
    assert.match(cli.out, new RegExp(`FAILED: receipt for seq ${seq}: the signature does not match the server's key`));
    // The untouched receipt passes the CLI: only the alteration failed.
    const honest = { ...file.receipts[0], amount: 1100 };
    const honestPath = join(ARTIFACTS, `receipts-${id}-honest.json`);
    writeFileSync(honestPath, JSON.stringify([honest]));
    assert.equal(gavelVerify(ctx.server, id, honestPath).status, 0);
  });
});
