//! Running a whole model call on the kernels' thread pool.
//!
//! A forward pass has ~60 parallel regions (matrix products, attention, GELU, ...) separated by
//! short serial steps. Called from outside the pool (the CLI's main thread, a caller's own
//! thread), each region injects its job, blocks the caller and wakes it at the end: two wake-ups
//! in series per region. Moved onto a pool thread first, each region starts on its own share at
//! once and only the other threads are woken: q8, 1 × 16 tokens, 2 threads, Intel Xeon,
//! 10.2 → 3.6 ms.
//!
//! Tried and not kept: keeping the other threads spinning for the length of the call (a
//! broadcast job that runs `rayon::yield_now` until the call ends), against rayon putting idle
//! threads to sleep within microseconds. No gain above noise, natively or in Chromium's threaded
//! build (q8 1 × 128, 2 threads: 31–35 ms either way), for 100 % of a core burnt while waiting.

/// Runs `f` on a pool thread when the caller is outside the pool and the pool has more than
/// one thread; otherwise calls it directly. The wasm API wraps every call in it, and the encoder
/// and the trainer wrap theirs (a nested call is already on the pool and runs in place).
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_none() && pool_has_threads() {
        rayon::scope(|_| f())
    } else {
        f()
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn pool_has_threads() -> bool {
    rayon::current_num_threads() > 1
}

/// The threaded wasm build: once JS has started the pool on its workers (asking rayon before
/// that would make it build a default pool, which cannot start threads on wasm).
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn pool_has_threads() -> bool {
    crate::wasm::threads::pool_ready()
}

/// The single-threaded wasm build: no pool.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
fn pool_has_threads() -> bool {
    false
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use rayon::prelude::*;

    /// From outside the pool the call runs on it, and parallel work inside gives the same answer.
    #[test]
    fn in_pool_runs_on_the_pool() {
        let outside = std::thread::spawn(|| {
            in_pool(|| ((0..10_000u64).into_par_iter().map(|v| v * v).sum::<u64>(), rayon::current_thread_index().is_some() || rayon::current_num_threads() == 1))
        });
        let (sum, on_pool) = outside.join().unwrap();
        assert_eq!(sum, (0..10_000u64).map(|v| v * v).sum::<u64>());
        assert!(on_pool);
    }
}
