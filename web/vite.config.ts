import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * The web client is built on @gavel/client (clients/typescript), compiled from its sources
 * (no separate build step, no npm link: `npm ci` in web/ is enough on a fresh clone). The
 * same alias is in tsconfig.json's `paths`.
 */
export const gavelClientAlias = { "@gavel/client": fileURLToPath(new URL("../clients/typescript/src/index.ts", import.meta.url)) };

// The build output (web/dist) is committed and embedded in the gavel binary, so it must be
// small and reproducible: no source maps, content-hashed names, no build timestamps.
// `npm run check-dist` rebuilds into a temp dir and compares with the committed files.
const devServer = process.env.GAVEL_DEV_SERVER || "http://127.0.0.1:3000";

export default defineConfig({
  base: "/",
  resolve: { alias: gavelClientAlias },
  esbuild: { jsx: "automatic", legalComments: "none" },
  build: {
    outDir: process.env.GAVEL_WEB_OUT_DIR || "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    assetsDir: "assets",
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    rollupOptions: {
      output: {
        // One JS chunk: simple to embed and serve.
        manualChunks: undefined,
        inlineDynamicImports: true,
      },
    },
  },
  // `npm run dev`: the gavel server (default 127.0.0.1:3000, or GAVEL_DEV_SERVER) answers
  // the API and the WebSocket.
  server: {
    proxy: {
      "/api": devServer,
      "/healthz": devServer,
      "/ws": { target: devServer.replace(/^http/, "ws"), ws: true },
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
});
