#!/usr/bin/env bash
# a14b-bench: Wan2.2 T2V-A14B's two experts on one GPU with random weights (benchmarks/gpu/a14b.mjs):
# each expert's step at 832x480x81 with both guidance branches (eager and as a CUDA graph), the
# expert swap through page-locked host memory, and peak memory; then, while LIMIT_S allows, a whole
# 4-step generate() that crosses the boundary (umT5-XXL and the VAE too, random weights).
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600):
#   bash scripts/gpu/a14b-bench.sh [steps|generate|both]      (default both, ~6 min)
# $OUT: a14b-<gpu>.json (the steps part), a14b-generate-<gpu>.json, a14b-bench-logs.tgz.
# Env passed through to the script: STEPS, W, H, F, GRAPH=0, RESIDENT=1 (see a14b.mjs).
part=${1:-both}
case "$part" in steps | generate | both) ;; *) echo "a14b-bench.sh: use steps, generate or both"; exit 2 ;; esac
suite=a14b-bench
LIMIT_S=${LIMIT_S:-560}
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
build_native || { pack_logs; exit 1; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,memory.used --format=csv 2>&1 | tee -a "$log"
stage_js benchmarks/gpu/a14b.mjs
raw="$logs/raw"
mkdir -p "$raw"

run_part() {
  local name=$1 secs=$2 file=$3
  say "== a14b $name ($(left)s left)"
  OUT="$raw" PART=$name timeout "$secs" node .gpu/a14b.mjs > "$logs/a14b-$name.log" 2>&1
  say "a14b $name: rc=$?"
  tail -40 "$logs/a14b-$name.log" | tee -a "$log"
  [ -f "$raw/a14b.json" ] && mv "$raw/a14b.json" "$out/$file"
}

if [ "$part" != generate ]; then run_part steps $(($(left) - 20)) "a14b-$gpu.json"; fi
if [ "$part" != steps ]; then
  if [ "$(left)" -gt 150 ]; then run_part generate $(($(left) - 10)) "a14b-generate-$gpu.json"
  else say "a14b generate: skipped ($(left)s left; run the generate part alone)"; fi
fi
pack_logs
