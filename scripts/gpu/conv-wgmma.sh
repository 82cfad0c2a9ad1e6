#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the Hopper wgmma conv3d (native/cuda/conv/conv3d_wgmma.cu, the default on
# sm_90a where it applies; TESSERA_CUDA_CONV=igemm runs the mma.sync kernel instead), checked
# and timed in one call:
#   1. build for sm_90a; the kernels' registers / stack as built (cuobjdump -res-usage);
#   2. the conformance suite's conv and patch_embed3d cases on cuda:0 against the CPU reference
#      (f32, bf16, f16) on the default path with a trace of the kernel each call took, then with
#      the other pipeline (s3d2) and the 128x128 / 128x192 tiles forced, and with
#      TESSERA_CUDA_CONV=igemm as a control;
#   3. compute-sanitizer memcheck over the conv cases (default path);
#   4. the kernel benchmark's conv and patch-embedding cases (benchmarks/kernels: cases.py's
#      Wan-VAE decoder convs + conv_igemm.py's others): PyTorch F.conv3d (cuDNN), ours with
#      wgmma (default tiles, then 128x128 forced), ours with igemm; conv_igemm.py prints the
#      table, $OUT/conv-wgmma.json;
#      then the patch embedding's two cases (timing only) with each kernel;
#   5. compute-sanitizer racecheck (default path) in what time is left.
# LIMIT_S (default 560). $OUT gets conv-wgmma.json and conv-logs.tgz. Since conv-ws.sh, the
# default path above K = 256 is the warp-specialised kernel: TESSERA_CUDA_CONV_WGMMA=s4d2 here
# times the kernel these steps were written for.
logname=conv-logs
source "$(dirname "$0")/lib/gpu-bench.sh"

build "conv_wgmma|conv_igemm"
echo "== conformance ($(left)s left)"
conf wgmma conv TESSERA_CUDA_CONV_TRACE=1
trace_counts wgmma
conf wgmma-patch patch_embed3d TESSERA_CUDA_CONV_TRACE=1
trace_counts wgmma-patch
conf wgmma-s3d2 conv TESSERA_CUDA_CONV_WGMMA=s3d2
conf wgmma-128x128 conv TESSERA_CUDA_CONV_TILE=128x128
conf wgmma-128x192 conv TESSERA_CUDA_CONV_TILE=128x192
conf igemm conv TESSERA_CUDA_CONV=igemm
pack
echo "== compute-sanitizer memcheck ($(left)s left)"
san memcheck 90 conv

echo "== benchmark ($(left)s left)"
bench_torch 30
ours wgmma 30
ours wgmma-128x128 40 TESSERA_CUDA_CONV_TILE=128x128
ours igemm 60 TESSERA_CUDA_CONV=igemm
summary conv-wgmma.json wgmma wgmma-128x128 igemm
for v in wgmma igemm; do  # the patch embedding (a conv with kernel = stride), timing only
  e=(); [ $v = igemm ] && e=(TESSERA_CUDA_CONV=igemm)
  env "${e[@]}" timeout 60 node .gpu/kernels-bench.mjs --manifest "$work/all.json" --only patch_embed --device cuda \
    --out "$out/patch-$v.json" 2>&1 | grep -E "^\[ours" | sed "s/^/[$v] /"
done
pack

echo "== compute-sanitizer racecheck ($(left)s left)"
san racecheck $(($(left) - 10)) conv
echo "total $(($(date +%s) - t0))s"
