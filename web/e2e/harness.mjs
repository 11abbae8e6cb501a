// End-to-end test harness: starts a real `gavel` server (one per test file) and headless
// Debian Chromium through playwright-core. Everything is bounded by timeouts so a test run
// always stops by itself.
//
// Environment:
//   GAVEL_BIN       the gavel binary (default: ../target/debug/gavel relative to web/)
//   CHROMIUM_PATH   the browser (default: /usr/bin/chromium)
//   E2E_HEADFUL=1   show the browser (needs a display)

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ARTIFACTS = join(WEB_DIR, "test-artifacts");
mkdirSync(ARTIFACTS, { recursive: true });

export const GAVEL_BIN = process.env.GAVEL_BIN
  ? resolve(WEB_DIR, process.env.GAVEL_BIN)
  : resolve(WEB_DIR, "../target/debug/gavel");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor(fn, { timeoutMs = 10_000, intervalMs = 100, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

async function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** Fetch with a timeout. */
export async function http(url, { method = "GET", token, body, timeoutMs = 5_000 } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  return { status: res.status, data };
}

/**
 * Start `gavel serve` on a free port with a fresh data dir and a random admin token; wait
 * until GET /healthz answers. `name` labels the log file in test-artifacts/.
 */
export async function startServer(name, extraArgs = []) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "gavel-e2e-"));
  const adminToken = randomBytes(18).toString("hex");
  const listen = `127.0.0.1:${port}`;
  const logPath = join(ARTIFACTS, `server-${name}.log`);
  const log = createWriteStream(logPath);
  const args = ["serve", "--listen", listen, "--data-dir", dataDir, "--admin-token", adminToken, ...extraArgs];
  // Embedded mode always: a shell's REDIS_URL/DATABASE_URL must not switch the server.
  const env = { ...process.env, GAVEL_LISTEN: listen, GAVEL_DATA_DIR: dataDir, GAVEL_ADMIN_TOKEN: adminToken, RUST_LOG: process.env.RUST_LOG ?? "info" };
  for (const k of ["REDIS_URL", "DATABASE_URL", "GAVEL_REDIS_URL", "GAVEL_DATABASE_URL"]) delete env[k];
  const proc = spawn(GAVEL_BIN, args, {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  let exited = null;
  proc.on("exit", (code, signal) => {
    exited = { code, signal };
  });
  proc.on("error", (err) => {
    exited = { code: null, signal: null, error: err.message };
  });
  const url = `http://${listen}`;
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`gavel exited early: ${JSON.stringify(exited)} (see ${logPath})`);
        const r = await http(`${url}/healthz`, { timeoutMs: 1_000 });
        return r.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `${url}/healthz` },
    );
  } catch (e) {
    proc.kill("SIGKILL");
    throw e;
  }

  // The server must serve this checkout's web/dist: a binary built elsewhere (a target/
  // seeded from another worktree: debug builds read web/dist from the path they were compiled
  // with) or before `npm run build` would test another client and prove nothing.
  const served = await http(`${url}/`, { timeoutMs: 5_000 }).catch((e) => ({ status: 0, data: String(e) }));
  const local = readFileSync(join(WEB_DIR, "dist/index.html"), "utf8");
  if (served.data !== local) {
    proc.kill("SIGKILL");
    throw new Error(
      `${GAVEL_BIN} does not serve this checkout's web/dist/index.html (a stale or foreign binary): ` +
        "run `npm run build`, then `cargo build -p gavel-server`, and run the browser tests again",
    );
  }

  const server = {
    url,
    port,
    adminToken,
    dataDir,
    proc,
    logPath,
    /** Server time now (ms). */
    async time() {
      const r = await http(`${url}/api/time`);
      return r.data.server_time;
    },
    /** POST /api/auctions as admin; amounts in minor units. */
    async createAuction(body) {
      const r = await http(`${url}/api/auctions`, { method: "POST", token: adminToken, body });
      if (r.status !== 201) throw new Error(`create auction: ${r.status} ${JSON.stringify(r.data)}`);
      return r.data;
    },
    async getAuction(id) {
      const r = await http(`${url}/api/auctions/${encodeURIComponent(id)}`);
      if (r.status !== 200) throw new Error(`get auction: ${r.status} ${JSON.stringify(r.data)}`);
      return r.data;
    },
    async bids(id) {
      const r = await http(`${url}/api/auctions/${encodeURIComponent(id)}/bids?limit=200`);
      if (r.status !== 200) throw new Error(`bids: ${r.status} ${JSON.stringify(r.data)}`);
      return r.data.bids;
    },
    /** A guest session made over HTTP (for bidders that are not browsers). */
    async session(nameOf) {
      const r = await http(`${url}/api/session`, { method: "POST", body: { name: nameOf } });
      if (r.status !== 200) throw new Error(`session: ${r.status} ${JSON.stringify(r.data)}`);
      return r.data;
    },
    async bid(token, id, body) {
      return http(`${url}/api/auctions/${encodeURIComponent(id)}/bids`, { method: "POST", token, body });
    },
    async stop() {
      if (!exited) {
        proc.kill("SIGTERM");
        const t0 = Date.now();
        while (!exited && Date.now() - t0 < 5_000) await sleep(50);
        if (!exited) proc.kill("SIGKILL");
        const t1 = Date.now();
        while (!exited && Date.now() - t1 < 2_000) await sleep(50);
      }
      log.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/**
 * Launch Debian Chromium. Playwright gives every launch a fresh temporary
 * --user-data-dir of its own (and refuses one in `args`), so each test file starts with a
 * clean profile; contexts within it are isolated like separate browsers.
 */
export async function launchBrowser() {
  const headful = process.env.E2E_HEADFUL === "1";
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: !headful,
    args: headful ? CHROMIUM_ARGS.filter((a) => a !== "--headless") : CHROMIUM_ARGS,
    timeout: 30_000,
  });
}

/** Shift Date / Date.now in the page by `shiftMs` (the computer's clock is wrong). */
export function clockShiftScript(shiftMs) {
  return `(() => {
    const shift = ${Number(shiftMs)};
    const RealDate = Date;
    const realNow = RealDate.now.bind(RealDate);
    class ShiftedDate extends RealDate {
      constructor(...args) {
        if (args.length === 0) super(realNow() + shift);
        else super(...args);
      }
      static now() { return realNow() + shift; }
    }
    globalThis.Date = ShiftedDate;
  })();`;
}

/**
 * A signed-in user in their own browser context. Options: clockShiftMs, admin (sign in
 * with the admin token), viewport, timezoneId, routeSockets (a function given the page
 * before it loads, e.g. `controlSockets`).
 */
export async function signIn(
  browser,
  server,
  name,
  { clockShiftMs = 0, admin = false, viewport = { width: 1200, height: 900 }, timezoneId = "UTC", routeSockets = null } = {},
) {
  const context = await browser.newContext({ locale: "en-US", timezoneId, viewport });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  if (clockShiftMs) await context.addInitScript({ content: clockShiftScript(clockShiftMs) });
  const page = await context.newPage();
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
  if (routeSockets) await routeSockets(page);
  await page.goto(`${server.url}/#/signin`);
  await page.getByLabel("Your display name").fill(name);
  if (admin) {
    await page.getByLabel("I am the auctioneer (admin)").check();
    await page.getByLabel("Admin token").fill(server.adminToken);
    await page.getByRole("button", { name: "Sign in as auctioneer" }).click();
  } else {
    await page.getByRole("button", { name: "Sign in as guest" }).click();
  }
  await page.getByTestId("user-name").filter({ hasText: name }).waitFor();
  await waitForLive(page);
  return { context, page, name, consoleLines };
}

/** Wait until the connection indicator says Live. */
export async function waitForLive(page, timeout = 10_000) {
  await page.locator('[data-testid="connection"][data-state="open"]').waitFor({ timeout });
}

/** Open an auction room and wait for its state. */
export async function openAuction(page, id) {
  await page.goto(`${new URL(page.url()).origin}/#/auction/${encodeURIComponent(id)}`);
  await page.getByTestId("auction-room").waitFor();
}

export async function shot(page, name) {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true, timeout: 10_000 }).catch(() => {});
  return path;
}

/** Text of the price element. */
export async function priceText(page) {
  return (await page.getByTestId("price").textContent({ timeout: 5_000 }))?.trim();
}

export function money(minor, currency = "USD") {
  return new Intl.NumberFormat("en-US", { style: "currency", currency }).format(minor / 100);
}

/** Close everything even if a step failed; never throws. */
export async function cleanup({ browser, server, users = [] }, t) {
  for (const u of users) {
    if (u?.consoleLines?.length && t) {
      const errs = u.consoleLines.filter((l) => l.startsWith("[error]") || l.startsWith("[pageerror]"));
      if (errs.length) t.diagnostic?.(`${u.name} console: ${errs.slice(0, 10).join(" | ")}`);
    }
    await u?.context?.close().catch(() => {});
  }
  await browser?.close().catch(() => {});
  await server?.stop().catch(() => {});
}

/** Unique auction id per test. */
export function auctionId(prefix) {
  return `${prefix}-${randomBytes(3).toString("hex")}`;
}

/**
 * Put the page's WebSockets to /ws behind a switch: `freeze()` silently drops every frame in
 * both directions while the browser still believes the socket is open (a dead network path:
 * no close, no error), `thaw()` lets frames through again, and `lose(pattern)` drops the
 * server's next frame matching a pattern (a lost answer) and calls back with it.
 */
export function socketSwitch() {
  const sw = {
    frozen: false,
    opened: 0,
    dropNext: [],
    /** Predicates over the page's frames: a match is not passed to the server. */
    clientDrops: [],
    droppedFromClient: [],
    freeze() {
      sw.frozen = true;
    },
    thaw() {
      sw.frozen = false;
    },
    /** Replace the server's next frame matching `test(json)` by `replace(json)` (null drops it). */
    rewriteNext(test, replace) {
      sw.dropNext.push({ test, replace });
    },
    async install(page) {
      await page.routeWebSocket(/\/ws(\?|$)/, (ws) => {
        sw.opened++;
        const server = ws.connectToServer();
        ws.onMessage((m) => {
          if (sw.frozen) return;
          let parsed = null;
          try {
            parsed = JSON.parse(String(m));
          } catch {
            parsed = null;
          }
          if (parsed && sw.clientDrops.some((d) => d(parsed))) {
            sw.droppedFromClient.push(parsed);
            return;
          }
          server.send(m);
        });
        server.onMessage((m) => {
          if (sw.frozen) return;
          let parsed = null;
          try {
            parsed = JSON.parse(String(m));
          } catch {
            parsed = null;
          }
          const i = parsed ? sw.dropNext.findIndex((d) => d.test(parsed)) : -1;
          if (i >= 0) {
            const [d] = sw.dropNext.splice(i, 1);
            const out = d.replace(parsed);
            if (out !== null) ws.send(JSON.stringify(out));
            return;
          }
          ws.send(m);
        });
        ws.onClose(() => Promise.resolve(server.close()).catch(() => {}));
        server.onClose(() => Promise.resolve(ws.close()).catch(() => {}));
      });
    },
  };
  return sw;
}

/** The bounding boxes of the page's interactive elements that are smaller than 44×44 px. */
export async function smallTapTargets(page, within = "body") {
  return page.evaluate((sel) => {
    const root = document.querySelector(sel) ?? document.body;
    const out = [];
    for (const el of root.querySelectorAll("a[href], button, input:not([type=checkbox]):not([type=radio]), select, textarea")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue; // not rendered
      if (r.right <= 0 || r.bottom <= 0) continue; // parked off screen (the skip link until focused)
      if (r.height < 44 || r.width < 44) out.push(`${el.tagName.toLowerCase()} "${(el.textContent || el.getAttribute("aria-label") || "").trim().slice(0, 30)}" ${Math.round(r.width)}×${Math.round(r.height)}`);
    }
    return out;
  }, within);
}
