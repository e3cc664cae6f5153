//! The `bert-tasks` command line: fetch-side conversions, encoder inspection and, later,
//! training and prediction. Each sub-command lives in `src/cli/`.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    keep_freed_memory();
    flush_subnormals();
    quiet_broken_pipe();
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

/// Subnormal floats as zero (x86 MXCSR flush-to-zero and denormals-are-zero), for this thread
/// and every thread it starts (they inherit the register: rayon's pool and candle's). Gradients
/// at padded positions underflow into subnormals, and each product that reads them takes the
/// CPU's slow microcode path: in People's Daily segmentation training (m3e-small, CRF), 8 % of
/// the gradient entries of a layer were subnormal and its backward products took 10 ms instead
/// of 1 (BENCHMARKS.md). Values below 1.2e-38 change nothing a model computes (same losses and
/// metrics there, bit for bit).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[allow(deprecated)] // _mm_setcsr: Rust suggests inline assembly; these two calls are the same instructions.
fn flush_subnormals() {
    #[cfg(target_arch = "x86")]
    use std::arch::x86::{_mm_getcsr, _mm_setcsr};
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
    const FLUSH_TO_ZERO: u32 = 1 << 15;
    const DENORMALS_ARE_ZERO: u32 = 1 << 6;
    // SAFETY: SSE is baseline on x86-64; the two bits only change how subnormals round.
    unsafe {
        _mm_setcsr(_mm_getcsr() | FLUSH_TO_ZERO | DENORMALS_ARE_ZERO)
    }
}

#[cfg(all(not(target_arch = "wasm32"), not(any(target_arch = "x86", target_arch = "x86_64"))))]
fn flush_subnormals() {}

/// `bert-tasks bench ... | head` ends quietly, as other Unix tools do, instead of panicking in
/// `println!` once the reader has gone (Rust ignores SIGPIPE by default).
#[cfg(unix)]
fn quiet_broken_pipe() {
    // SAFETY: restores the default disposition of one signal, before any other thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(all(not(target_arch = "wasm32"), not(unix)))]
fn quiet_broken_pipe() {}
