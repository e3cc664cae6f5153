// A worker whose model call traps: it answers the way the package's worker does after a wasm
// RuntimeError (the module is unusable from then on).
self.onmessage = ({ data: { id } }) => self.postMessage({ id, error: "RuntimeError: unreachable", fatal: true });
