// Writes test/unit/fixtures/verified-auction.json: a closed auction's whole log, the server's
// keys, the published final hash and the receipts its bidders got, all made by a real gavel
// server (so the unit tests of src/verify.ts check the TypeScript encoding against the Rust
// one, not against itself). Every kind of entry but buy_now is in it: created, opened
// (a scheduled start), bid, auto (a proxy's counter-bid), max_raised, a soft-close
// extension, closed (ended early by the admin, with a winner and a final price).
//
//   cargo build -p gavel-server && node scripts/make-verify-fixture.mjs [path/to/gavel]

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const PKG = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = resolve(process.argv[2] ?? process.env.GAVEL_BIN ?? join(PKG, "../../target/debug/gavel"));
const OUT = join(PKG, "test/unit/fixtures/verified-auction.json");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const port = await new Promise((res) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => res(p));
  });
});
const url = `http://127.0.0.1:${port}`;
const admin = randomBytes(16).toString("hex");
const dataDir = mkdtempSync(join(tmpdir(), "gavel-fixture-"));
const env = { ...process.env };
for (const k of Object.keys(env)) if (k.startsWith("GAVEL_") || k === "REDIS_URL" || k === "DATABASE_URL") delete env[k];
const proc = spawn(BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--admin-token", admin], { env, stdio: "ignore" });

async function call(method, path, body, token) {
  const r = await fetch(url + path, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await r.json();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(data)}`);
  return data;
}

try {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      if (i > 150) throw new Error("the server did not start");
    }
    await sleep(100);
  }
  const id = "fixture-lot:1";
  await call(
    "POST",
    "/api/auctions",
    {
      id,
      title: "Fixture lot",
      currency: "EUR",
      starting_price: 1000,
      increment: 100,
      buy_now: 50000,
      reserve: 1500,
      starts_at: Date.now() + 1500,
      duration_ms: 60_000,
      // Every bid falls in the window and moves the end to 2 minutes after it.
      soft_close: { window_ms: 3_600_000, extend_ms: 120_000 },
    },
    admin,
  );
  await sleep(2000); // opened
  const alice = (await call("POST", "/api/session", { name: "Alice" })).token;
  const bob = (await call("POST", "/api/session", { name: "Bob" })).token;
  const results = [];
  const bid = async (token, { expect = "accepted", ...body }) => {
    const r = await fetch(`${url}/api/auctions/${encodeURIComponent(id)}/bids`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ request_id: randomBytes(8).toString("hex"), ...body }),
    }).then((x) => x.json());
    if (r.outcome !== expect) throw new Error(`bid ${JSON.stringify(body)}: ${JSON.stringify(r)}`);
    if (r.receipt) results.push(r);
  };
  await bid(alice, { amount: 1000 }); // bid
  await bid(bob, { amount: 2000, kind: "max" }); // Bob's maximum bids up to the reserve (1500)
  await bid(alice, { amount: 1600, expect: "outbid" }); // Alice's bid, then Bob's automatic 1700 (auto)
  await bid(bob, { amount: 3000, kind: "max" }); // the leader raises his maximum (max_raised)
  await bid(alice, { amount: 3100 }); // above it: Alice leads
  await call("POST", `/api/auctions/${encodeURIComponent(id)}/end`, { reason: "fixture" }, admin);
  const auction = await call("GET", `/api/auctions/${encodeURIComponent(id)}`);
  const log = await call("GET", `/api/auctions/${encodeURIComponent(id)}/log?limit=1000`);
  const keys = await call("GET", "/api/keys");
  const fixture = { auction_id: id, final_hash: auction.log_hash, keys, log, receipts: results.map((r) => r.receipt) };
  writeFileSync(OUT, `${JSON.stringify(fixture, null, 2)}\n`);
  console.log(`wrote ${OUT}: ${log.entries.length} entries (${log.entries.map((e) => e.kind).join(", ")}), ${results.length} receipts`);
} finally {
  proc.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
}
