#!/bin/bash
# Leave one mote out on the wireless sensor network (tools/get-wsn.sh): train NCAD on every
# other mote's whole stream, their labelled events included (method.use_labels = true) or
# not (false), and score the held-out mote's windows. Motes 2 and 3 have no labelled events,
# so only motes 1 and 4 can be held out. Prints each run's per-step AUROC and VUS-PR beside
# raw windows and the window AUROC.
#   bash bench/leave_one_mote_out.sh [contra binary] [recipe]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/contra}
recipe=${2:-recipes/ncad-sensor-folder.toml}
data=${CONTRA_DATA:?set CONTRA_DATA}/sensors/wsn
out=${OUT:-/tmp/contra-lomo}
mkdir -p "$out"
printf "%-6s %-7s %14s %14s %14s %14s %8s\n" mote labels "window AUROC" "raw AUROC" "step VUS-PR" "raw VUS-PR" seconds
for held in 1 4; do
  train="$out/train-without-$held"
  rm -rf "$train" && mkdir -p "$train"
  for m in 1 2 3 4; do
    [ "$m" = "$held" ] || ln -s "$data/mote-$m.csv" "$train/mote-$m.csv"
  done
  for labels in true false; do
    run="$out/mote-$held-labels-$labels"
    sed -e "s#^path = .*#path = \"$train\"\ntest_path = \"$data/mote-$held.csv\"#" \
        -e "/^train_fraction/d" -e "s/^use_labels = .*/use_labels = $labels/" "$recipe" > "$run.toml"
    start=$(date +%s)
    "$bin" pretrain -q -r "$run.toml" --out "$run" > "$run.log"
    secs=$(( $(date +%s) - start ))
    read -r auroc raw < <(awk '/^AUROC/ && !seen { print $2, $4; seen = 1 }' "$run.log")
    read -r vus rawvus < <(awk '/^VUS-PR/ { print $2, $3 }' "$run.log")
    printf "%-6s %-7s %14s %14s %14s %14s %8s\n" "$held" "$labels" "$auroc" "$raw" "$vus" "$rawvus" "$secs"
  done
done | tee "$out/table.txt"
