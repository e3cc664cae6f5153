// A worker whose script fails as it starts (as the package's worker did inside a Vite bundle).
throw new Error("this worker script is broken");
