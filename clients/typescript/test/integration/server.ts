// Starts a real `gavel serve` (the binary from `cargo build -p gavel-server`) on a free
// loopback port with its own data directory and admin token, as web/e2e/harness.mjs does.
// Everything is bounded by timeouts so a run always stops by itself.
//
//   GAVEL_BIN   the binary (default: ../../target/debug/gavel from clients/typescript)

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const PKG = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const GAVEL_BIN = process.env.GAVEL_BIN ? resolve(process.env.GAVEL_BIN) : resolve(PKG, "../../target/debug/gavel");
const LOGS = join(PKG, "test-artifacts");

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last as T;
    } catch (e) {
      last = e;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** Whether `faketime` (Debian's libfaketime) is installed, to run the server on a shifted clock. */
export function hasFaketime(): boolean {
  return spawnSync("faketime", ["-f", "+0s", "true"]).status === 0;
}

export interface ServerOptions {
  /** Extra `gavel serve` flags. */
  args?: string[];
  /** Run under libfaketime with this clock shift in seconds (e.g. 30: the server is 30 s ahead). */
  clockShiftSecs?: number;
}

export class GavelServer {
  readonly adminToken = randomBytes(18).toString("hex");
  readonly dataDir = mkdtempSync(join(tmpdir(), "gavel-client-"));
  port = 0;
  private proc: ChildProcess | null = null;

  constructor(
    readonly name: string,
    private readonly opts: ServerOptions = {},
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again on the same port and data directory after `kill`). */
  async start(): Promise<void> {
    if (!existsSync(GAVEL_BIN)) throw new Error(`no gavel binary at ${GAVEL_BIN}: run cargo build -p gavel-server (or set GAVEL_BIN)`);
    if (this.port === 0) this.port = await freePort();
    mkdirSync(LOGS, { recursive: true });
    const log = createWriteStream(join(LOGS, `server-${this.name}.log`), { flags: "a" });
    const listen = `127.0.0.1:${this.port}`;
    const args = ["serve", "--listen", listen, "--data-dir", this.dataDir, "--admin-token", this.adminToken, "--heartbeat-ms", "250", ...(this.opts.args ?? [])];
    const env: NodeJS.ProcessEnv = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info" };
    // Embedded mode always: a shell's REDIS_URL / DATABASE_URL must not switch the server.
    for (const k of Object.keys(env)) if (k.startsWith("GAVEL_") || k === "REDIS_URL" || k === "DATABASE_URL") delete env[k];
    let cmd = GAVEL_BIN;
    let argv = args;
    if (this.opts.clockShiftSecs) {
      cmd = "faketime";
      // Only the wall clock moves: timers (the monotonic clock) stay real.
      env.FAKETIME_DONT_FAKE_MONOTONIC = "1";
      argv = ["-f", `${this.opts.clockShiftSecs >= 0 ? "+" : ""}${this.opts.clockShiftSecs}s`, GAVEL_BIN, ...args];
    }
    const proc = spawn(cmd, argv, { env, stdio: ["ignore", "pipe", "pipe"] });
    proc.stdout?.pipe(log);
    proc.stderr?.pipe(log);
    this.proc = proc;
    let exited: string | null = null;
    proc.on("exit", (code, signal) => (exited = `exit ${code} ${signal}`));
    await waitFor(
      async () => {
        if (exited) throw new Error(`gavel ${exited}; see test-artifacts/server-${this.name}.log`);
        const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1_000) });
        return r.ok;
      },
      `${this.url}/healthz`,
      30_000,
    );
  }

  /** Kills the process at once (SIGKILL): no close frames, as in a crash. */
  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await gone;
  }

  /** SIGTERM (a rolling restart's stop): waits for the exit; resolves with how long it took (ms). */
  async terminate(): Promise<number> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return 0;
    const t0 = Date.now();
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    await gone;
    return Date.now() - t0;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** POST /api/auctions as admin. */
  async createAuction(body: Record<string, unknown> = {}): Promise<{ id: string; seq: number }> {
    const r = await fetch(`${this.url}/api/auctions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.adminToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ title: "Test lot", starting_price: 10000, increment: 1000, duration_ms: 600_000, ...body }),
    });
    if (r.status !== 201) throw new Error(`create auction: ${r.status} ${await r.text()}`);
    return (await r.json()) as { id: string; seq: number };
  }
}
