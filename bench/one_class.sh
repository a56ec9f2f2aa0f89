#!/bin/bash
# The one-class protocol on Fashion-MNIST: for each class c, pretrain on class c's training
# images only (recipes/one-class-fashion-mnist.toml with train_classes = [c]) and score the
# test set, class c normal; prints each class's AUROC beside raw-pixel kNN, then the means.
#   bash bench/one_class.sh [contra binary] [epochs]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/contra}
epochs=${2:-15}
out=${OUT:-/tmp/contra-one-class}
mkdir -p "$out"
printf "%-6s %10s %12s %8s\n" class learned "raw pixels" seconds
for c in 0 1 2 3 4 5 6 7 8 9; do
  sed "s/^train_classes = \[0\]/train_classes = [$c]/" recipes/one-class-fashion-mnist.toml > "$out/class-$c.toml"
  start=$(date +%s)
  "$bin" pretrain -q -r "$out/class-$c.toml" --epochs "$epochs" --out "$out/class-$c" > "$out/class-$c.log"
  secs=$(( $(date +%s) - start ))
  read -r learned raw < <(awk '/^AUROC/ { print $2, $3 }' "$out/class-$c.log")
  printf "%-6s %10s %12s %8s\n" "$c" "$learned" "$raw" "$secs"
done | tee "$out/table.txt"
awk 'NR > 0 { l += $2; r += $3; n++ } END { printf "%-6s %10.4f %12.4f\n", "mean", l / n, r / n }' "$out/table.txt"
