// A small static file server for tests and the demo: exact Content-Length (for progress bars),
// cross-origin isolation headers, ETag / Last-Modified with 304 answers (so the package's cache
// revalidation can be tested), and extra mount points (e.g. /models/ → a cache folder).
//
// It must stay up whatever a client sends: a malformed URL is a 400, a path that leaves its
// mount a 403, a method other than GET/HEAD a 405, a missing file a 404, and nothing a client
// sends can throw out of the handler.
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, relative, resolve, isAbsolute } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".css": "text/css", ".json": "application/json", ".wasm": "application/wasm", ".svg": "image/svg+xml",
  ".png": "image/png", ".onnx": "application/octet-stream", ".safetensors": "application/octet-stream", ".webmanifest": "application/manifest+json",
};

/** `file` when it lies inside `root` (or is it), else null: compares path components, so a
 *  sibling folder whose name starts with root's (`site-test` next to `site`) is outside. */
export function inside(root, file) {
  const rel = relative(root, file);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel)) ? file : null;
}

function handle(prefixes, mounts, req, res, isolated) {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return res.writeHead(405, { Allow: "GET, HEAD" }).end("method not allowed");
  }
  let path;
  try {
    path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  } catch {
    return res.writeHead(400).end("bad request: malformed URL");
  }
  if (path.includes("\0")) return res.writeHead(400).end("bad request: NUL in path");
  const prefix = prefixes.find((p) => path.startsWith(p));
  if (!prefix) return res.writeHead(404).end("not found");
  const root = resolve(mounts[prefix]);
  let file = inside(root, resolve(root, "." + "/" + path.slice(prefix.length)));
  if (!file) return res.writeHead(403).end("forbidden");
  let stat;
  try {
    stat = statSync(file);
    if (stat.isDirectory()) {
      file = join(file, "index.html");
      stat = statSync(file);
    }
    if (!stat.isFile()) throw new Error("not a file");
  } catch {
    return res.writeHead(404).end("not found");
  }
  const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  const headers = {
    "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
    ...(isolated ? ISOLATION : {}),
    "Cache-Control": "no-cache",
    ETag: etag,
    "Last-Modified": stat.mtime.toUTCString(),
  };
  if (req.headers["if-none-match"]?.split(/\s*,\s*/).includes(etag)) return res.writeHead(304, headers).end();
  res.writeHead(200, { ...headers, "Content-Length": stat.size });
  if (req.method === "HEAD") return res.end();
  createReadStream(file)
    .on("error", () => res.destroy())
    .pipe(res);
}

// Cross-origin isolation: what SharedArrayBuffer, and so the threaded wasm build, needs.
const ISOLATION = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };

/** mounts: { "/": dir, "/pkg/": dir, ... } — longest prefix wins. `isolated: false` leaves out
 *  the cross-origin isolation headers (a plain static host). Resolves to { server, url }. */
export function serve(mounts, { port = 0, host = "127.0.0.1", isolated = true } = {}) {
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const server = createServer((req, res) => {
    try {
      handle(prefixes, mounts, req, res, isolated);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500).end("internal error");
      else res.destroy();
      console.error(`serve: ${req.method} ${req.url}: ${e?.message ?? e}`);
    }
  });
  // Unparseable requests (bad request lines, oversized headers) end that connection only.
  server.on("clientError", (_, socket) => socket.writable && socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"));
  return new Promise((ok) => server.listen(port, host, () => ok({ server, url: `http://${host}:${server.address().port}` })));
}

// CLI: node scripts/serve.mjs DIR [PORT] — serves DIR on 127.0.0.1 and prints the URL.
if (process.argv[1] && import.meta.url === new URL(`file://${resolve(process.argv[1])}`).href) {
  const [dir = ".", port = "8080"] = process.argv.slice(2);
  const { url } = await serve({ "/": dir }, { port: Number(port) });
  console.log(`serving ${resolve(dir)} at ${url}/  (Ctrl-C to stop)`);
}
