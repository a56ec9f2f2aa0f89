#!/usr/bin/env bash
# CLIP training-step throughput of BENCHMARKS.md: contra beside PyTorch eager (OpenCLIP's
# ClipLoss) on the same CPU and threads, the emoji recipe's towers (small CNN on 3x32x32,
# projections to 128) with the text tower frozen (cached outputs) or a 2x128 BERT from
# scratch on WordNet names; three alternating runs each. PYTHON must have torch,
# transformers and open-clip-torch (tools/reference/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/contra-target}"
cargo build --release -q -p contra-bench
BIN="$CARGO_TARGET_DIR/release/contra-bench"
nproc; lscpu | grep -E "Model name" | head -1
for text in frozen scratch; do
  for i in 1 2 3; do
    "$BIN" clip-train 128 10 "$text"
    "$PYTHON" bench/clip_bench.py 128 10 "$text" --threads 2 2>/dev/null
  done
done
