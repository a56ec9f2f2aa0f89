#!/usr/bin/env bash
# contra on a GPU machine through the tch backend, beside PyTorch on the same GPU.
#
# Build here (no GPU needed) against the libtorch of the torch version installed on the GPU
# machine, e.g. the torch==2.11.0 wheel's `torch/` folder unpacked to $LIBTORCH:
#   LIBTORCH=... LIBTORCH_BYPASS_VERSION_CHECK=1 \
#   RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined" \
#   cargo build --release -p contra-cli -p contra-bench --no-default-features \
#     --features contra-cli/tch,contra-bench/tch
# then copy the (stripped) `contra` and `contra-bench` into BIN and run this script there:
#   BIN=folder-with-binaries CONTRA_DATA=folder-with-fashion-mnist bash bench/gpu-check.sh
set -u
BIN="${BIN:?folder with the tch builds of contra and contra-bench}"
PYTHON="${PYTHON:-python3}"
TORCH_LIB=$("$PYTHON" -c "import torch, os; print(os.path.dirname(torch.__file__))")/lib
export LD_LIBRARY_PATH="$TORCH_LIB:${LD_LIBRARY_PATH:-}"
nvidia-smi -L; nproc; "$PYTHON" -c "import torch; print('torch', torch.__version__)"
"$BIN/contra" info 2>&1 | head -5
echo "== digits, default recipe, tch-cuda:0"
/usr/bin/time -f "wall %e s" "$BIN/contra" pretrain --device tch-cuda:0 --workers 8 --out /tmp/contra-gpu-digits 2>&1 | grep -v "^step"
echo "== training step and losses: contra (tch-cuda) beside PyTorch eager (cuda)"
for a in "train small_cnn 256 30" "train resnet18 64 20" "train resnet18 256 10"; do
  CONTRA_BENCH_DEVICE=tch-cuda:0 timeout 120 "$BIN/contra-bench" $a
  timeout 120 "$PYTHON" bench/pytorch_bench.py $a --device cuda
done
for l in nt_xent supcon dcl; do
  CONTRA_BENCH_DEVICE=tch-cuda:0 timeout 60 "$BIN/contra-bench" loss $l 4096 128
  timeout 60 "$PYTHON" bench/pytorch_bench.py loss $l 4096 128 --device cuda
done
if [ -n "${CONTRA_DATA:-}" ]; then
  echo "== Fashion-MNIST SimCLR recipe (5 epochs), tch-cuda:0"
  /usr/bin/time -f "wall %e s" timeout 300 "$BIN/contra" pretrain -r recipes/simclr-fashion-mnist.toml \
    --device tch-cuda:0 --workers "$(nproc)" --out /tmp/contra-gpu-fm 2>&1 | grep -v "^step"
fi
