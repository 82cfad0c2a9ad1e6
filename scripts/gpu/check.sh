#!/usr/bin/env bash
# Run ON THE GPU HOST (see prepare.sh): builds the addon with CUDA (cuBLASLt where
# found), runs the op conformance suite on every backend, then compute-sanitizer
# memcheck and racecheck over the CUDA cases. Results go to $OUT (or ./gpu-out).
#   bash scripts/gpu/check.sh [--no-sanitizer | --sanitizer-only | --build-only] [--filter SUBSTR]
# (A device call is limited to 10 minutes: run the checks and the sanitizers as two calls.)
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="${OUT:-$root/gpu-out}"
mkdir -p "$out"
sanitize=1
checks=1
filter=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-sanitizer) sanitize=0 ;;
    --sanitizer-only) checks=0 ;;
    --build-only) checks=0; sanitize=0 ;;
    --filter) filter="$2"; shift ;;
  esac
  shift
done

if ! command -v node >/dev/null 2>&1; then
  xz -d -T8 -c .gpu/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

build=/tmp/tessera-build
start=$(date +%s)
cmake -S packages/native -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_JS_INC="$root/.gpu/node-api-headers/include" \
  -DNODE_ADDON_API_DIR="$root/.gpu/node-addon-api" > "$out/build.log" 2>&1 &&
  cmake --build "$build" -j 16 >> "$out/build.log" 2>&1
rc=$?
echo "build: rc=$rc in $(( $(date +%s) - start ))s"
grep -E "tessera:|error" "$out/build.log" | head -40
[ $rc -eq 0 ] || exit $rc
export TESSERA_NATIVE_BUILD_DIR="$build/Release"
runner=".gpu/native-dist/testing/run-conformance.js"
commit=$(cat .gpu/commit 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)

if [ $checks -eq 1 ]; then
  args=(--out "$out/conformance.json" --commit "$commit")
  [ -n "$filter" ] && args+=(--filter "$filter")
  node "$runner" "${args[@]}" > "$out/conformance.log" 2>&1
  echo "conformance: rc=$?"
  grep -E "^FAIL|passed|cuda:" "$out/conformance.log" | tail -40

  node .gpu/native-dist/testing/runtime-check.js --out "$out/runtime.json" > "$out/runtime.log" 2>&1
  echo "runtime checks: rc=$?"
  tail -12 "$out/runtime.log"
fi

if [ $sanitize -eq 1 ]; then
  for tool in memcheck racecheck; do
    sargs=(--device cuda --sanitizer --out "$out/sanitizer-$tool.json" --commit "$commit")
    [ -n "$filter" ] && sargs+=(--filter "$filter")
    timeout "${SANITIZER_TIMEOUT:-270}" compute-sanitizer --tool "$tool" --print-limit 20 node "$runner" "${sargs[@]}" \
      > "$out/sanitizer-$tool.log" 2>&1
    echo "sanitizer $tool: rc=$?"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race|passed" "$out/sanitizer-$tool.log" | tail -8
  done
fi
