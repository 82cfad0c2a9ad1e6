#!/usr/bin/env bash
# wan14b-bench: issue 17's Wan2.1 rows of the speed table, random weights, one GPU.
#   1. the Wan2.1-T2V-14B DiT step at 832x480x81, both guidance branches, bf16, eager and as a
#      CUDA graph, with peak memory (benchmarks/e2e/ours.mjs --part dit --wan14b);
#   2. a 4-step guidance-1 generation (1000/750/500/250, shift 5) of Wan2.1-1.3B with a rank-32
#      lightx2v-named LoRA merged against none (benchmarks/gpu/lora-step.mjs): the step must be
#      within 1%;
#   3. while LIMIT_S allows, PyTorch eager on the 14B step (benchmarks/e2e/torch_e2e.py --wan14b).
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600). The A14B and TI2V rows have their own suites (a14b-bench.sh, ti2v-bench.sh).
# $OUT: wan14b-<gpu>.json, wan14b-bench-logs.tgz.
suite=wan14b-bench
LIMIT_S=${LIMIT_S:-560}
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
build_native || { pack_logs; exit 1; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,memory.used --format=csv 2>&1 | tee -a "$log"
stage_js benchmarks/e2e/ours.mjs benchmarks/gpu/lora-step.mjs
raw="$logs/raw"
mkdir -p "$raw"

say "== ours 14B DiT step ($(left)s left)"
timeout 240 node .gpu/ours.mjs --part dit --wan14b --device cuda --out "$raw/ours-14b.json" > "$logs/ours-14b.log" 2>&1
say "ours 14B: rc=$?"
tail -5 "$logs/ours-14b.log" | tee -a "$log"

say "== LoRA step ($(left)s left)"
timeout 200 node .gpu/lora-step.mjs --device cuda --out "$raw/lora-step.json" > "$logs/lora-step.log" 2>&1
say "lora step: rc=$?"
tail -5 "$logs/lora-step.log" | tee -a "$log"

b=$(($(left) - 15))
if [ $b -gt 60 ]; then
  say "== PyTorch eager 14B DiT step (limit ${b}s)"
  PYTHONUNBUFFERED=1 timeout "$b" python3 benchmarks/e2e/torch_e2e.py --part dit --wan14b --device cuda \
    --out "$raw/torch-14b.json" > "$logs/torch-14b.log" 2>&1
  say "torch 14B: rc=$?"
  tail -5 "$logs/torch-14b.log" | tee -a "$log"
else
  say "PyTorch 14B: skipped (${b}s left)"
fi

results merge "$out/wan14b-$gpu.json" date="$(now)" device="$gpu_name" commit="$COMMIT" \
  command="bash scripts/gpu/wan14b-bench.sh" \
  what="Wan2.1-T2V-14B DiT step (batch 2, 832x480x81, bf16; eager and CUDA graph; peak memory) beside PyTorch eager; Wan2.1-1.3B 4-step guidance-1 step with a rank-32 LoRA merged vs none" \
  --part ours14b="$raw/ours-14b.json" --part loraStep="$raw/lora-step.json" --part torch14b="$raw/torch-14b.json"
pack_logs
