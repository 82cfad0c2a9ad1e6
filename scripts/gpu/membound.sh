#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the memory-bound kernels of issue #3's targets, checked and timed in one
# call - temporal attention (the mma.sync kernel, small groups packed to a tile, one key
# buffer when no tile walks more than 64 keys), the fused LayerNorm + modulate and the gated
# residual beside it:
#   1. build for sm_90a, registers of those kernels;
#   2. conformance against the CPU reference: every op on the default paths;
#   3. compute-sanitizer: memcheck over the attention cases; racecheck over them on the mma.sync
#      kernels (TESSERA_CUDA_ATTN=mma: every case, temporal included) and on the default paths
#      (the Hopper wgmma kernel for bf16/f16 full and spatial attention), twice;
#   4. the benchmark's temporal-attention, LayerNorm and gated-residual cases: PyTorch and ours;
#      summary in $OUT/membound.json.
# LIMIT_S (default 560). The first call (at 2406bf5) also timed the heads of a tile in
# neighbouring blocks and a LayerNorm holding its row raw (both removed: no faster).
logname=membound-logs
summary_py=benchmarks/kernels/attn_wgmma.py
source "$(dirname "$0")/lib/gpu-bench.sh"
unset TESSERA_CUDA_ATTN

make_manifest() {
  python3 - "$1" "$2" << 'PY'
import json, re, sys
m = json.load(open(sys.argv[1]))
m["cases"] = [c for c in m["cases"] if re.match(r"attn\.temporal|layernorm|gated_residual", c["name"])]
json.dump(m, open(sys.argv[2], "w"), indent=1)
print(len(m["cases"]), "cases")
PY
}

build "attn_tc_kernel|norm_warp_vec_kernel|gated_residual"
echo "== conformance ($(left)s left)"
conf all ""
pack
echo "== compute-sanitizer ($(left)s left)"
san memcheck 70 attention
SAN_NAME=attention-mma san racecheck 90 attention TESSERA_CUDA_ATTN=mma
SAN_NAME=attention-default-1 san racecheck 70 attention
SAN_NAME=attention-default-2 san racecheck 70 attention

echo "== benchmark ($(left)s left)"
bench_torch 30
ours default 40
summary membound.json default
echo "total $(($(date +%s) - t0))s"
