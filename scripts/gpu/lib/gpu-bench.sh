# Sourced by the kernel scripts that run ON THE GPU HOST (conv-igemm.sh, conv-wgmma.sh, conv-ws.sh,
# membound.sh): the build, conformance, sanitizer and benchmark steps they share. The sourcing
# script sets `logname` (its tarball in $OUT: $logname.tgz) and may set LIMIT_S (default 560)
# before sourcing, and may define make_manifest (below) before calling bench_torch.
set -uo pipefail
t0=$(date +%s)
limit=${LIMIT_S:-560}
left() { echo $((limit - ($(date +%s) - t0))); }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$root"
final="${OUT:-$root/gpu-out}"
out=/tmp/$logname
rm -rf "$out" && mkdir -p "$out" "$final"
pack() { tar czf "$final/$logname.tgz" -C "$out" . 2>/dev/null; }
export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}" TESSERA_NO_NCCL=1
export COMMIT="$(cat .gpu/commit 2>/dev/null || git describe --always --dirty 2>/dev/null || echo unknown)"
unset TESSERA_CUDA_CONV TESSERA_CUDA_CONV_TILE TESSERA_CUDA_CONV_TRACE TESSERA_CUDA_CONV_WGMMA \
  TESSERA_CUDA_CONV_WS_TMA
runner=.gpu/native-dist/testing/run-conformance.js
work=/tmp/kbench

# Builds for sm_90a and lists the registers / stack of the kernels whose names match $1.
build() {
  echo "== build (sm_90a)"
  OUT="$out" timeout 200 bash scripts/gpu/check.sh --build-only | tail -3
  export PATH=/tmp:$PATH TESSERA_NATIVE_BUILD_DIR=/tmp/tessera-build/Release
  lib="$TESSERA_NATIVE_BUILD_DIR/libtessera_cuda.so"
  [ -f "$lib" ] || { echo "no build"; pack; exit 1; }
  cuobjdump -res-usage "$lib" 2>&1 | grep -A1 -E "$1" | grep -vE "^--" > "$out/res-usage.txt"
  sed -E "s/Function _ZN7tessera[^ ]*($1)I?([^ ]*):/\1 \2:/" "$out/res-usage.txt" | paste - - | cut -c1-160
  pack
}

conf() {  # name, filter, env...
  local name=$1 filter=$2
  shift 2
  env "$@" timeout 150 node "$runner" --device cuda --filter "$filter" --commit "$COMMIT" \
    --out "$out/conf-$name.json" > "$out/conf-$name.log" 2> "$out/conf-$name.err"
  echo "conformance [$name]: rc=$? $(tail -1 "$out/conf-$name.log")"
  grep -E "^FAIL" "$out/conf-$name.log" | head -12
}

# Which kernel and tile each traced call of conformance run $1 took, counted.
trace_counts() {
  sed -E 's/ M=[0-9]+ N=.*//; s/^\[tessera conv\] //; s/ \(.*//' "$out/conf-$1.err" | sort | uniq -c
}

# tool, seconds, case filter, env...: $out/sanitizer-$tool-$name.{json,log}, name = $SAN_NAME or
# the filter.
san() {
  local tool=$1 secs=$2 filter=$3
  shift 3
  local name=${SAN_NAME:-$filter}
  [ "$secs" -lt 20 ] && { echo "sanitizer $tool [$name]: skipped (time)"; return; }
  env "$@" timeout "$secs" compute-sanitizer --tool "$tool" --print-limit 20 \
    node "$runner" --device cuda --sanitizer --filter "$filter" --out "$out/sanitizer-$tool-$name.json" \
    > "$out/sanitizer-$tool-$name.log" 2>&1
  echo "sanitizer $tool [$name]: rc=$? ($(left)s left)"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race|passed" "$out/sanitizer-$tool-$name.log" | tail -6
  pack
}

# The benchmark's cases (all of cases.py's, $work/all.json) that this script times, and PyTorch's
# times for them, in $1 % of the time left: make_manifest ALL OUT when the sourcing script defines
# it, else the conv cases (cases.py's + conv_igemm.py's others).
bench_torch() {
  rm -rf "$work" && mkdir -p "$work"
  python3 benchmarks/kernels/cases.py --out "$work/all.json" > /dev/null
  if declare -F make_manifest > /dev/null; then
    make_manifest "$work/all.json" "$work/manifest.json"
  else
    python3 benchmarks/kernels/conv_igemm.py manifest --in "$work/all.json" --out "$work/manifest.json"
  fi
  cp benchmarks/kernels/bench.mjs .gpu/kernels-bench.mjs
  local b=$(($(left) * $1 / 100))
  PYTHONUNBUFFERED=1 timeout $((b + 30)) python3 benchmarks/kernels/torch_bench.py --manifest "$work/manifest.json" \
    --out "$out/torch.json" --device cuda --budget $b > "$out/torch.log" 2>&1
  echo "torch: rc=$? ($(left)s left)"
  pack
}

# Our side of the manifest's cases: tag, share of what is left (%), then either env... or
# bench.mjs args... -- env...
ours() {
  local tag=$1 share=$2
  shift 2
  local args=()
  if printf '%s\n' "$@" | grep -qx -- "--"; then
    while [ "$1" != "--" ]; do args+=("$1"); shift; done
    shift
  fi
  local b=$(($(left) * share / 100))
  [ $b -lt 5 ] && { echo "ours [$tag]: skipped (time)"; return; }
  env "$@" timeout $((b + 25)) node .gpu/kernels-bench.mjs --manifest "$work/manifest.json" --out "$out/ours-$tag.json" \
    --device cuda --tag "$tag" --budget $b "${args[@]}" > "$out/ours-$tag.log" 2> "$out/ours-$tag.err"
  echo "ours [$tag]: rc=$? ($(left)s left) $(grep -c FAIL "$out/ours-$tag.log") FAIL lines"
  pack
}

# A summary of the tags given (TAG ...) into $out/$1 and $OUT: conv_igemm.py's, or the script
# named by $summary_py (attn_wgmma.py's is the generic one).
summary() {
  local json=$1
  shift
  local args=()
  for t in "$@"; do args+=(--ours "$t=$out/ours-$t.json"); done
  python3 "${summary_py:-benchmarks/kernels/conv_igemm.py}" summary --manifest "$work/manifest.json" --torch "$out/torch.json" \
    "${args[@]}" --json "$out/$json" \
    --meta commit="$COMMIT" --meta device="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" \
    --meta date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  cp "$out/$json" "$final/" 2>/dev/null
}
