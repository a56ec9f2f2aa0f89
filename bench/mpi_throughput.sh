#!/usr/bin/env bash
# Data-parallel throughput on this machine: 2 MPI ranks x 1 thread against 1 process x 2
# threads, the same recipe and global batch, alternating, ROUNDS times each; and the bytes
# rank 0 sends per step. Needs a contra built with `--features mpi` and OpenMPI.
#   bash bench/mpi_throughput.sh [contra binary] [train images] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/contra}"
limit="${2:-10240}"
rounds="${3:-2}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
common=(--quiet pretrain --train-limit "$limit" --epochs 1 --no-eval)
rate() { sed -n 's/.*, \([0-9]*\) views\/s.*/\1/p'; }
printf "%-8s %-22s %10s %14s\n" recipe setting views/s "kB/step/rank"
for recipe in simclr moco supcon; do
  r="recipes/$recipe-fashion-mnist.toml"
  for round in $(seq "$rounds"); do
    one=$(RAYON_NUM_THREADS=2 "$bin" "${common[@]}" -r "$r" --out "$out/one" 2>&1)
    printf "%-8s %-22s %10s %14s\n" "$recipe" "1 process x 2 threads" "$(echo "$one" | rate)" -
    two=$(mpirun -n 2 --bind-to core -x RAYON_NUM_THREADS=1 "$bin" "${common[@]}" -r "$r" --out "$out/two" 2>&1)
    kb=$(echo "$two" | sed -n 's/.*: \([0-9.]*\) kB sent per step.*/\1/p')
    printf "%-8s %-22s %10s %14s\n" "$recipe" "2 ranks x 1 thread" "$(echo "$two" | rate)" "$kb"
  done
done
