// The webpack 5 setup the package README gives: no loader or plugin is needed (webpack 5 emits
// `new Worker(new URL(...))` workers and `new URL("x.wasm", import.meta.url)` assets itself).
import { fileURLToPath } from "node:url";

export default {
  mode: "production",
  entry: "./main.js",
  output: { path: fileURLToPath(new URL("./dist", import.meta.url)), filename: "main.js", publicPath: "auto", clean: true },
  performance: { hints: false }, // the .wasm files are ~5 MB each, by design
};
