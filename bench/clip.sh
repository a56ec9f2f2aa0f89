#!/usr/bin/env bash
# CLIP runs of BENCHMARKS.md ("Image and text"): the emoji with the text tower frozen
# (pretrained all-MiniLM-L6-v2), tuned, or trained from scratch (2 layers of 128 with
# MiniLM's tokenizer), with CLIP's or SigLIP's loss, and untrained towers; Fashion-MNIST
# zero-shot with all classes and with Sandal and Bag left out of training. Each run prints
# its wall time. Data as `.ci/run` fetches them ($CONTRA_DATA).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/contra-target}"
cargo build --release -q -p contra-cli
BIN="$CARGO_TARGET_DIR/release/contra"
OUT="${OUT:-/tmp/contra-clip-bench}"
nproc; lscpu | grep -E "Model name" | head -1
run() {
  local name="$1" recipe="$2"
  shift 2
  echo "=== $name"
  local start=$SECONDS
  "$BIN" pretrain -q -r "$recipe" --set "train.out=\"$OUT/$name\"" "$@"
  echo "wall time: $((SECONDS - start)) s"
}
EMOJI=recipes/clip/emoji-minilm.toml
SCRATCH=(--set text.pretrained=false --set text.layers=2 --set text.hidden_size=128 --set text.heads=2 --set method.freeze_text=false)
run emoji-frozen-minilm "$EMOJI"
run emoji-frozen-minilm-siglip "$EMOJI" --set method.loss=siglip
run emoji-scratch-text "$EMOJI" "${SCRATCH[@]}"
run emoji-untrained-image-frozen-minilm "$EMOJI" --set train.epochs=0
run emoji-untrained-towers "$EMOJI" "${SCRATCH[@]}" --set train.epochs=0
FM=recipes/clip/fashion-mnist-minilm.toml
run fashion-mnist "$FM"
run fashion-mnist-without-sandal-bag "$FM" --set 'data.exclude_classes=["Sandal", "Bag"]'
run emoji-tuned-minilm "$EMOJI" --set method.freeze_text=false --set optimizer.lr=1e-4
