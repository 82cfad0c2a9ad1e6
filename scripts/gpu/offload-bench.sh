#!/usr/bin/env bash
# offload-bench: Wan2.1-T2V-14B's DiT step at 832x480x81 (both guidance branches, bf16, random
# weights) with the weights resident against weight offload (the blocks in page-locked host memory,
# one block copied in ahead on the copy stream) under a 24 GiB memory cap (benchmarks/gpu/offload.mjs).
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600):
#   bash scripts/gpu/offload-bench.sh                                          (~5 min)
# $OUT: offload-<gpu>.json, offload-bench-logs.tgz. Env passed through: STEPS, W, H, F, CAP, GRAPH=0.
suite=offload-bench
LIMIT_S=${LIMIT_S:-560}
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
build_native || { pack_logs; exit 1; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,memory.used --format=csv 2>&1 | tee -a "$log"
stage_js benchmarks/gpu/offload.mjs
raw="$logs/raw"
mkdir -p "$raw"
say "== offload ($(left)s left)"
OUT="$raw" timeout $(($(left) - 10)) node .gpu/offload.mjs > "$logs/offload.log" 2>&1
say "offload: rc=$?"
tail -40 "$logs/offload.log" | tee -a "$log"
[ -f "$raw/offload.json" ] && mv "$raw/offload.json" "$out/offload-$gpu.json"
pack_logs
