// A worker that throws asynchronously while handling a call (an uncaught error kills it).
self.onmessage = () => setTimeout(() => { throw new RangeError("out of memory (simulated)"); }, 10);
