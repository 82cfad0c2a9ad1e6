#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the checks of the warp-specialised Hopper conv (native/cuda/conv/
# conv3d_wgmma_ws.cu, the default on sm_90a above K = 256 for tiles >= 128 wide) and of the
# prefetching LayerNorm kernel (native/cuda/norm/norm.cu), then its timings against cuDNN:
#   1. build for sm_90a, registers of the conv kernels;
#   2. conformance against the CPU reference: every op on the default paths (with a trace of
#      the conv kernel each call took); the conv cases with ws forced on the 128x128 / 128x96 /
#      128x64 tiles, with the weight by cp.async instead of TMA, and on the all-threads kernel
#      (s4d2); the norm cases without the prefetch;
#   3. compute-sanitizer memcheck and racecheck over the conv and norm cases (default paths);
#   4. the conv benchmark (cuDNN F.conv3d; ours: default, s4d2), summary in $OUT/conv-ws.json.
# LIMIT_S (default 560). The earlier calls of this script while the kernel was built compared
# other variants (one producer warpgroup, CTA pairs sharing the weight by multicast, a
# channel-blocks-outer k order): conv-ws-h100-2026-11-25.md.
logname=conv-ws-logs
source "$(dirname "$0")/lib/conv-bench.sh"

build "conv_wgmma_ws_kernel|conv_wgmma_kernel|norm_warp_vec_kernel"
echo "== conformance ($(left)s left)"
conf all "" TESSERA_CUDA_CONV_TRACE=1
trace_counts all
for t in 128x128 128x96 128x64; do
  conf ws-$t conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_TILE=$t
done
conf ws-cpasync conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_TMA=0
conf s4d2 conv TESSERA_CUDA_CONV_WGMMA=s4d2
conf norm-plain norm TESSERA_CUDA_NORM_PREFETCH=0
pack
echo "== compute-sanitizer ($(left)s left)"
san memcheck 60 conv
san memcheck 40 norm
san racecheck 90 conv
san racecheck 40 norm

echo "== benchmark ($(left)s left)"
bench_torch 35
ours default 40
ours s4d2 70 TESSERA_CUDA_CONV_WGMMA=s4d2
summary conv-ws.json default s4d2
echo "total $(($(date +%s) - t0))s"
