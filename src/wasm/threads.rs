//! A rayon thread pool over Web Workers / Node worker threads (threaded wasm build only, i.e.
//! compiled with `+atomics`; see scripts/build-pkg.sh and js/threads.js).
//!
//! wasm32 has no `std::thread::spawn`: threads are workers that JS starts, each instantiating this
//! same module on the same shared memory. The handshake:
//! 1. JS starts N workers; each calls [`thread_pool_worker`], which blocks until it is handed a
//!    rayon thread to run (workers may block; a page's main thread may not, which is why the
//!    threaded build only runs inside a worker or Node).
//! 2. The thread that owns the model calls [`build_thread_pool`]: rayon's spawn handler queues its
//!    N `ThreadBuilder`s, the waiting workers take one each and run rayon's loop from then on.
//!
//! The kernels in src/model/fused.rs then split work over the pool: each matmul into one column
//! strip per thread, attention one head per task (candle's own matmul stays single-threaded on
//! wasm32).
//!
//! Every model call runs *on* a pool thread (`crate::parallel::in_pool`) while the calling thread sleeps: with
//! the caller outside the pool, the serial parts of the encoder would run on an (N+1)-th thread
//! competing with N pool threads, which on wasm spin without yielding (`yield_now` is a no-op
//! there) before they sleep: measured 1×128 on 2 cores, 62–109 ms outside vs steady inside.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use rayon::ThreadBuilder;
use wasm_bindgen::prelude::*;

/// Rayon threads waiting for a worker to run them.
static QUEUE: Mutex<Vec<ThreadBuilder>> = Mutex::new(Vec::new());
static QUEUED: Condvar = Condvar::new();
static POOL_READY: AtomicBool = AtomicBool::new(false);

/// Whether [`build_thread_pool`] has run (`crate::parallel::in_pool` moves calls onto the pool
/// only then; before, rayon would build a default pool of its own).
pub fn pool_ready() -> bool {
    POOL_READY.load(Ordering::Acquire)
}

/// The module and memory a worker needs to join (`[WebAssembly.Module, WebAssembly.Memory]`).
#[wasm_bindgen(js_name = threadingParts)]
pub fn threading_parts() -> js_sys::Array {
    js_sys::Array::of2(&wasm_bindgen::module(), &wasm_bindgen::memory())
}

/// Runs in a worker: waits for a rayon thread and runs it; returns only when the pool shuts down.
#[wasm_bindgen(js_name = threadPoolWorker)]
pub fn thread_pool_worker() {
    let thread = {
        let mut queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(t) = queue.pop() {
                break t;
            }
            queue = QUEUED.wait(queue).unwrap_or_else(|e| e.into_inner());
        }
    };
    thread.run();
}

/// Builds rayon's global pool on `threads` workers that already wait in [`thread_pool_worker`].
#[wasm_bindgen(js_name = buildThreadPool)]
pub fn build_thread_pool(threads: usize) -> Result<(), JsError> {
    // gemm reads its cache sizes from a `once_cell` filled on first use. Left to the pool, two
    // threads reach it in their first product at once and one waits in `std::thread::park` for
    // the other to finish filling it. In Node that wait never ended once in ~120 runs (the stacks
    // in bench/results/2026-12-05-hang: a pool thread parked there, the other asleep in rayon,
    // the caller waiting for the job). Filled here, before any pool thread exists, the cell is
    // only ever read by the pool and nothing can wait on it.
    let _ = &*gemm_common::cache::CACHE_INFO;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .spawn_handler(|thread| {
            QUEUE.lock().unwrap_or_else(|e| e.into_inner()).push(thread);
            QUEUED.notify_one();
            Ok(())
        })
        .build_global()
        .map_err(|e| JsError::new(&format!("bert-tasks: could not start the thread pool: {e}")))?;
    POOL_READY.store(true, Ordering::Release);
    Ok(())
}
