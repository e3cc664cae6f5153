//! The `bert-tasks` command line: fetch-side conversions, encoder inspection and, later,
//! training and prediction. Each sub-command lives in `src/cli/`.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    if let Err(e) = bert_tasks::cli::run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
