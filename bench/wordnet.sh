#!/usr/bin/env bash
# The WordNet text benchmark of BENCHMARKS.md: all-MiniLM-L6-v2 as shipped, fine-tuned with
# in-batch negatives on training synsets (gloss -> names), and SimCSE on training glosses;
# pair retrieval on 1,000 held-out synsets; the few-label lexname table of the shipped model.
# Needs `apt-get install wordnet-base` and the model in $CONTRA_DATA/models (.ci/run puts it
# there). TRAIN_LIMIT: training synsets the fine-tuning runs use (default 4096; 0: all 65,679);
# FEWSHOT_LIMIT: training synsets the few-label table draws its labels from (default 8192).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/contra-target}"
cargo build --release -q -p contra-cli
BIN="$CARGO_TARGET_DIR/release/contra"
OUT="${OUT:-runs/wordnet}"
LIMIT="${TRAIN_LIMIT:-4096}"
FEW="${FEWSHOT_LIMIT:-8192}"
nproc; lscpu | grep -E "Model name" | head -1
"$BIN" pretrain -q --no-eval -r recipes/text/mnrl-wordnet.toml --set train.epochs=0 --out "$OUT/shipped"
"$BIN" eval pairs -m "$OUT/shipped/model.safetensors"
for r in mnrl simcse; do
  /usr/bin/time -f "$r: %e s wall" "$BIN" pretrain -q --no-eval -r "recipes/text/$r-wordnet.toml" \
    --set "data.train_limit=$LIMIT" --out "$OUT/$r"
  "$BIN" eval pairs -m "$OUT/$r/model.safetensors"
done
"$BIN" pretrain -q --no-eval -r recipes/text/mnrl-wordnet.toml --set train.epochs=0 \
  --set "data.train_limit=$FEW" --out "$OUT/shipped-fewshot"
/usr/bin/time -f "fewshot: %e s wall" "$BIN" eval fewshot -m "$OUT/shipped-fewshot/model.safetensors" \
  --labels 1,10 --seeds 3 --finetune-steps 30 --finetune-batch 32 --finetune-lr 1e-3 --encoder-lr 2e-5
