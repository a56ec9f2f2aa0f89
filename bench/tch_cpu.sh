#!/usr/bin/env bash
# contra on the tch backend (LibTorch) on the CPU, beside the default flex build and PyTorch
# eager, in alternation (BENCHMARKS.md, "The tch backend on the CPU"):
#   PYTHON=.venv/bin/python bash bench/tch_cpu.sh [ROUNDS]
# Fetches the torch==2.9.0 wheel (the LibTorch burn 0.22's tch expects) and the two CUDA
# runtime wheels its libtorch_cpu.so links, into $WORK (default ~/.cache/contra-tch); keeps
# LibTorch's CPU libraries only, so that tch links no CUDA ones.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-2}"
PYTHON="${PYTHON:-python3}"
WORK="${WORK:-$HOME/.cache/contra-tch}"
mkdir -p "$WORK"
if [ ! -d "$WORK/libtorch/lib" ]; then
  "$PYTHON" -m pip download -q --no-deps -d "$WORK/wheels" torch==2.9.0 \
    nvidia-cuda-runtime-cu12==12.8.90 nvidia-cuda-cupti-cu12==12.8.90
  rm -rf "$WORK/unpacked" "$WORK/libtorch"
  unzip -q -o "$WORK"/wheels/torch-2.9.0-*.whl 'torch/lib/*' 'torch/include/*' 'torch/share/*' \
    -d "$WORK/unpacked"
  for w in "$WORK"/wheels/nvidia_cuda_*.whl; do unzip -q -o "$w" -d "$WORK/unpacked"; done
  mv "$WORK/unpacked/torch" "$WORK/libtorch"
  rm -f "$WORK"/libtorch/lib/lib{torch_cuda,torch_cuda_linalg,c10_cuda,caffe2_nvrtc,torch_nvshmem,torch_python}.so
fi
export LD_LIBRARY_PATH="$WORK/libtorch/lib:$WORK/unpacked/nvidia/cuda_runtime/lib:$WORK/unpacked/nvidia/cuda_cupti/lib:${LD_LIBRARY_PATH:-}"
FLEX_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/contra-target}"
TCH_DIR="$FLEX_DIR-tch"
CARGO_TARGET_DIR="$FLEX_DIR" cargo build --release -q -p contra-bench
LIBTORCH="$WORK/libtorch" CARGO_TARGET_DIR="$TCH_DIR" \
  cargo build --release -q -p contra-bench --features contra-bench/tch
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  for a in "train small_cnn 256 10" "train resnet18 64 5" "ts2vec 8 150 1 10"; do
    # shellcheck disable=SC2086
    CONTRA_BENCH_DEVICE=tch-cpu "$TCH_DIR/release/contra-bench" $a | sed 's/^/tch /'
    # shellcheck disable=SC2086
    "$FLEX_DIR/release/contra-bench" $a | sed 's/^/flex /'
    # shellcheck disable=SC2086
    "$PYTHON" bench/pytorch_bench.py $a --threads 2 2>/dev/null | grep '^{' | sed 's/^/torch /'
  done
done
