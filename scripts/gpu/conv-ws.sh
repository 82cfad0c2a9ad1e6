#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the warp-specialised Hopper conv (native/cuda/conv/conv3d_wgmma_ws.cu, the
# default on sm_90a above K = 256) against the all-threads wgmma kernel it replaces (s4d2) and
# cuDNN, in one call:
#   1. build for sm_90a, registers of the conv kernels;
#   2. conformance (conv cases, f32/bf16/f16, against the CPU reference): the default path with
#      a trace of the kernel each call took (ws: CTA pairs sharing the weight by TMA multicast);
#      ws forced with the 128x128 / 128x96 / 128x64 tiles; ws without the pairs (cluster 1);
#      ws with the weight by cp.async; s4d2; patch_embed3d;
#   3. compute-sanitizer memcheck (ws forced, pairs; then cluster 1);
#   4. the conv benchmark (cuDNN F.conv3d; ours: default, ws forced, ws cluster 1, s4d2),
#      summary in $OUT/conv-ws.json;
#   5. racecheck in what time is left.
logname=conv-ws-logs
source "$(dirname "$0")/lib/conv-bench.sh"

build "conv_wgmma_ws_kernel|conv_wgmma_kernel"
echo "== conformance ($(left)s left)"
conf ws conv TESSERA_CUDA_CONV_TRACE=1
trace_counts ws
for t in 128x128 128x96 128x64; do
  conf ws-$t conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_TILE=$t
done
conf ws-cl1 conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_CLUSTER=1
conf ws-cpasync conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_TMA=0
conf s4d2 conv TESSERA_CUDA_CONV_WGMMA=s4d2
conf patch patch_embed3d
pack
echo "== compute-sanitizer memcheck ($(left)s left)"
san memcheck 70 TESSERA_CUDA_CONV_WGMMA=ws
mv "$out/sanitizer-memcheck.log" "$out/sanitizer-memcheck-pairs.log"
san memcheck 60 TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_CLUSTER=1

echo "== benchmark ($(left)s left)"
bench_torch 25
ours default 15 TESSERA_CUDA_CONV_TRACE=1
grep -E "ws grid" "$out/ours-default.err" | sort | uniq -c | head
ours ws-cl1 20 TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_CLUSTER=1 TESSERA_CUDA_CONV_TRACE=1
grep -E "ws grid" "$out/ours-ws-cl1.err" | sort | uniq -c | head
ours ws-g66 25 TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_CLUSTERS=66
ours ws-g60 33 TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_CLUSTERS=60
ours s4d2 50 TESSERA_CUDA_CONV_WGMMA=s4d2
summary conv-ws.json default ws-cl1 ws-g66 ws-g60 s4d2
echo "== compute-sanitizer racecheck ($(left)s left)"
san racecheck $(($(left) - 10)) TESSERA_CUDA_CONV_WGMMA=ws
echo "total $(($(date +%s) - t0))s"
