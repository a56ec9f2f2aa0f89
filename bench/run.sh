#!/usr/bin/env bash
# Runs contra's and PyTorch's benchmarks one after the other on this machine and prints their
# JSON lines. PYTHON must have torch and torchvision (see tools/reference/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/contra-target}"
cargo build --release -q -p contra-bench
BIN="$CARGO_TARGET_DIR/release/contra-bench"
nproc; lscpu | grep -E "Model name|Flags" | sed 's/Flags:.*avx512f.*/Flags: ... avx512f .../' | head -2
"$BIN" train small_cnn 256 10
"$PYTHON" bench/pytorch_bench.py train small_cnn 256 10 --threads 2
"$PYTHON" bench/pytorch_bench.py train small_cnn 256 10 --threads 2 --channels-last
"$BIN" train resnet18 64 5
"$PYTHON" bench/pytorch_bench.py train resnet18 64 5 --threads 2
"$PYTHON" bench/pytorch_bench.py train resnet18 64 5 --threads 2 --channels-last
"$BIN" augment 20000
"$PYTHON" bench/pytorch_bench.py augment 5000
for loss in nt_xent supcon dcl; do
  "$BIN" loss $loss 4096 128
  "$PYTHON" bench/pytorch_bench.py loss $loss 4096 128 --threads 2
done
# Exact top-k search: 1,000 queries against 1,000,000 items of dimension 128.
"$BIN" search 1000000 128 1000 10
"$PYTHON" bench/pytorch_bench.py search 1000000 128 1000 10 --threads 2
# TS2Vec pretraining step: batch 8 (TS2Vec's), GunPoint's length 150, one channel.
"$BIN" ts2vec 8 150 1 10
"$PYTHON" bench/pytorch_bench.py ts2vec 8 150 1 10 --threads 2
