#!/usr/bin/env bash
# Training-step throughput of contra beside PyTorch eager, in alternation (the issue-15 protocol):
#   PYTHON=.venv/bin/python bash bench/alternate.sh [ROUNDS] [BEFORE_BIN]
# ROUNDS (default 3) rounds of the small CNN, ResNet-18 and TS2Vec steps; each round runs an
# older contra-bench (BEFORE_BIN, e.g. one built from an earlier commit), this tree's and
# PyTorch's, one after the other. Prints JSON lines prefixed by before / after / torch.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}" BEFORE="${2:-}"
PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/contra-target}"
cargo build --release -q -p contra-bench
AFTER="$CARGO_TARGET_DIR/release/contra-bench"
step() {
  [ -n "$BEFORE" ] && "$BEFORE" "$@" | sed 's/^/before /'
  "$AFTER" "$@" | sed 's/^/after /'
  # Without torch (or with a failing run) say so, instead of stopping at grep's empty match.
  out="$("$PYTHON" bench/pytorch_bench.py "$@" --threads 2 2>&1)" ||
    { printf 'PyTorch side failed (PYTHON=%s):\n%s\n' "$PYTHON" "$(tail -c 2000 <<<"$out")" >&2; exit 1; }
  printf '%s\n' "$out" | grep '^{' | sed 's/^/torch /'
}
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  step train small_cnn 256 10
  step train resnet18 64 5
  step ts2vec 8 150 1 10
done
