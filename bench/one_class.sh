#!/bin/bash
# The one-class protocol on Fashion-MNIST: for each class c, pretrain on class c's training
# images only (the recipe with train_classes = [c]) and score the test set, class c normal;
# prints each class's AUROC beside raw-pixel kNN, then the means. For a CSI recipe the
# learned column is the recipe's score (method.score) and a second column scores the same
# encoder by kNN (k=5); for a mean-shifted recipe the second column is the starting encoder
# (`train.init`, pretrained on other data) by the same kNN before adaptation, on the
# Fashion-MNIST folder FASHION (default Debian's). CLASSES="4 5" runs only those normal classes.
#   bash bench/one_class.sh [contra binary] [epochs] [recipe]
#   bash bench/one_class.sh target/release/contra 15                       # SimCLR
#   sed 's/^score = "knn_shifts"/score = "csi"/' recipes/csi-fashion-mnist.toml > /tmp/csi.toml
#   bash bench/one_class.sh target/release/contra 5 /tmp/csi.toml      # CSI's score and kNN
#   bash bench/one_class.sh target/release/contra 10 recipes/mean-shifted-fashion-mnist.toml
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/contra}
epochs=${2:-15}
recipe=${3:-recipes/one-class-fashion-mnist.toml}
out=${OUT:-/tmp/contra-one-class}
csi=$(grep -q '^kind = "csi"' "$recipe" && echo 1 || echo 0)
init=$(sed -n 's/^init = "\(.*\)"$/\1/p' "$recipe")
shifted=$(grep -q '^kind = "mean_shifted"' "$recipe" && echo 1 || echo 0)
fashion=${FASHION:-/usr/share/datasets/fashion-mnist}
mkdir -p "$out"
second="kNN (CSI)"
[ "$shifted" = 1 ] && second="start (kNN)"
printf "%-6s %10s %12s %12s %8s\n" class learned "$second" "raw pixels" seconds
for c in ${CLASSES:-0 1 2 3 4 5 6 7 8 9}; do
  sed "s/^train_classes = \[0\]/train_classes = [$c]/" "$recipe" > "$out/class-$c.toml"
  start=$(date +%s)
  "$bin" pretrain -q -r "$out/class-$c.toml" --epochs "$epochs" --out "$out/class-$c" > "$out/class-$c.log"
  secs=$(( $(date +%s) - start ))
  read -r learned raw < <(awk '/^AUROC/ { print $2, $4 }' "$out/class-$c.log")
  knn=-
  if [ "$csi" = 1 ]; then
    "$bin" eval anomaly -q -m "$out/class-$c/model.safetensors" --k 5 > "$out/class-$c.knn.log"
    knn=$(awk '/^AUROC/ { print $2 }' "$out/class-$c.knn.log")
  elif [ "$shifted" = 1 ]; then
    # The outside encoder before adaptation, on this class's images (its own normalisation).
    "$bin" eval anomaly -q -m "$init" --data-path "$fashion" --normal-class "$c" --k 5 > "$out/class-$c.start.log"
    knn=$(awk '/^AUROC/ { print $2 }' "$out/class-$c.start.log")
  fi
  printf "%-6s %10s %12s %12s %8s\n" "$c" "$learned" "$knn" "$raw" "$secs"
done | tee "$out/table.txt"
awk '{ l += $2; k += $3; r += $4; n++ } END { knn = "-"; if (k > 0) knn = sprintf("%.4f", k / n)
  printf "%-6s %10.4f %12s %12.4f\n", "mean", l / n, knn, r / n }' "$out/table.txt"
