//! The `bert-tasks` command line: fetch-side conversions, encoder inspection and, later,
//! training and prediction. Each sub-command lives in `src/cli/`.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    keep_freed_memory();
    if let Err(e) = bert_tasks::cli::run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}

/// glibc hands every allocation above its (adaptive) mmap threshold straight back to the kernel
/// when freed, so each big activation tensor of a training step was page-faulted in afresh:
/// ~15% of a step went to clearing pages (BENCHMARKS.md). Keep such memory in the heap instead.
/// One arena: the step runs on a pool thread, and glibc unmaps a thread arena's heap (64 MiB at
/// most) whenever it empties, whatever the trim threshold says, so a step page-faulted ~46,000
/// pages back in (a tenth of its time in faults and the TLB shootdowns they send the other core).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator parameters; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(all(not(target_arch = "wasm32"), not(all(target_os = "linux", target_env = "gnu"))))]
fn keep_freed_memory() {}
