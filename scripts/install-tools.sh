#!/usr/bin/env bash
# Install the tools the wasm and browser steps need, at pinned versions; skips what is there.
#   install-tools.sh wasm      rustup target, wasm-bindgen-cli (version from Cargo.lock), wasm-pack, wasm-opt (npm binaryen)
#   install-tools.sh wasm-threads  the pinned nightly + rust-src that rebuild std with atomics (threaded wasm)
#   install-tools.sh browser   Debian chromium + chromium-driver, npm packages of tests/js
#   install-tools.sh refenv    the reference Python env ($BERT_TASKS_CACHE/refenv: torch, transformers, onnx, ...)
#   install-tools.sh bench     npm packages of bench/js (transformers.js, onnxruntime-web)
#   install-tools.sh node-lts  Node $NODE_LTS_VERSION (current LTS) as $NODE_LTS, from the npm package node-linux-<arch>
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
for what in "$@"; do
  case "$what" in
  wasm)
    rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
    want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
    if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$want" ]; then
      # --locked fails here (a locked dependency version is not served); the tool's own pin suffices.
      cargo install wasm-bindgen-cli --version "$want"
    fi
    command -v wasm-pack >/dev/null || cargo install wasm-pack --version 0.15.1
    [ -x scripts/tools/node_modules/.bin/wasm-opt ] || (cd scripts/tools && npm ci --no-audit --no-fund --silent)
    ;;
  wasm-threads)
    # Pinned: -Z build-std is unstable, and a pinned nightly keeps the threaded build reproducible.
    rustup toolchain list | grep -q "^$WASM_THREADS_TOOLCHAIN" ||
      rustup toolchain install "$WASM_THREADS_TOOLCHAIN" --profile minimal --component rust-src
    ;;
  browser)
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
    fi
    (cd tests/js && npm ci --no-audit --no-fund --silent)
    ;;
  refenv)
    env="$BERT_TASKS_CACHE/refenv"
    if ! "$env/bin/python" -c "import torch, transformers, onnx, onnxscript, onnxruntime, torchcrf, seqeval" 2>/dev/null; then
      python3 -m venv "$env"
      "$env/bin/pip" install -q torch==2.15.0 transformers==5.24.0 safetensors==0.8.0 pytorch-crf==0.7.2 seqeval==1.2.2 \
        onnx==1.23.2 onnxscript==0.7.2 onnxruntime==1.32.0
    fi
    ;;
  bench)
    # --ignore-scripts: onnxruntime-node's install script downloads extra GPU binaries from a
    # host outside the registry; the bench needs onnxruntime-web plus the bundled CPU binary.
    (cd bench/js && npm ci --no-audit --no-fund --silent --ignore-scripts)
    ;;
  node-lts)
    # The system Node may be older (Node 20 here: no relaxed SIMD without a flag). The npm
    # registry carries every Node release as a plain package of its binary, so no other host
    # is needed.
    if [ ! -x "$NODE_LTS" ]; then
      case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *) echo "error: no node-linux package for $(uname -m); set NODE_LTS to a Node >= 22" >&2; exit 1 ;;
      esac
      dir=$(dirname "$NODE_LTS")
      npm install --prefix "$dir" --no-save --no-audit --no-fund --silent "node-linux-$arch@$NODE_LTS_VERSION"
      ln -sf "node_modules/node-linux-$arch/bin/node" "$NODE_LTS"
    fi
    "$NODE_LTS" --version >/dev/null
    ;;
  *) echo "unknown tool set $what" >&2; exit 1 ;;
  esac
done
