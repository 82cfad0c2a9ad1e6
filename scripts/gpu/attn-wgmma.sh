#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"]):
# the Hopper (wgmma) attention kernel, checked and timed in one call (~4-5 minutes):
#   1. build for sm_90a (scripts/gpu/check.sh --build-only), the kernels' registers;
#   2. the conformance suite's attention cases (cuda:0 against the CPU reference) with each
#      wgmma schedule / warpgroup count, a kernel trace, and the mma.sync kernel
#      (TESSERA_CUDA_ATTN=mma); each run has its own timeout;
#   3. the kernel benchmark's attention cases (benchmarks/kernels: cases.py + batch-2 copies,
#      torch_bench.py, bench.mjs): PyTorch SDPA, ours with the wgmma kernel, ours with the
#      mma.sync kernel, the other wgmma schedules on full attention; attn_wgmma.py prints the
#      table and writes $OUT/attention-wgmma.json.
# ATTN_LIMIT_S (default 310): the whole run's time; the steps get shares of what is left.
# $OUT gets attention-wgmma.json and attn-logs.tgz (every log and JSON; refreshed after each
# step, since the device tool returns at most 8 files). The steps' helpers are
# scripts/gpu/lib/gpu-bench.sh's.
logname=attn-logs
LIMIT_S=${ATTN_LIMIT_S:-310}
summary_py=benchmarks/kernels/attn_wgmma.py
source "$(dirname "$0")/lib/gpu-bench.sh"
# The wgmma kernel is asked for explicitly (whatever its default); "mma" below turns it off.
export TESSERA_CUDA_ATTN=wgmma
make_manifest() { python3 benchmarks/kernels/attn_wgmma.py manifest --in "$1" --out "$2"; }

build "attn_wgmma_kernel"
echo "== conformance, each schedule, then the mma.sync kernel ($(left)s left)"
conf basic attention TESSERA_CUDA_ATTN_WGMMA=basic
conf default attention TESSERA_CUDA_ATTN_TRACE=1
sort "$out/conf-default.err" | sed 's/grid=.*//' | uniq -c
conf overlap attention TESSERA_CUDA_ATTN_WGMMA=overlap
conf wg2 attention TESSERA_CUDA_ATTN_WGMMA_WG=2
conf wg2-basic attention TESSERA_CUDA_ATTN_WGMMA_WG=2 TESSERA_CUDA_ATTN_WGMMA=basic
conf mma attention TESSERA_CUDA_ATTN=mma
pack

echo "== benchmark ($(left)s left)"
bench_torch 35
ours wgmma 40 --
ours mma 55 -- TESSERA_CUDA_ATTN=mma
ours overlap 30 --only attn.full.d -- TESSERA_CUDA_ATTN_WGMMA=overlap
ours basic 40 --only attn.full.d -- TESSERA_CUDA_ATTN_WGMMA=basic
ours wg2 60 --only attn.full.d64 -- TESSERA_CUDA_ATTN_WGMMA_WG=2
summary attention-wgmma.json wgmma mma overlap basic wg2
pack
echo "total $(($(date +%s) - t0))s"
