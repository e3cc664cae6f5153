// The JS and wasm call stacks of every thread of a running Node process, for a measurement that
// hangs (bench/run.sh calls it before killing one): opens the process's inspector (SIGUSR1),
// pauses the main thread and each worker (Debugger.pause over the NodeWorker domain) and prints
// their frames. Wasm frames are named where the module kept its name section (wasm-opt strips it:
// BERT_TASKS_WASM_OPT=0 builds keep Rust's names), else `$funcN` and a byte offset.
//   node bench/js/stacks.mjs PID [port, default 9229]
import { createRequire } from "node:module";

const [pid, port = "9229"] = process.argv.slice(2).map(Number);
// Node 20 has no WebSocket client; playwright-core (a bench dependency) bundles one.
const WebSocket = globalThis.WebSocket && !process.versions.node.startsWith("20.")
  ? globalThis.WebSocket
  : createRequire(import.meta.url)("playwright-core/lib/utilsBundle").ws;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

process.kill(pid, "SIGUSR1");
let targets;
for (let i = 0; i < 50 && !targets; i++) {
  await sleep(200);
  targets = await fetch(`http://127.0.0.1:${port}/json/list`).then((r) => r.json(), () => undefined);
}
if (!targets?.length) throw new Error(`no inspector on port ${port} for process ${pid}`);
const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((resolve, reject) => {
  socket.addEventListener("open", resolve);
  socket.addEventListener("error", reject);
});
let id = 0;
const send = (method, params = {}) => socket.send(JSON.stringify({ id: ++id, method, params }));
const toWorker = (sessionId, method, params = {}) =>
  send("NodeWorker.sendMessageToWorker", { sessionId, message: JSON.stringify({ id: ++id, method, params }) });
const print = (who, frames) => {
  console.log(`== ${who}`);
  for (const f of frames.slice(0, 40)) {
    const name = (f.functionName || "(anonymous)").replace(/\[[0-9a-f]{16}\]/g, ""); // crate hashes
    console.log(`  ${name.slice(0, 240)}  ${f.url.split("/").pop()}:${f.location.lineNumber}:${f.location.columnNumber}`);
  }
};
const titles = new Map();
socket.addEventListener("message", ({ data }) => {
  const m = JSON.parse(data);
  if (m.method === "NodeWorker.attachedToWorker") {
    titles.set(m.params.sessionId, m.params.workerInfo.title);
    toWorker(m.params.sessionId, "Debugger.enable");
    toWorker(m.params.sessionId, "Debugger.pause");
  } else if (m.method === "NodeWorker.receivedMessageFromWorker") {
    const inner = JSON.parse(m.params.message);
    if (inner.method === "Debugger.paused") print(titles.get(m.params.sessionId), inner.params.callFrames);
  } else if (m.method === "Debugger.paused") {
    print("main thread", m.params.callFrames);
  }
});
send("Debugger.enable");
send("NodeWorker.enable", { waitForDebuggerOnStart: false });
send("Debugger.pause");
// A thread blocked outside JS and wasm (a futex wait) pauses when it wakes, so it may not answer.
await sleep(5000);
socket.close();
process.exit(0);
