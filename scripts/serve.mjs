// A small static file server for tests and the demo: exact Content-Length (for progress bars),
// cross-origin isolation headers, and extra mount points (e.g. /models/ → a cache folder).
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, resolve } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm", ".svg": "image/svg+xml",
  ".png": "image/png", ".onnx": "application/octet-stream", ".safetensors": "application/octet-stream", ".webmanifest": "application/manifest+json",
};

/** mounts: { "/": dir, "/pkg/": dir, ... } — longest prefix wins. Resolves to { server, url }. */
export function serve(mounts, { port = 0, host = "127.0.0.1" } = {}) {
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const prefix = prefixes.find((p) => path.startsWith(p));
    if (!prefix) return res.writeHead(404).end();
    const root = resolve(mounts[prefix]);
    let file = normalize(join(root, path.slice(prefix.length)));
    if (!file.startsWith(root)) return res.writeHead(403).end();
    try {
      if (statSync(file).isDirectory()) file = join(file, "index.html");
      const { size } = statSync(file);
      res.writeHead(200, {
        "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
        "Content-Length": size,
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": "require-corp",
        "Cache-Control": "no-cache",
      });
      if (req.method === "HEAD") return res.end();
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((ok) => server.listen(port, host, () => ok({ server, url: `http://${host}:${server.address().port}` })));
}

// CLI: node scripts/serve.mjs DIR [PORT] — serves DIR on 127.0.0.1 and prints the URL.
if (process.argv[1] && import.meta.url === new URL(`file://${resolve(process.argv[1])}`).href) {
  const [dir = ".", port = "8080"] = process.argv.slice(2);
  const { url } = await serve({ "/": dir }, { port: Number(port) });
  console.log(`serving ${resolve(dir)} at ${url}/  (Ctrl-C to stop)`);
}
