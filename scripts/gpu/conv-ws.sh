#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the checks of the warp-specialised Hopper conv (native/cuda/conv/
# conv3d_wgmma_ws.cu, the default on sm_90a above K = 256 for tiles >= 128 wide) and of the
# direct kernel for narrow outputs (conv3d_narrow.cu: Cout <= 8), then their timings against
# cuDNN:
#   1. build for sm_90a, registers of the conv kernels;
#   2. conformance against the CPU reference: every op on the default paths (with a trace of
#      the conv kernel each call took); the conv cases with ws forced on the 128x128 / 128x96 /
#      128x64 tiles, with the weight by cp.async instead of TMA, and on the all-threads kernel
#      (s4d2);
#   3. compute-sanitizer memcheck and racecheck over the conv cases (default paths);
#   4. the conv benchmark (cuDNN F.conv3d; ours: default, s4d2), summary in
#      $OUT/conv-ws.json.
# LIMIT_S (default 560); CONV_WS_BENCH_ONLY=1 skips steps 2 and 3 (a re-timing after a change
# of kernel choice only). The earlier calls of this script while the kernels were built compared
# other variants (one producer warpgroup, CTA pairs sharing the weight by multicast, a
# channel-blocks-outer k order, a prefetching LayerNorm): conv-ws-h100-2026-11-25.md.
logname=conv-ws-logs
source "$(dirname "$0")/lib/gpu-bench.sh"

build "conv_wgmma_ws_kernel|conv_wgmma_kernel|conv_narrow_kernel"
if [ "${CONV_WS_BENCH_ONLY:-0}" != 1 ]; then
echo "== conformance ($(left)s left)"
conf all "" TESSERA_CUDA_CONV_TRACE=1
trace_counts all
for t in 128x128 128x96 128x64; do
  conf ws-$t conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_TILE=$t
done
conf ws-cpasync conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_TMA=0
conf s4d2 conv TESSERA_CUDA_CONV_WGMMA=s4d2
pack
echo "== compute-sanitizer ($(left)s left)"
san memcheck 60 conv
san racecheck 90 conv
fi

echo "== benchmark ($(left)s left)"
bench_torch 30
ours default 30
ours s4d2 45 TESSERA_CUDA_CONV_WGMMA=s4d2
summary conv-ws.json default s4d2
echo "total $(($(date +%s) - t0))s"
