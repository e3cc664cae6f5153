// A worker that receives every message and never answers (a stuck or silently dead worker).
self.onmessage = () => {};
