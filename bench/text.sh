#!/usr/bin/env bash
# Text benchmarks of BENCHMARKS.md: contra beside sentence-transformers on the same CPU and
# threads, the same texts (WordNet glosses and names) and batches: embedding, the MNRL
# training step, and GradCache's peak memory. PYTHON must have torch and
# sentence-transformers (tools/reference/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/contra-target}"
cargo build --release -q -p contra-bench
BIN="$CARGO_TARGET_DIR/release/contra-bench"
nproc; lscpu | grep -E "Model name" | head -1
for i in 1 2; do
  "$BIN" text-embed 2048 64
  "$PYTHON" bench/text_bench.py embed 2048 64 --threads 2 2>/dev/null
done
for i in 1 2; do
  "$BIN" text-train 64 3
  "$PYTHON" bench/text_bench.py train 64 3 --threads 2 2>/dev/null
done
# Peak memory: one plain mini-batch of 32 pairs, then batch 1,024 through GradCache (32).
"$BIN" text-train 32 2 0
"$BIN" text-train 1024 1 32
"$PYTHON" bench/text_bench.py train 32 2 --threads 2 2>/dev/null
"$PYTHON" bench/text_bench.py train 1024 1 --mini-batch 32 --threads 2 2>/dev/null
