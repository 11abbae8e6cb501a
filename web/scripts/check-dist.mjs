#!/usr/bin/env node
// Rebuild the web client into a temporary directory and compare it byte for byte with the
// committed web/dist (which the gavel binary embeds). Exit 1 if they differ, so CI catches a
// source change committed without `npm run build`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const webDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const committed = join(webDir, "dist");
const out = mkdtempSync(join(tmpdir(), "gavel-dist-"));

function files(dir) {
  const result = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else result.push(relative(dir, p));
    }
  };
  walk(dir);
  return result;
}

let status = 0;
try {
  const tsc = spawnSync(process.execPath, [join(webDir, "node_modules/typescript/bin/tsc"), "--noEmit"], {
    cwd: webDir,
    stdio: "inherit",
  });
  if (tsc.status !== 0) throw new Error("type check failed");
  const build = spawnSync(process.execPath, [join(webDir, "node_modules/vite/bin/vite.js"), "build", "--logLevel", "warn"], {
    cwd: webDir,
    stdio: "inherit",
    env: { ...process.env, GAVEL_WEB_OUT_DIR: out },
  });
  if (build.status !== 0) throw new Error("vite build failed");
  // The embeddable bid box (dist/embed/gavel-auction.js), as `npm run build` makes it.
  const embed = spawnSync(
    process.execPath,
    [join(webDir, "node_modules/vite/bin/vite.js"), "build", "--config", "vite.embed.config.ts", "--logLevel", "warn"],
    { cwd: webDir, stdio: "inherit", env: { ...process.env, GAVEL_WEB_OUT_DIR: out } },
  );
  if (embed.status !== 0) throw new Error("vite build of the embeddable bid box failed");
  const a = files(committed);
  const b = files(out);
  const problems = [];
  for (const f of a) if (!b.includes(f)) problems.push(`only in committed web/dist: ${f}`);
  for (const f of b) if (!a.includes(f)) problems.push(`missing from committed web/dist: ${f}`);
  for (const f of a) {
    if (b.includes(f) && !readFileSync(join(committed, f)).equals(readFileSync(join(out, f)))) {
      problems.push(`differs: ${f}`);
    }
  }
  if (problems.length) {
    console.error("web/dist is out of date with the sources:");
    for (const p of problems) console.error(`  ${p}`);
    console.error("Run `npm run build` in web/ and commit web/dist.");
    status = 1;
  } else {
    console.log(`web/dist is up to date (${a.length} files).`);
  }
} catch (e) {
  console.error(`check-dist: ${e.message}`);
  status = 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
process.exit(status);
