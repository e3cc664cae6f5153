// The Vite setup the package README gives: workers as ES modules (the package's worker loads
// the wasm builds with dynamic imports, which Vite's default "iife" worker format cannot split),
// and the package left out of dependency pre-bundling (which would move its files away from
// the .wasm and worker files next to them) for `vite dev`.
import { defineConfig } from "vite";

export default defineConfig({
  worker: { format: "es" },
  optimizeDeps: { exclude: ["bert-tasks"] },
});
