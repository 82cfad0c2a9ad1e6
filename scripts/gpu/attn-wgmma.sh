#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"]):
# the Hopper (wgmma) attention kernel, checked and timed in one call (~4-5 minutes):
#   1. build for sm_90a (scripts/gpu/check.sh --build-only);
#   2. the conformance suite's attention cases (cpu + cuda:0, as check.sh --filter attention
#      runs them) with each wgmma schedule / warpgroup count, a kernel trace, and the mma.sync
#      kernel (TESSERA_CUDA_ATTN=mma); each run has its own timeout;
#   3. the kernel benchmark's attention cases (benchmarks/kernels: cases.py + batch-2 copies,
#      torch_bench.py, bench.mjs): PyTorch SDPA, ours with the wgmma kernel, ours with the
#      mma.sync kernel, the other wgmma schedules on full attention; attn_wgmma.py prints the
#      table and writes $OUT/attention-wgmma.json.
# ATTN_LIMIT_S (default 310): the whole run's time; the steps get shares of what is left.
# $OUT gets attention-wgmma.json and attn-logs.tgz (every log and JSON; refreshed after each
# step, since the device tool returns at most 8 files).
set -uo pipefail
t0=$(date +%s)
limit=${ATTN_LIMIT_S:-310}
left() { echo $((limit - ($(date +%s) - t0))); }
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
final="${OUT:-$root/gpu-out}"
out=/tmp/attn-out
rm -rf "$out" && mkdir -p "$out" "$final"
pack() { tar czf "$final/attn-logs.tgz" -C "$out" . 2>/dev/null; }
export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
# The wgmma kernel is asked for explicitly (whatever its default); "mma" below turns it off.
export TESSERA_CUDA_ATTN=wgmma
export COMMIT="$(cat .gpu/commit 2>/dev/null || git describe --always --dirty 2>/dev/null || echo unknown)"

echo "== build (sm_90a)"
OUT="$out" timeout 200 bash scripts/gpu/check.sh --build-only
pack
export PATH=/tmp:$PATH TESSERA_NATIVE_BUILD_DIR=/tmp/tessera-build/Release
[ -f "$TESSERA_NATIVE_BUILD_DIR/libtessera_cuda.so" ] || { echo "no build"; exit 1; }
runner=.gpu/native-dist/testing/run-conformance.js

conf() {  # name, env...: the attention conformance cases on cpu + cuda:0 (--device cuda: cuda:0 only)
  local name=$1
  shift
  env "$@" timeout 45 node "$runner" --filter attention --out "$out/conf-$name.json" \
    > "$out/conf-$name.log" 2> "$out/conf-$name.err"
  echo "conformance [$name]: rc=$? $(tail -1 "$out/conf-$name.log")"
  grep -E "^FAIL" "$out/conf-$name.log" | head -8
}
echo "== conformance, each schedule, then the mma.sync kernel ($(left)s left)"
conf basic TESSERA_CUDA_ATTN_WGMMA=basic
conf default TESSERA_CUDA_ATTN_TRACE=1
sort "$out/conf-default.err" | sed 's/grid=.*//' | uniq -c
conf overlap TESSERA_CUDA_ATTN_WGMMA=overlap
conf wg2 TESSERA_CUDA_ATTN_WGMMA_WG=2
conf wg2-basic TESSERA_CUDA_ATTN_WGMMA_WG=2 TESSERA_CUDA_ATTN_WGMMA=basic
conf mma TESSERA_CUDA_ATTN=mma
pack

echo "== benchmark ($(left)s left)"
work=/tmp/kbench
rm -rf "$work" && mkdir -p "$work"
python3 benchmarks/kernels/cases.py --out "$work/all.json" > /dev/null
python3 benchmarks/kernels/attn_wgmma.py manifest --in "$work/all.json" --out "$work/manifest.json"
cp benchmarks/kernels/bench.mjs .gpu/kernels-bench.mjs  # resolves @tessera/native from .gpu/node_modules
b=$(($(left) * 35 / 100))
PYTHONUNBUFFERED=1 timeout $((b + 30)) python3 benchmarks/kernels/torch_bench.py --manifest "$work/manifest.json" \
  --out "$out/torch.json" --device cuda --budget $b > "$out/torch.log" 2>&1
echo "torch: rc=$? ($(left)s left)"
pack
ours() {  # tag, share of what is left (%), bench args..., then env after "--"
  local tag=$1 share=$2
  shift 2
  local args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  local b=$(($(left) * share / 100))
  [ $b -lt 5 ] && { echo "ours [$tag]: skipped (time)"; return; }
  env "$@" timeout $((b + 25)) node .gpu/kernels-bench.mjs --manifest "$work/manifest.json" --out "$out/ours-$tag.json" \
    --device cuda --tag "$tag" --budget $b "${args[@]}" > "$out/ours-$tag.log" 2> "$out/ours-$tag.err"
  echo "ours [$tag]: rc=$? ($(left)s left) $(grep -c FAIL "$out/ours-$tag.log") FAIL lines"
  pack
}
ours wgmma 40 --
ours mma 55 -- TESSERA_CUDA_ATTN=mma
ours overlap 30 --only attn.full.d -- TESSERA_CUDA_ATTN_WGMMA=overlap
ours basic 40 --only attn.full.d -- TESSERA_CUDA_ATTN_WGMMA=basic
ours wg2 60 --only attn.full.d64 -- TESSERA_CUDA_ATTN_WGMMA_WG=2

python3 benchmarks/kernels/attn_wgmma.py summary --manifest "$work/manifest.json" --torch "$out/torch.json" \
  --ours wgmma="$out/ours-wgmma.json" --ours mma="$out/ours-mma.json" --ours overlap="$out/ours-overlap.json" \
  --ours basic="$out/ours-basic.json" --ours wg2="$out/ours-wg2.json" --json "$out/attention-wgmma.json" \
  --meta commit="$COMMIT" --meta device="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" \
  --meta date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
cp "$out/attention-wgmma.json" "$final/" 2>/dev/null
pack
echo "total $(($(date +%s) - t0))s"
