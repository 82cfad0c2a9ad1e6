#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): does compute-sanitizer racecheck stop in the Hopper attention kernel
# (attention_sm90.cuh) when it runs after another sanitizer process, and does a larger
# producer register budget change that? In membound.sh's calls racecheck on the wgmma kernel
# hung or hit an illegal address in attention/1-token-D64 after memcheck had run, and passed
# in a fresh process. For the budgets 24 (the kernel's) and 40 registers (kAttnProducerRegs,
# rebuilt here): memcheck over the attention cases, then racecheck over attention/1-token
# three times, each with its own timeout. The source is restored afterwards.
# LIMIT_S (default 560).
logname=attn-racecheck-logs
source "$(dirname "$0")/lib/gpu-bench.sh"
unset TESSERA_CUDA_ATTN
src=native/cuda/attention/attention_sm90.cuh
cp "$src" /tmp/attention_sm90.cuh.orig
trap 'cp /tmp/attention_sm90.cuh.orig "$src"' EXIT

sequence() {  # budget
  SAN_NAME=p$1-memcheck san memcheck 60 attention
  for i in 1 2 3; do SAN_NAME=p$1-racecheck-$i san racecheck 40 attention/1-token; done
}

build "attn_wgmma_kernel"
sequence 24
sed -i 's/constexpr int kAttnProducerRegs = 24;/constexpr int kAttnProducerRegs = 40;/; /static_assert(Regs<2>::kConsumer == 240/d' "$src"
grep -n "kAttnProducerRegs =" "$src"
build "attn_wgmma_kernel"
sequence 40
echo "total $(($(date +%s) - t0))s"
