// The demo's static server (scripts/serve.mjs) stays up whatever clients send: a batch of
// malformed URLs, traversal attempts (including into a sibling folder whose name starts with the
// site's) and odd methods each get their 4xx, and the site is still served after them.
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { inside, serve } from "../../scripts/serve.mjs";

/** One request with the path sent exactly as given (Node's client does not normalise it). */
function send(url, path, { method = "GET", headers = {} } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((ok, fail) => {
    const req = request({ hostname, port, path, method, headers }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => ok({ status: res.statusCode, body, headers: res.headers }));
    });
    req.on("error", fail);
    req.end();
  });
}

/** Raw bytes on a socket (for request lines Node's client refuses to send). */
function raw(url, text) {
  const { hostname, port } = new URL(url);
  return new Promise((ok, fail) => {
    const socket = connect(Number(port), hostname, () => socket.end(text));
    let got = "";
    socket.on("data", (c) => (got += c));
    socket.on("end", () => ok(got));
    socket.on("error", fail);
  });
}

test("serve.mjs answers bad requests with 4xx and keeps serving", async () => {
  const dir = mkdtempSync(join(tmpdir(), "serve-test-"));
  mkdirSync(join(dir, "site"));
  mkdirSync(join(dir, "site-test"));
  writeFileSync(join(dir, "site", "index.html"), "<p>site</p>");
  writeFileSync(join(dir, "site-test", "index.html"), "<p>secret</p>");
  writeFileSync(join(dir, "secret.txt"), "secret");
  const { server, url } = await serve({ "/": join(dir, "site") });
  try {
    const cases = [
      ["/%E0%A4%A", 400], // the reported crash: decodeURIComponent throws
      ["/%", 400],
      ["/%00", 400],
      ["/..%2fsite-test%2findex.html", 403], // normalises into the sibling folder
      ["/..%2f..%2f..%2fetc%2fpasswd", 403],
      ["/../secret.txt", [403, 404]], // the URL parser already drops the `..`
      ["/%2e%2e/secret.txt", [403, 404]],
      ["/..\\secret.txt", 404], // a backslash is a file name character here, not a separator
      ["/missing.html", 404],
    ];
    for (const [path, want] of cases) {
      const { status, body } = await send(url, path);
      assert.ok([want].flat().includes(status), `GET ${path} → ${status}, want ${want}`);
      assert.doesNotMatch(body, /secret/, `GET ${path} leaks nothing`);
    }
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      assert.equal((await send(url, "/", { method })).status, 405, `${method} /`);
    }
    // A method HTTP does not know is refused by Node's parser itself.
    assert.match(await raw(url, "BREW / HTTP/1.1\r\nHost: x\r\n\r\n"), /^HTTP\/1\.1 40[05]/, "BREW /");
    assert.match(await raw(url, "GET /a b c\r\n\r\n"), /^HTTP\/1\.1 400/, "a broken request line is a 400");
    assert.match(await raw(url, "\x00\x01\x02 garbage\r\n\r\n"), /^HTTP\/1\.1 400/, "garbage is a 400");

    const ok = await send(url, "/");
    assert.equal(ok.status, 200, "still serving after the batch");
    assert.equal(ok.body, "<p>site</p>");
    assert.equal((await send(url, "/", { method: "HEAD" })).status, 200);
    const again = await send(url, "/index.html", { headers: { "If-None-Match": ok.headers.etag } });
    assert.equal(again.status, 304, "a matching ETag is a 304");
  } finally {
    server.close();
  }
  assert.equal(inside("/srv/site", "/srv/site-test/index.html"), null);
  assert.equal(inside("/srv/site", "/srv/site/a/b.html"), "/srv/site/a/b.html");
});
