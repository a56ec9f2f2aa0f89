#!/usr/bin/env bash
# Where a SimCLR training step's time goes, contra beside PyTorch, for one model:
#   PYTHON=.venv/bin/python bash bench/profile.sh small_cnn 256 10
#   PYTHON=.venv/bin/python bash bench/profile.sh resnet18 64 4
# contra: perf with DWARF call graphs over `contra-bench train` (needs Debian's linux-perf),
# samples put into rows by bench/perf_categories.py; PyTorch: its profiler
# (`pytorch_bench.py train ... --profile`). Both print JSON with ms per step per row.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-small_cnn}" PAIRS="${2:-256}" STEPS="${3:-10}"
PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/contra-target}"
cargo build --release -q -p contra-bench
BIN="$CARGO_TARGET_DIR/release/contra-bench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The step time without the profiler, then the same run sampled.
ips="$("$BIN" train "$MODEL" "$PAIRS" "$STEPS" | sed 's/.*"images_per_second":\([0-9.]*\).*/\1/')"
step_ms="$(python3 -c "print(1000 * 2 * $PAIRS / $ips)")"
perf record -q --call-graph dwarf,65528 -F 120 -o "$work/perf.data" \
  "$BIN" train "$MODEL" "$PAIRS" "$STEPS" >/dev/null 2>&1
perf script -i "$work/perf.data" -F tid,ip,sym 2>/dev/null |
  python3 bench/perf_categories.py "$MODEL" "$step_ms"
"$PYTHON" bench/pytorch_bench.py train "$MODEL" "$PAIRS" "$STEPS" --threads 2 --profile 2>/dev/null | grep '^{'
