#!/usr/bin/env bash
# kernel-bench: our CUDA kernels against PyTorch on the same inputs (benchmarks/kernels/README.md).
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600); or here with --smoke (no GPU: tiny f32 shapes on the CPU backend, the torch of
# /usr/bin/python3):
#   bash scripts/gpu/kernel-bench.sh [SUBSET] [--smoke]
# SUBSET (default all):
#   all        every case of benchmarks/kernels/cases.py at the Wan2.1-1.3B shapes: PyTorch's ceilings
#              and candidates, ours (each output checked against PyTorch's before it is timed), ours
#              again with TESSERA_CUDA_NO_CUBLASLT=1 over the GEMMs (our own tensor-core GEMM); merge.py
#              writes the table. $OUT: kernels-<gpu>.json, kernels-<gpu>.md.
#   attention  the attention cases (and batch-2 copies): conformance of the attention cases on the
#              default kernel choice and with TESSERA_CUDA_ATTN=mma (the mma.sync kernels, the sm_80
#              path), then both timed against SDPA. $OUT: attention-<gpu>.json.
#   conv       the Wan-VAE decoder's convs: conformance of the conv and patch-embedding cases on the
#              default choice and with each Hopper pipeline (TESSERA_CUDA_CONV_WGMMA=ws|s4d2|s3d2) and
#              the mma.sync kernel (TESSERA_CUDA_CONV=igemm); timings of the default, s4d2 and igemm
#              against cuDNN. $OUT: conv-<gpu>.json.
#   membound   temporal attention, LayerNorm + modulate and the gated residual: conformance of their
#              cases, timings against PyTorch. $OUT: membound-<gpu>.json.
# Every subset also leaves kernel-bench-logs.tgz (every log and raw JSON). Sanitizers over a kernel
# family: `bash scripts/gpu/check.sh --sanitizer-only --filter attention` (or conv, ...).
# LIMIT_S (default 500 for all, 560 for the others): the run's time; each side skips the cases past
# its share of what is left, so a long run loses cases, not the call.
subset=all
smoke=0
for a in "$@"; do
  case "$a" in
    --smoke) smoke=1 ;;
    all | attention | conv | membound) subset=$a ;;
    *) echo "kernel-bench.sh: unknown argument '$a'; use all, attention, conv or membound, and --smoke"; exit 2 ;;
  esac
done
suite=kernel-bench
[ "$subset" = all ] && LIMIT_S=${LIMIT_S:-500}
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

work=/tmp/kbench
rm -rf "$work"
mkdir -p "$work"
if [ $smoke -eq 1 ]; then
  py=/usr/bin/python3
  dev=cpu
  cases_args=(--small)
  node_script=benchmarks/kernels/bench.mjs # resolves @tessera/native through benchmarks/node_modules
  export TESSERA_NATIVE_BUILD_DIR="$root/packages/native/build/Release"
  timing=(--reps 3 --target-ms 5)
else
  py=python3
  dev=cuda
  cases_args=()
  timing=()
  # sm_90a only: the H100 needs nothing else, and the build takes about half as long.
  export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
  build_native || { pack_logs; exit 1; }
  stage_js benchmarks/kernels/bench.mjs
  node_script=.gpu/bench.mjs
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,power.limit \
    --format=csv 2>&1 | tee -a "$log"
  $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" 2>&1 | tee -a "$log"
fi

# torch_side SHARE%: PyTorch's ceilings, candidates and reference outputs for the manifest's cases.
torch_side() {
  local b=$(($(left) * $1 / 100))
  say "== PyTorch (budget ${b}s)"
  PYTHONUNBUFFERED=1 timeout $((b + 40)) $py benchmarks/kernels/torch_bench.py --manifest "$work/manifest.json" \
    --out "$logs/torch.json" --device $dev --budget $b "${timing[@]}" >> "$log" 2>&1
  say "torch: rc=$? ($(left)s left)"
  pack_logs
}

# ours TAG SHARE% [bench.mjs args...] [-- VAR=VALUE...]: our side of the manifest's cases, each
# output checked against PyTorch's reference, then timed; $logs/ours-TAG.json.
ours() {
  local tag=$1 share=$2 args=() envs=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  envs=("$@")
  local b=$(($(left) * share / 100))
  if [ $b -lt 5 ]; then
    say "ours [$tag]: skipped (no time left)"
    return
  fi
  say "== ours [$tag]${envs[*]:+ (${envs[*]})} (budget ${b}s)"
  env "${envs[@]}" timeout $((b + 30)) node $node_script --manifest "$work/manifest.json" --out "$logs/ours-$tag.json" \
    --device $dev --tag "$tag" --budget $b "${timing[@]}" "${args[@]}" > "$logs/ours-$tag.log" 2>&1
  say "ours [$tag]: rc=$? ($(left)s left), $(grep -c FAIL "$logs/ours-$tag.log") FAIL lines"
  pack_logs
}

# summary FILE TAG=ENV...: subsets.py's table of the tagged runs (ENV: the environment the tag ran
# under, empty for the default kernel choice), into $OUT/FILE.
summary() {
  local file=$1 specs=() tags=() t name
  shift
  for t in "$@"; do
    name=${t%%=*}
    specs+=(--ours "$name=$logs/ours-$name.json")
    t=${t#*=}
    tags+=("$name: ${t:-the default kernel choice};")
  done
  $py benchmarks/kernels/subsets.py summary --manifest "$work/manifest.json" --torch "$logs/torch.json" "${specs[@]}" \
    --json "$out/$file" --meta commit="$COMMIT" --meta device="${gpu_name:-cpu}" --meta date="$(now)" \
    --meta tags="${tags[*]}" --meta command="bash scripts/gpu/kernel-bench.sh $subset" 2>&1 | tee -a "$log"
}

# checks NAME=FILTER[:VAR=VALUE,...]...: conformance runs before timing (skipped in a smoke run).
checks() {
  [ $smoke -eq 1 ] && return
  local spec name rest filter envs
  say "== conformance ($(left)s left)"
  for spec in "$@"; do
    name=${spec%%=*} rest=${spec#*=}
    filter=${rest%%:*}
    envs=()
    [ "$rest" != "$filter" ] && IFS=, read -r -a envs <<< "${rest#*:}"
    conformance "$name" "$filter" "${envs[@]}"
  done
  pack_logs
}

$py benchmarks/kernels/cases.py "${cases_args[@]}" --out "$work/all.json" >> "$log" 2>&1
case "$subset" in
  all)
    cp "$work/all.json" "$work/manifest.json"
    # PyTorch ~50% of the time, ours ~60% of the rest, our own GEMM ~half of what is left.
    torch_side 50
    ours default 60
    ours own 50 --only gemm. -- TESSERA_CUDA_NO_CUBLASLT=1
    [ $smoke -eq 1 ] || nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv 2>&1 | tee -a "$log"
    $py benchmarks/kernels/merge.py --manifest "$work/manifest.json" --torch "$logs/torch.json" \
      --ours "$logs/ours-default.json" --own "$logs/ours-own.json" \
      --json "$out/kernels-$gpu.json" --md "$out/kernels-$gpu.md" 2>&1 | tee -a "$log"
    ;;
  attention)
    $py benchmarks/kernels/subsets.py manifest attention --in "$work/all.json" --out "$work/manifest.json" | tee -a "$log"
    [ $smoke -eq 1 ] || res_usage "attn_wgmma_kernel|attn_tc_kernel"
    checks default=attention mma=attention:TESSERA_CUDA_ATTN=mma
    torch_side 35
    ours default 45
    ours mma 80 -- TESSERA_CUDA_ATTN=mma
    summary "attention-$gpu.json" default="" mma=TESSERA_CUDA_ATTN=mma
    ;;
  conv)
    $py benchmarks/kernels/subsets.py manifest conv --in "$work/all.json" --out "$work/manifest.json" | tee -a "$log"
    [ $smoke -eq 1 ] || res_usage "conv_wgmma_ws_kernel|conv_wgmma_kernel|conv_narrow_kernel|conv_igemm_kernel"
    checks default=conv ws=conv:TESSERA_CUDA_CONV_WGMMA=ws s4d2=conv:TESSERA_CUDA_CONV_WGMMA=s4d2 \
      s3d2=conv:TESSERA_CUDA_CONV_WGMMA=s3d2 igemm=conv:TESSERA_CUDA_CONV=igemm patch=patch_embed3d
    torch_side 30
    ours default 35
    ours s4d2 45 -- TESSERA_CUDA_CONV_WGMMA=s4d2
    ours igemm 80 -- TESSERA_CUDA_CONV=igemm
    summary "conv-$gpu.json" default="" s4d2=TESSERA_CUDA_CONV_WGMMA=s4d2 igemm=TESSERA_CUDA_CONV=igemm
    ;;
  membound)
    $py benchmarks/kernels/subsets.py manifest membound --in "$work/all.json" --out "$work/manifest.json" | tee -a "$log"
    [ $smoke -eq 1 ] || res_usage "attn_tc_kernel|norm_warp_vec_kernel|gated_residual"
    checks attention=attention layer_norm=layer_norm gated_residual=gated_residual
    torch_side 40
    ours default 80
    summary "membound-$gpu.json" default=""
    ;;
esac
pack_logs
say "total $(($(date +%s) - t0))s"
