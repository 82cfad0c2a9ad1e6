#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"]):
# builds the addon (check.sh --build-only), then benchmarks/kernels/: the PyTorch side
# (ceilings, baselines, reference outputs), our side through Node (check, then time), our
# own GEMM kernel without cuBLASLt, and the merge that prints the table. Results to $OUT:
# kernels.json (one record per measurement), kernels.md (table), torch.json, ours.json,
# ours-own.json, kernels.log (+ build.log, gpu.txt from check.sh).
#   bash scripts/gpu/kernels.sh            # on the GPU host, ~5 minutes
#   bash scripts/gpu/kernels.sh --smoke    # here, no GPU: tiny f32 shapes on the CPU backend
# KERNELS_LIMIT_S (default 500): the whole run's time; later cases are skipped past their share.
set -uo pipefail
t0=$(date +%s)
limit=${KERNELS_LIMIT_S:-500}
left() { echo $((limit - ($(date +%s) - t0))); }
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1
out="${OUT:-$root/gpu-out}"
mkdir -p "$out"
log="$out/kernels.log"
: > "$log"
work=/tmp/kbench
rm -rf "$work"
mkdir -p "$work"

if [ $smoke -eq 1 ]; then
  py=/usr/bin/python3
  dev=cpu
  cases_args=(--small)
  node_script=benchmarks/kernels/bench.mjs # resolves @tessera/native through benchmarks/node_modules
  export TESSERA_NATIVE_BUILD_DIR="${TESSERA_NATIVE_BUILD_DIR:-$root/packages/native/build/Release}"
  timing=(--reps 3 --target-ms 5)
else
  py=python3
  dev=cuda
  cases_args=()
  # sm_90a only: the H100 needs nothing else, and the build takes about half as long.
  export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
  bash scripts/gpu/check.sh --build-only 2>&1 | tee -a "$log" || exit 1
  export PATH=/tmp:$PATH TESSERA_NATIVE_BUILD_DIR=/tmp/tessera-build/Release
  # ESM ignores NODE_PATH: run from a folder whose node_modules holds the packages.
  cp benchmarks/kernels/bench.mjs .gpu/kernels-bench.mjs
  node_script=.gpu/kernels-bench.mjs
  timing=()
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw,power.limit \
    --format=csv 2>&1 | tee -a "$log"
  $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" 2>&1 | tee -a "$log"
fi
export COMMIT="$(cat .gpu/commit 2>/dev/null || git describe --always --dirty 2>/dev/null || echo unknown)"
$py benchmarks/kernels/cases.py "${cases_args[@]}" --out "$work/manifest.json" 2>&1 | tee -a "$log"

# What is left is shared out: PyTorch ~50%, ours ~60% of the rest, own GEMM ~half of the rest.
# Each side skips the cases past its soft budget; the hard timeouts only catch a hang.
b=$(($(left) * 50 / 100))
echo "== PyTorch side (budget ${b}s)" | tee -a "$log"
PYTHONUNBUFFERED=1 timeout $((b + 40)) $py benchmarks/kernels/torch_bench.py --manifest "$work/manifest.json" \
  --out "$out/torch.json" --device $dev --budget $b "${timing[@]}" 2>&1 | tee -a "$log"
echo "torch side: rc=$?" | tee -a "$log"

b=$(($(left) * 60 / 100))
echo "== our side (budget ${b}s)" | tee -a "$log"
timeout $((b + 30)) node $node_script --manifest "$work/manifest.json" --out "$out/ours.json" --device $dev \
  --budget $b "${timing[@]}" 2>&1 | tee -a "$log"
echo "our side: rc=$?" | tee -a "$log"

b=$(($(left) * 50 / 100))
echo "== our own GEMM kernel, cuBLASLt off (budget ${b}s)" | tee -a "$log"
TESSERA_CUDA_NO_CUBLASLT=1 timeout $((b + 20)) node $node_script --manifest "$work/manifest.json" \
  --out "$out/ours-own.json" --device $dev --only gemm. --tag own --budget $b "${timing[@]}" 2>&1 | tee -a "$log"
echo "own GEMM: rc=$?" | tee -a "$log"

[ $smoke -eq 1 ] || nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv 2>&1 | tee -a "$log"
echo "== merged ($(($(date +%s) - t0))s so far)" | tee -a "$log"
$py benchmarks/kernels/merge.py --manifest "$work/manifest.json" --torch "$out/torch.json" --ours "$out/ours.json" \
  --own "$out/ours-own.json" --json "$out/kernels.json" --md "$out/kernels.md" 2>&1 | tee -a "$log"
echo "total $(($(date +%s) - t0))s" | tee -a "$log"
