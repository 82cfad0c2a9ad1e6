#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the mma.sync implicit-GEMM conv3d (native/cuda/conv/conv3d_igemm.cu, the
# sm_80 path; TESSERA_CUDA_CONV=igemm selects it on a Hopper), checked and timed in one call
# (~3 minutes on the H100, 2026-11-25):
#   1. build for sm_90a (scripts/gpu/check.sh --build-only); the kernels' registers / stack /
#      shared memory as built there (cuobjdump -res-usage); the host replay of the kernel's
#      index arithmetic (native/cuda/conv/igemm_host_check.cpp);
#   2. the conformance suite's conv cases (conv3d/*, conv2d/*: f32, bf16, f16 on cuda:0 against
#      the CPU reference) with TESSERA_CUDA_CONV=igemm and a trace of the path each call took,
#      then with each block tile forced (128x128, 128x96, 128x64), and the patch_embed3d cases
#      (the same engine) with igemm;
#   3. compute-sanitizer memcheck over the igemm conv cases (default tile and 128x128);
#   4. the kernel benchmark's conv cases (benchmarks/kernels: cases.py's four Wan-VAE decoder
#      causal 3x3x3 convs + conv_igemm.py's other decoder convs): PyTorch F.conv3d
#      (channels_last_3d and NCDHW, bf16, cuDNN), ours with igemm, igemm with the other tiles
#      on the small-M shape; conv_igemm.py prints
#      the table and writes $OUT/conv-igemm.json;
#   5. compute-sanitizer racecheck over the igemm conv cases with 128x128, in what time is left.
# CONV_LIMIT_S (default 560): the whole run's time; the steps get shares of what is left.
# $OUT gets conv-igemm.json and conv-logs.tgz (every log and JSON; refreshed after each step).
# The steps' helpers are scripts/gpu/lib/gpu-bench.sh's.
logname=conv-logs
LIMIT_S=${CONV_LIMIT_S:-560}
source "$(dirname "$0")/lib/gpu-bench.sh"

build "conv_igemm_kernel|reorder_kn_kernel"
g++ -std=c++17 -O2 -I native/include -I native native/cuda/conv/igemm_host_check.cpp -o /tmp/igemm-check \
  && /tmp/igemm-check > "$out/host-check.log" 2>&1
echo "host replay: rc=$? $(tail -1 "$out/host-check.log")"
pack

echo "== conformance: conv cases with igemm, each tile forced, patch_embed3d, default path ($(left)s left)"
conf igemm conv TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TRACE=1
echo "paths taken (trace; the f32 cases and Cin % 8 != 0 go to the older kernels):"
trace_counts igemm
conf igemm-128x128 conv TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x128
conf igemm-128x96 conv TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x96
conf igemm-128x64 conv TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x64
conf igemm-patch patch_embed3d TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TRACE=1
trace_counts igemm-patch
pack

echo "== compute-sanitizer memcheck ($(left)s left)"
SAN_NAME=default san memcheck 80 conv TESSERA_CUDA_CONV=igemm
SAN_NAME=128x128 san memcheck 70 conv TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x128

echo "== benchmark ($(left)s left)"
bench_torch 35
grep -E "^\[torch\]" "$out/torch.log" | cut -c1-160
ours igemm 40 TESSERA_CUDA_CONV=igemm
# The tile each shape takes by default (3 calls per case: check, estimate, one timed call).
ours trace 30 --reps 1 --warm 0 --target-ms 0.001 -- TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TRACE=1
sed -E 's/^\[tessera conv\] //; s/ K=.*//' "$out/ours-trace.err" | sort | uniq -c
ours igemm-128x128 30 --only "@60x104x1f" -- TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x128
ours igemm-128x64 40 --only ".96to96@" -- TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x64
summary conv-igemm.json igemm igemm-128x128 igemm-128x64
pack

echo "== compute-sanitizer racecheck ($(left)s left)"
SAN_NAME=128x128 san racecheck $(($(left) - 10)) conv TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x128
echo "total $(($(date +%s) - t0))s"
