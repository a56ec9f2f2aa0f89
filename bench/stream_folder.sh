#!/usr/bin/env bash
# Issue 16's benchmark (BENCHMARKS.md "Folders larger than memory"): a folder of N generated
# 256x256 JPEGs (default 50,000 in 10 class folders), then one epoch of SimCLR (small CNN,
# 64x64 crops, batch 256, 2 loader workers) streamed from the files and, on the same images,
# from memory pre-shrunk to 64x64. Prints each run's images/s, data wait and peak memory
# (GNU time's maximum resident set size).
#   bash bench/stream_folder.sh [N] [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/contra-target}"
N="${1:-50000}"
DIR="${2:-/tmp/contra-stream-bench}"
cargo build --release -q -p contra-cli -p contra-bench
BIN="$CARGO_TARGET_DIR/release"
nproc; lscpu | grep -E "Model name" | head -1
if [ ! -d "$DIR/photos" ] || [ "$(find "$DIR/photos" -name '*.jpg' | wc -l)" -ne "$N" ]; then
  rm -rf "$DIR/photos"
  "$BIN/contra-bench" jpeg-folder "$DIR/photos" "$N" 256
fi
du -sh "$DIR/photos"
run() {
  local name="$1"
  shift
  echo "=== $name"
  /usr/bin/time -f "peak memory: %M KiB, wall %e s" "$BIN/contra" pretrain -q --no-eval \
    -r bench/stream-folder.toml --data-path "$DIR/photos" --out "$DIR/$name" "$@"
}
run streamed --set data.stream=true
run in-memory --set data.stream=false
