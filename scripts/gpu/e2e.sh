#!/usr/bin/env bash
# ON THE GPU HOST, after prepare.sh here: builds the addon (check.sh --build-only) and runs
# benchmarks/gpu/wan-e2e.mjs with the carried JS packages. Results go to $OUT.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="${OUT:-$root/gpu-out}"
mkdir -p "$out"
bash scripts/gpu/check.sh --build-only || exit 1
export PATH=/tmp:$PATH TESSERA_NATIVE_BUILD_DIR=/tmp/tessera-build/Release
export NODE_PATH="$root/.gpu/node_modules" COMMIT="$(cat .gpu/commit 2>/dev/null || echo unknown)"
# ESM ignores NODE_PATH: run from a folder whose node_modules holds the packages.
cp benchmarks/gpu/wan-e2e.mjs .gpu/wan-e2e.mjs
OUT="$out" node .gpu/wan-e2e.mjs 2>&1 | tee "$out/wan-e2e.log"
