# The one library of the GPU suites in scripts/gpu/ (check, kernel-bench, e2e-bench,
# demo-training, multigpu); sourced, never run. The suites run on a GPU host, in a copy of
# the repository with .gpu/ (staged here by prepare.sh) beside it. Each writes its result
# files, named as in benchmarks/results/ (<bench>-<gpu>.json), straight into $OUT (./gpu-out
# without one) and packs every log into one $OUT/<suite>-logs.tgz: the device tool brings back
# at most 8 files.
#
# Before sourcing, a suite sets `suite` (its name); LIMIT_S (seconds, default 560) is the time
# the suite plans its steps in (a device call has 10 minutes).
set -uo pipefail
: "${suite:?set suite=NAME before sourcing scripts/gpu/lib/common.sh}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$root" || exit 1

t0=$(date +%s)
limit=${LIMIT_S:-560}
# Seconds left of LIMIT_S.
left() { echo $((limit - ($(date +%s) - t0))); }

out="${OUT:-$root/gpu-out}"
logs="/tmp/tessera-$suite"
rm -rf "$logs"
mkdir -p "$out" "$logs"
log="$logs/$suite.log"
: > "$log"
say() { echo "$*" | tee -a "$log"; }
pack_logs() { tar czf "$out/$suite-logs.tgz" -C "$logs" . 2> /dev/null || true; }

build_dir=/tmp/tessera-build
export TESSERA_NATIVE_BUILD_DIR="$build_dir/Release"
runner=.gpu/native-dist/testing/run-conformance.js

# The GPU host has no Node: prepare.sh carries one.
if ! command -v node > /dev/null 2>&1; then
  if [ ! -x /tmp/node ]; then
    [ -f .gpu/node.xz ] || { echo "no node and no .gpu/node.xz: run scripts/gpu/prepare.sh here and carry .gpu"; exit 1; }
    xz -d -T8 -c .gpu/node.xz > /tmp/node && chmod +x /tmp/node
  fi
  export PATH=/tmp:$PATH
fi

gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -1)
# The device part of result names: h100, h200, ... ("cpu" without a GPU, as in smoke runs).
gpu=$(echo "${gpu_name:-cpu}" | tr 'A-Z' 'a-z' | grep -oE 'gh200|h100|h200|a100|b200|l40s|cpu' | head -1)
gpu=${gpu:-gpu}
export COMMIT="${COMMIT:-$(cat .gpu/commit 2> /dev/null || git describe --always --dirty 2> /dev/null || echo unknown)}"
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# Kernel-choice switches left in the environment would change what is measured; a suite sets the
# ones it compares on the runs that compare them (native/cuda/runtime/kernel_choice.h lists them).
for v in $(compgen -e); do
  case "$v" in
    TESSERA_CUDA_ARCHS) ;;
    TESSERA_CUDA_*) unset "$v" ;;
  esac
done

# build_native [--nccl]: the addon with CUDA into $build_dir (cuBLASLt where found), for
# $TESSERA_CUDA_ARCHS (the CMake default, 90a;80, when unset). Without --nccl the NCCL add-on is
# left out, so a measurement is of the addon alone.
# shellcheck disable=SC2120 # the one argument is optional
build_native() {
  if [ "${1:-}" = --nccl ]; then unset TESSERA_NO_NCCL; else export TESSERA_NO_NCCL=1; fi
  build_native_at packages/native "$build_dir"
}

# build_native_at SOURCE BUILD: the addon of the CMake project in SOURCE (a packages/native folder)
# into BUILD, as build_native does. Log: $logs/build.log ($logs/build-<BUILD's name>.log for
# another folder than $build_dir).
build_native_at() {
  local src=$1 dir=$2 start rc blog
  blog="$logs/build.log"
  [ "$dir" = "$build_dir" ] || blog="$logs/build-$(basename "$dir").log"
  start=$(date +%s)
  say "== build $src (CUDA archs ${TESSERA_CUDA_ARCHS:-default})"
  cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_JS_INC="$root/.gpu/node-api-headers/include" \
    -DNODE_ADDON_API_DIR="$root/.gpu/node-addon-api" > "$blog" 2>&1 &&
    cmake --build "$dir" -j "$(nproc)" >> "$blog" 2>&1
  rc=$?
  say "build: rc=$rc in $(($(date +%s) - start))s"
  grep -E "tessera:|error" "$blog" | head -40 | tee -a "$log"
  return $rc
}

# res_usage REGEX: registers, stack and shared memory of the built kernels whose names match.
res_usage() {
  cuobjdump -res-usage "$TESSERA_NATIVE_BUILD_DIR/libtessera_cuda.so" 2>&1 | grep -A1 -E "$1" | grep -vE "^--" \
    > "$logs/res-usage.txt"
  sed -E "s/Function _ZN7tessera[^ ]*($1)I?([^ ]*):/\1 \2:/" "$logs/res-usage.txt" | paste - - | cut -c1-160 | tee -a "$log"
}

# conformance NAME FILTER [VAR=VALUE...]: the conformance cases whose names contain FILTER (every
# case when empty) on cuda:0 against the CPU reference, under the given environment.
# $logs/conf-NAME.{json,log,err}; returns the runner's status.
conformance() {
  local name=$1 filter=$2 rc
  shift 2
  env "$@" timeout 150 node "$runner" --device cuda --filter "$filter" --commit "$COMMIT" \
    --out "$logs/conf-$name.json" > "$logs/conf-$name.log" 2> "$logs/conf-$name.err"
  rc=$?
  say "conformance [$name]${*:+ ($*)}: rc=$rc $(tail -1 "$logs/conf-$name.log")"
  grep -E "^FAIL" "$logs/conf-$name.log" | head -12 | tee -a "$log"
  return $rc
}

# sanitize TOOL SECONDS FILTER NAME [VAR=VALUE...]: compute-sanitizer TOOL over the CUDA
# conformance cases matching FILTER, stopped after SECONDS. $logs/sanitizer-TOOL-NAME.{json,log}.
sanitize() {
  local tool=$1 secs=$2 filter=$3 name=$4 rc
  shift 4
  if [ "$secs" -lt 20 ]; then
    say "sanitizer $tool [$name]: skipped (${secs}s left)"
    return 0
  fi
  env "$@" timeout "$secs" compute-sanitizer --tool "$tool" --print-limit 20 \
    node "$runner" --device cuda --sanitizer --filter "$filter" --commit "$COMMIT" \
    --out "$logs/sanitizer-$tool-$name.json" > "$logs/sanitizer-$tool-$name.log" 2>&1
  rc=$?
  say "sanitizer $tool [$name]: rc=$rc ($(left)s left)"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race|passed" "$logs/sanitizer-$tool-$name.log" | tail -6 | tee -a "$log"
  return $rc
}

# stage_js FILE...: copies benchmark scripts into .gpu/, whose node_modules holds @tessera/core
# and @tessera/native (ES modules resolve packages from the importing file's folder, not NODE_PATH).
# The modules they share (benchmarks/lib/) go to .gpu/lib/: a staged script sits one folder
# higher than in the tree (.gpu/x.mjs for benchmarks/gpu/x.mjs), so its "../lib/" imports
# become "./lib/" in the copy.
stage_js() {
  local f
  mkdir -p .gpu/lib
  cp benchmarks/lib/*.mjs .gpu/lib/
  for f in "$@"; do sed 's#from "\.\./lib/#from "./lib/#' "$f" > ".gpu/$(basename "$f")"; done
}

# results CMD ARGS...: scripts/gpu/lib/results.mjs (stamping and merging result files).
results() { node scripts/gpu/lib/results.mjs "$@"; }
