// Offline support: the page's own files are served network-first with a cached fallback.
// Model files are left to the package, which keeps them in the Cache API itself.
// The wasm build the package picks (pkg/variants.js) is cached when first fetched, like any file.
const CACHE = "bert-tasks-site-v2";
const SHELL = ["./", "./index.html", "./style.css", "./app.js", "./pkg/index.js", "./pkg/worker.js",
  "./pkg/threads.js", "./pkg/thread-worker.js", "./pkg/variants.js",
  "./pkg/bert_tasks.js", "./pkg/bert_tasks_bg.wasm", "./models/manifest.json"];

self.addEventListener("install", (e) => {
  self.skipWaiting();
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).catch(() => {}));
});
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.includes("/models/") && !url.pathname.endsWith("manifest.json")) return;
  e.respondWith(
    fetch(e.request)
      .then((res) => {
        const copy = res.clone();
        caches.open(CACHE).then((c) => c.put(e.request, copy));
        return res;
      })
      .catch(() => caches.match(e.request).then((r) => r ?? Response.error())),
  );
});
