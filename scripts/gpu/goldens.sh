#!/usr/bin/env bash
# goldens: the golden fixtures made and checked where PyTorch, transformers, peft and a GPU are.
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh --diffusers DIR` here (device tool: carry
# [".gpu"], timeout_s 600). In order:
#   1. training/make_golden.py on the GPU: the same weights and inputs as the committed fixtures
#      (numpy streams), float64 outputs, plus PyTorch's bf16 autocast outputs (output_bf16.*);
#   2. training/make_golden_lora.py on those (peft's forward checks the PEFT case);
#   3. training/make_golden_vae_diffusers.py: a Wan2.1 VAE made and initialised by diffusers;
#   4. training/check_upstream.py: every fixture against diffusers' and transformers' own classes;
#   5. the engine's golden checks on cuda:0 in bf16 and f32 against the new fixtures, and the
#      bf16 encoder stage by stage (benchmarks/gpu/vae-bf16-stages.mjs).
# $OUT: goldens.tgz (the fixtures, for packages/core/test-fixtures/golden/), golden-<gpu>-bf16.json,
# golden-<gpu>-f32.json, vae-bf16-stages-<gpu>.json, goldens-logs.tgz (upstream.log among them).
suite=goldens
LIMIT_S=${LIMIT_S:-560}
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

[ -f .gpu/diffusers-src.tar.xz ] || { echo "goldens.sh: stage diffusers first: prepare.sh --diffusers DIR"; exit 1; }
ref=/tmp/tessera-ref
rm -rf "$ref" && mkdir -p "$ref" && tar -xJf .gpu/diffusers-src.tar.xz -C "$ref"
fx=/tmp/tessera-goldens
rm -rf "$fx" && mkdir -p "$fx"
status=0
step() {
  local name=$1
  shift
  say "== $name ($(($(date +%s) - t0))s)"
  "$@" > "$logs/$name.log" 2>&1
  local rc=$?
  say "$name: rc=$rc"
  tail -25 "$logs/$name.log" | tee -a "$log"
  [ $rc -eq 0 ] || status=1
}

export PYTHONUNBUFFERED=1
step make-golden python3 training/make_golden.py --out "$fx"
for s in training/make_golden_*.py; do
  case "$s" in
    */make_golden_lora.py) step make-golden-lora python3 "$s" --golden "$fx" --out "$fx" ;;
    */make_golden_vae_diffusers.py) step make-golden-vae-diffusers python3 "$s" --diffusers "$ref/src" --out "$fx" ;;
    *) step "$(basename "$s" .py)" python3 "$s" --out "$fx" ;;
  esac
done
step upstream python3 training/check_upstream.py --golden "$fx" --diffusers "$ref/src"
tar czf "$out/goldens.tgz" -C "$fx" .

build_native || { pack_logs; exit 1; }
export TESSERA_GOLDEN_DIR="$fx"
for dt in bf16 f32; do
  node .gpu/node_modules/@tessera/core/dist/golden/run.js --device cuda --dtype $dt \
    --out "$out/golden-$gpu-$dt.json" > "$logs/golden-$dt.log" 2>&1 || status=1
  say "golden $dt: $(tail -1 "$logs/golden-$dt.log")"
  grep -E "FAIL" "$logs/golden-$dt.log" | head -20 | tee -a "$log"
done
stage_js benchmarks/gpu/vae-bf16-stages.mjs
if [ -f "$fx/wan_vae_diffusers.safetensors" ]; then
  node .gpu/vae-bf16-stages.mjs "$fx/wan_vae_diffusers.safetensors" --out "$out/vae-bf16-stages-$gpu.json" \
    > "$logs/vae-bf16-stages.log" 2>&1 || status=1
  tee -a "$log" < "$logs/vae-bf16-stages.log"
fi
pack_logs
exit $status
