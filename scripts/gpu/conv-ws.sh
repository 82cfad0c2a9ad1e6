#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the warp-specialised Hopper conv (native/cuda/conv/conv3d_wgmma_ws.cu, the
# default on sm_90a above K = 256) against the all-threads wgmma kernel it replaces (s4d2) and
# cuDNN, in one call:
#   1. build for sm_90a, registers of the conv kernels;
#   2. conformance (conv cases, f32/bf16/f16, against the CPU reference): the default path with
#      a trace of the kernel each call took; ws forced with the 128x128 / 128x96 / 128x64 tiles;
#      ws with the blocked k order (channel blocks outer), with and without the L1 gather; ws
#      with the weight by cp.async; s4d2; patch_embed3d;
#   3. compute-sanitizer memcheck (ws forced; then the blocked order through L1);
#   4. the conv benchmark (cuDNN F.conv3d; ours: default, blocked, blocked + L1, s4d2), summary
#      in $OUT/conv-ws.json;
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
conf ws-blocked conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_KORDER=blocked TESSERA_CUDA_CONV_TRACE=1
grep -E "ws grid" "$out/conf-ws-blocked.err" | sed -E 's/.*ws grid [0-9]+ \(tiles [0-9]+, //' | sort | uniq -c
conf ws-blocked-l1 conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_KORDER=blocked TESSERA_CUDA_CONV_WS_L1=1
conf ws-blocked-cpasync conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_KORDER=blocked TESSERA_CUDA_CONV_WS_TMA=0
conf ws-cpasync conv TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_TMA=0
conf s4d2 conv TESSERA_CUDA_CONV_WGMMA=s4d2
conf patch patch_embed3d
pack
echo "== compute-sanitizer memcheck ($(left)s left)"
san memcheck 60 TESSERA_CUDA_CONV_WGMMA=ws
mv "$out/sanitizer-memcheck.log" "$out/sanitizer-memcheck-ws.log"
san memcheck 60 TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_KORDER=blocked TESSERA_CUDA_CONV_WS_L1=1

echo "== benchmark ($(left)s left)"
bench_torch 25
ours default 15
ours blocked 20 TESSERA_CUDA_CONV_WS_KORDER=blocked
ours blocked-l1 25 TESSERA_CUDA_CONV_WS_KORDER=blocked TESSERA_CUDA_CONV_WS_L1=1
ours l1 33 TESSERA_CUDA_CONV_WS_L1=1
ours s4d2 50 TESSERA_CUDA_CONV_WGMMA=s4d2
summary conv-ws.json default blocked blocked-l1 l1 s4d2
echo "== compute-sanitizer racecheck ($(left)s left)"
san racecheck $(($(left) - 10)) TESSERA_CUDA_CONV_WGMMA=ws TESSERA_CUDA_CONV_WS_KORDER=blocked
echo "total $(($(date +%s) - t0))s"
