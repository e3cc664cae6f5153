//! With `--features cuda`, compiles the project's own CUDA kernels (src/train/cuda/*.cu) to PTX
//! with the same nvcc that candle-kernels uses (scripts/build-cuda.sh puts it on PATH). Other
//! builds (CPU, wasm) do nothing here.

fn main() {
    println!("cargo:rerun-if-changed=src/train/cuda/adamw.cu");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("adamw.ptx");
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let status = std::process::Command::new("nvcc")
        .args(["--ptx", "-O3", &format!("-arch=compute_{cap}"), "src/train/cuda/adamw.cu", "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("nvcc (needed for --features cuda; see scripts/build-cuda.sh): {e}"));
    assert!(status.success(), "nvcc failed on src/train/cuda/adamw.cu");
}
