import { defineConfig } from "vitest/config";
import { gavelClientAlias } from "./vite.config";

// The embeddable bid box: one classic script (IIFE, no module loader needed, no CORS for the
// script itself), @gavel/client bundled in, written to dist/embed/gavel-auction.js after the
// app's build (which empties dist/). The gavel binary embeds web/dist and serves it at
// /embed/gavel-auction.js. Reproducible like the app: no source map, no timestamp.
export default defineConfig({
  resolve: { alias: gavelClientAlias },
  esbuild: { legalComments: "none" },
  build: {
    outDir: `${process.env.GAVEL_WEB_OUT_DIR || "dist"}/embed`,
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    reportCompressedSize: false,
    copyPublicDir: false,
    lib: {
      entry: "embed/gavel-auction.ts",
      formats: ["iife"],
      name: "GavelAuction",
      fileName: () => "gavel-auction.js",
    },
  },
});
