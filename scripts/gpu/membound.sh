#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the memory-bound kernels of issue #3's missed targets, checked and timed in
# one call - temporal attention (the mma.sync kernel with small groups packed to a tile) and
# the fused LayerNorm / RMSNorm + modulate (and the gated residual beside it):
#   1. build for sm_90a, registers of those kernels;
#   2. conformance against the CPU reference: every op on the default paths, then the attention
#      cases with two key buffers and with heads slowest (the layout before single-buffer /
#      heads-fastest), and the norm cases with the row held as floats;
#   3. compute-sanitizer memcheck and racecheck over the attention and norm cases;
#   4. the benchmark's temporal-attention, LayerNorm and gated-residual cases: PyTorch, ours by
#      default and with each of the switches of step 2; summary in $OUT/membound.json.
# LIMIT_S (default 560).
logname=membound-logs
summary_py=benchmarks/kernels/attn_wgmma.py
source "$(dirname "$0")/lib/gpu-bench.sh"
unset TESSERA_CUDA_ATTN_KV_BUFS TESSERA_CUDA_ATTN_HEADS_FAST TESSERA_CUDA_NORM_HOLD

make_manifest() {
  python3 - "$1" "$2" << 'EOF'
import json, re, sys
m = json.load(open(sys.argv[1]))
m["cases"] = [c for c in m["cases"] if re.match(r"attn\.temporal|layernorm|gated_residual", c["name"])]
json.dump(m, open(sys.argv[2], "w"), indent=1)
print(len(m["cases"]), "cases")
EOF
}

build "attn_tc_kernel|norm_warp_vec_kernel|gated_residual"
echo "== conformance ($(left)s left)"
conf all ""
conf attn-2bufs attention TESSERA_CUDA_ATTN_KV_BUFS=2
conf attn-heads-slow attention TESSERA_CUDA_ATTN_HEADS_FAST=0
conf norm-float norm TESSERA_CUDA_NORM_HOLD=float
pack
echo "== compute-sanitizer ($(left)s left)"
san memcheck 70 attention
san racecheck 80 attention
san memcheck 30 norm
san racecheck 30 norm

echo "== benchmark ($(left)s left)"
bench_torch 25
ours default 20
ours old 25 TESSERA_CUDA_ATTN_KV_BUFS=2 TESSERA_CUDA_ATTN_HEADS_FAST=0 TESSERA_CUDA_NORM_HOLD=float
ours 2bufs 33 TESSERA_CUDA_ATTN_KV_BUFS=2
ours heads-slow 50 TESSERA_CUDA_ATTN_HEADS_FAST=0
summary membound.json default old 2bufs heads-slow
echo "total $(($(date +%s) - t0))s"
