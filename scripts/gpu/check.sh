#!/usr/bin/env bash
# check: is the CUDA build right? ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here
# (device tool: carry [".gpu"], timeout_s 600). Builds the addon with CUDA (cuBLASLt where found),
# runs the op conformance suite on every backend (CPU, and cuda:0 in f32/bf16/f16 against the CPU
# reference), the runtime checks, the golden-tensor checks of the models in bf16 and f32, then
# compute-sanitizer memcheck and racecheck over the CUDA cases.
#   bash scripts/gpu/check.sh [--build-only | --no-sanitizer | --sanitizer-only] [--filter SUBSTR]
# A device call has 10 minutes: the checks and the two sanitizers take about that together, so run
# `--no-sanitizer` and `--sanitizer-only` as two calls. --filter keeps the conformance cases whose
# names contain SUBSTR (e.g. attention, conv, layer_norm); the result names then end in -SUBSTR.
# $OUT: conformance-<gpu>.json, runtime-<gpu>.json, golden-<gpu>-bf16.json, golden-<gpu>-f32.json,
# sanitizer-<gpu>.json (the names of benchmarks/results/), check-logs.tgz.
# SANITIZER_TIMEOUT (seconds per tool, default 270).
suite=check
LIMIT_S=${LIMIT_S:-590}
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

checks=1
sanitizers=1
filter=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) checks=0 sanitizers=0 ;;
    --no-sanitizer) sanitizers=0 ;;
    --sanitizer-only) checks=0 ;;
    --filter) filter="${2:?--filter takes a case-name substring}"; shift ;;
    *) echo "check.sh: unknown option '$1' (see the comment at the top of scripts/gpu/check.sh)"; exit 2 ;;
  esac
  shift
done
tag="$gpu${filter:+-$(echo "$filter" | tr -c 'A-Za-z0-9_\n' '-')}"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$logs/gpu.txt"
build_native || { pack_logs; exit 1; }
[ $checks -eq 1 ] || [ $sanitizers -eq 1 ] || { pack_logs; exit 0; }

status=0
if [ $checks -eq 1 ]; then
  node "$runner" --out "$out/conformance-$tag.json" --commit "$COMMIT" ${filter:+--filter "$filter"} \
    > "$logs/conformance.log" 2>&1 || status=1
  say "conformance: $(tail -1 "$logs/conformance.log")"
  grep -E "^FAIL" "$logs/conformance.log" | head -40 | tee -a "$log"

  node .gpu/native-dist/testing/runtime-check.js --out "$out/runtime-$gpu.json" > "$logs/runtime.log" 2>&1 || status=1
  results stamp "$out/runtime-$gpu.json" device="$gpu_name" commit="$COMMIT"
  say "runtime checks: $(tail -1 "$logs/runtime.log")"
  grep -E "^FAIL" "$logs/runtime.log" | tee -a "$log"

  export TESSERA_GOLDEN_DIR="$root/packages/core/test-fixtures/golden"
  for dt in bf16 f32; do
    node .gpu/node_modules/@tessera/core/dist/golden/run.js --device cuda --dtype $dt \
      --out "$out/golden-$gpu-$dt.json" > "$logs/golden-$dt.log" 2>&1 || status=1
    say "golden $dt: $(tail -1 "$logs/golden-$dt.log")"
  done
  pack_logs
fi

if [ $sanitizers -eq 1 ]; then
  for tool in memcheck racecheck; do
    sanitize $tool "${SANITIZER_TIMEOUT:-270}" "$filter" all || status=1
  done
  results sanitizer "$out/sanitizer-$tag.json" date="$(now)" device="$gpu_name" commit="$COMMIT" \
    suite="run-conformance --device cuda --sanitizer${filter:+ --filter $filter} (the CUDA conformance cases, every dtype)" \
    command="bash scripts/gpu/check.sh --sanitizer-only${filter:+ --filter $filter}" \
    --log memcheck="$logs/sanitizer-memcheck-all.log" --log racecheck="$logs/sanitizer-racecheck-all.log"
fi
pack_logs
exit $status
