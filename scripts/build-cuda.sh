#!/usr/bin/env bash
# Build the CUDA binary (`--features cuda`) on a machine without a GPU, as ../shared/TOOLCHAIN.md
# describes: CUDA 13.0.x from the PyPI wheels (pinned: nvcc 13.1+ writes PTX the GPU machines'
# driver cannot load), a CUDA root with unversioned library links and a link-time libcuda stub.
# Takes ~25 minutes cold (candle-kernels' nvcc step); kept out of CI on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
CUDA_HOME_DIR="$BERT_TASKS_CACHE/cuda-13.0"
PY_SITE="$CUDA_HOME_DIR/site"
ROOT="$CUDA_HOME_DIR/root"
if [ ! -d "$PY_SITE/nvidia/cu13" ]; then
  python3 -m pip install --no-deps --target "$PY_SITE" \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
    nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
fi
CU="$PY_SITE/nvidia/cu13"
mkdir -p "$ROOT/lib/stubs"
for d in bin include nvvm; do ln -sfn "$CU/$d" "$ROOT/$d"; done
for lib in cublas cublasLt cudart curand nvrtc; do
  real=$(ls "$CU/lib/lib$lib.so."* | sort | head -n1)
  ln -sf "$real" "$ROOT/lib/lib$lib.so"
  ln -sf "$real" "$ROOT/lib/$(basename "$real")"
done
# Link-time stub for the driver library: every cu* entry point of cuda.h, each returning an
# error. At run time the real driver's libcuda.so.1 is used.
if [ ! -f "$ROOT/lib/stubs/libcuda.so" ] || ! nm -D "$ROOT/lib/stubs/libcuda.so" | grep -q cuMemcpyDtoDAsync_v2; then
  # cuda.h declares e.g. cuMemAlloc and `#define cuMemAlloc cuMemAlloc_v2`
  # (some through __CUDA_API_PTSZ(...)): export every name.
  { grep -ohE '^CUresult CUDAAPI (cu[A-Za-z0-9_]+)' "$CU/include/cuda.h" | awk '{print $3}'
    grep -E '^#define +cu[A-Za-z0-9_]+ ' "$CU/include/cuda.h" | grep -ohE '\bcu[A-Z][A-Za-z0-9_]*'
  } | sort -u | awk '{printf "int %s(void) { return 999; }\n", $1}' > "$ROOT/lib/stubs/cuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$ROOT/lib/stubs/libcuda.so" "$ROOT/lib/stubs/cuda_stub.c"
  ln -sf libcuda.so "$ROOT/lib/stubs/libcuda.so.1"
fi
export CUDA_ROOT="$ROOT" CUDA_PATH="$ROOT" PATH="$ROOT/bin:$PATH" CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export LIBRARY_PATH="$ROOT/lib:$ROOT/lib/stubs:${LIBRARY_PATH:-}"
export CARGO_TARGET_DIR="$BERT_TASKS_CACHE/target-cuda"
cargo build --release --features cuda --bin bert-tasks
echo "built $CARGO_TARGET_DIR/release/bert-tasks (CUDA, sm_${CUDA_COMPUTE_CAP})"
echo "run it with LD_LIBRARY_PATH pointing at libcublas.so.13, libcudart.so.13, libcurand.so.10 and the driver"
