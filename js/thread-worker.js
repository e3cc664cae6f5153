// One thread of the pool (js/threads.js): joins the shared memory, says ready, then runs a rayon
// thread until the process or page ends.
import { VARIANTS } from "./variants.js";
import { nodeBuiltin } from "./threads.js";

const port = typeof self !== "undefined" && typeof self.postMessage === "function"
  ? { once: (f) => (self.onmessage = ({ data }) => f(data)), post: (m) => self.postMessage(m) }
  : await nodeBuiltin("node:worker_threads").then(({ parentPort }) => ({
      once: (f) => parentPort.once("message", f),
      post: (m) => parentPort.postMessage(m),
    }));

port.once(async ({ variant, module, memory }) => {
  const glue = await VARIANTS[variant].glue();
  glue.initSync({ module, memory });
  port.post("ready");
  glue.threadPoolWorker();
});
