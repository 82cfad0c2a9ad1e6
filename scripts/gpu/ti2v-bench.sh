#!/usr/bin/env bash
# ti2v-bench: Wan2.2 TI2V-5B with random weights on one GPU (benchmarks/gpu/ti2v.mjs): the DiT
# step at 1280x704, 121 frames (both guidance branches; one timestep per sample and one per token
# frame, eager and as a CUDA graph), the Wan2.2 VAE decode of that clip (time and peak memory, in
# a fresh process) and a short image-to-video generation; then PyTorch eager on the same shapes
# (benchmarks/e2e/torch_e2e.py --ti2v: tessera_ref's DiT with SDPA, the Wan2.2 VAE decode in bf16)
# in what time is left. ON THE GPU HOST, after
# `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"], timeout_s 600):
#   bash scripts/gpu/ti2v-bench.sh [--smoke]
# --smoke: here, no GPU: the tiny TI2V model on the CPU backend (the addon of packages/native/build).
# $OUT: ti2v-<gpu>.json (the parts' records, PyTorch's under "torch") and ti2v-bench-logs.tgz.
# VAE_DTYPE (default bf16) and STEPS (default 3, the generation's) as ti2v.mjs reads them.
smoke=0
for a in "$@"; do
  case "$a" in
    --smoke) smoke=1 ;;
    *) echo "ti2v-bench.sh: unknown argument '$a'; the only option is --smoke"; exit 2 ;;
  esac
done
suite=ti2v-bench
LIMIT_S=${LIMIT_S:-560}
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

raw="$logs/raw"
mkdir -p "$raw"
if [ $smoke -eq 1 ]; then
  py=/usr/bin/python3
  dev=cpu
  extra=(--tiny)
  VAE_DTYPE=f32 # the CPU backend computes in f32
  export TESSERA_NATIVE_BUILD_DIR="$root/packages/native/build/Release"
  [ -d .gpu/node_modules ] || { echo "run scripts/gpu/prepare.sh first"; exit 1; }
else
  py=python3
  dev=cuda
  extra=()
  export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
  build_native || { pack_logs; exit 1; }
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,memory.used --format=csv 2>&1 | tee -a "$log"
fi
stage_js benchmarks/gpu/ti2v.mjs

# part NAME SECONDS: one part of ti2v.mjs in a fresh process; $raw/NAME.json.
part() {
  local name=$1 secs=$2 b
  b=$(left)
  [ "$b" -lt "$secs" ] && secs=$b
  if [ "$secs" -le 20 ]; then
    echo "{\"part\": \"$name\", \"skipped\": \"no time left in the call (${secs}s)\"}" > "$raw/$name.json"
    say "ti2v $name: skipped (${secs}s left)"
    return
  fi
  say "== ti2v $name (limit ${secs}s, $(($(date +%s) - t0))s in)"
  timeout "$secs" node .gpu/ti2v.mjs --part "$name" --device $dev --out "$raw/$name.json" \
    --vae-dtype "${VAE_DTYPE:-bf16}" --steps "${STEPS:-3}" "${extra[@]}" >> "$log" 2>&1
  local rc=$?
  say "ti2v $name: rc=$rc"
  [ -f "$raw/$name.json" ] || echo "{\"part\": \"$name\", \"error\": \"exit code $rc, no record\"}" > "$raw/$name.json"
  tail -4 "$log"
}

part dit 200
part vae 200
part generation 240
b=$(($(left) - 10))
if [ $b -gt 30 ]; then
  say "== PyTorch eager, TI2V shapes (limit ${b}s)"
  PYTHONUNBUFFERED=1 timeout $b $py benchmarks/e2e/torch_e2e.py --part eager --ti2v --device $dev \
    --budget $((b - 60)) --out "$raw/torch.json" "${extra[@]}" >> "$log" 2>&1
  say "torch: rc=$?"
fi
[ -f "$raw/torch.json" ] || echo '{"skipped": "no time left in the call, or it failed before writing"}' > "$raw/torch.json"
results merge "$out/ti2v-$gpu.json" date="$(now)" device="${gpu_name:-cpu}" commit="$COMMIT" \
  what="Wan2.2 TI2V-5B$([ $smoke -eq 1 ] && echo ' (smoke: the tiny TI2V model on the CPU)'), random weights, 1280x704x121: DiT step (batch 2, bf16), Wan2.2 VAE decode (${VAE_DTYPE:-bf16}), a ${STEPS:-3}-step image-to-video generation; each part a fresh process" \
  command="bash scripts/gpu/ti2v-bench.sh" \
  --part dit="$raw/dit.json" --part vae="$raw/vae.json" --part generation="$raw/generation.json" \
  --part torch="$raw/torch.json"
pack_logs
say "total $(($(date +%s) - t0))s"
