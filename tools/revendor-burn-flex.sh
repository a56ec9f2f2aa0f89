#!/usr/bin/env bash
# vendor/burn-flex is the published burn-flex crate plus vendor/burn-flex.patch (contra's
# changes, each written as it would be proposed upstream; see vendor/burn-flex/VENDORED.md).
#
#   bash tools/revendor-burn-flex.sh           # re-create vendor/burn-flex from the crate + patch
#   bash tools/revendor-burn-flex.sh --check   # the same into a temporary folder: byte-equal?
#   bash tools/revendor-burn-flex.sh --diff    # write the patch from today's vendor/burn-flex
#
# A burn upgrade: set VERSION (and the workspace's pin), run without arguments, resolve what
# the patch no longer applies to, then --diff. The published crate comes from cargo's
# registry cache (fetched by a throwaway project when missing); its design documents, VCS
# note and lock file are left out of vendor/.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.22.1
MODE="${1:-apply}"
REPO="$PWD"
PATCH="$REPO/vendor/burn-flex.patch"
CACHE="${CARGO_HOME:-$HOME/.cargo}/registry/cache"
find_crate() { ls "$CACHE"/*/"burn-flex-$VERSION.crate" 2>/dev/null | head -1 || true; }
CRATE="$(find_crate)"
if [ -z "$CRATE" ]; then
  fetch="$(mktemp -d)"
  (cd "$fetch" && cargo init -q --lib --name fetch-burn-flex &&
    printf 'burn-flex = "=%s"\n' "$VERSION" >>Cargo.toml && cargo fetch -q)
  rm -rf "$fetch"
  CRATE="$(find_crate)"
fi
[ -n "$CRATE" ] || { echo "burn-flex $VERSION is not in $CACHE" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$CRATE" -C "$WORK"
mv "$WORK/burn-flex-$VERSION" "$WORK/a"
rm -f "$WORK"/a/{.cargo_vcs_info.json,ARCHITECTURE.md,BENCHMARKS.md,COMPARISON.md,Cargo.lock}
case "$MODE" in
  --diff)
    cp -r vendor/burn-flex "$WORK/b"
    (cd "$WORK" && git diff --no-index --no-prefix a b >"$PATCH" || true)
    echo "wrote $PATCH ($(grep -c '^diff --git' "$PATCH") files)"
    ;;
  apply | --check)
    (cd "$WORK/a" && git apply -p1 "$PATCH")
    if [ "$MODE" = --check ]; then
      if diff -r "$WORK/a" vendor/burn-flex >/dev/null; then
        echo "vendor/burn-flex equals burn-flex $VERSION + vendor/burn-flex.patch, byte for byte"
      else
        diff -rq "$WORK/a" vendor/burn-flex >&2 || true
        exit 1
      fi
    else
      rm -rf vendor/burn-flex
      cp -r "$WORK/a" vendor/burn-flex
      echo "re-created vendor/burn-flex from burn-flex $VERSION + vendor/burn-flex.patch"
    fi
    ;;
  *)
    echo "usage: $0 [--check|--diff]" >&2
    exit 2
    ;;
esac
