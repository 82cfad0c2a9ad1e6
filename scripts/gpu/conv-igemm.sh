#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the mma.sync implicit-GEMM conv3d (native/cuda/conv/conv3d_igemm.cu, the
# default where it applies; TESSERA_CUDA_CONV=wmma forces the older kernel, "old" below),
# checked and timed in one call (~3 minutes on the H100, 2026-11-25):
#   1. build for sm_90a (scripts/gpu/check.sh --build-only); the kernels' registers / stack /
#      shared memory as built there (cuobjdump -res-usage); the host replay of the kernel's
#      index arithmetic (native/cuda/conv/igemm_host_check.cpp);
#   2. the conformance suite's conv cases (conv3d/*, conv2d/*: f32, bf16, f16 on cuda:0 against
#      the CPU reference) with TESSERA_CUDA_CONV=igemm and a trace of the path each call took,
#      then with each block tile forced (128x128, 128x96, 128x64), the patch_embed3d cases (the
#      same engine) with igemm, and the default path as a control;
#   3. compute-sanitizer memcheck over the igemm conv cases (default tile and 128x128);
#   4. the kernel benchmark's conv cases (benchmarks/kernels: cases.py's four Wan-VAE decoder
#      causal 3x3x3 convs + conv_igemm.py's other decoder convs): PyTorch F.conv3d
#      (channels_last_3d and NCDHW, bf16, cuDNN), ours with the default (wmma) kernel ("old"),
#      ours with igemm, igemm with the other tiles on the small-M shape; conv_igemm.py prints
#      the table and writes $OUT/conv-igemm.json;
#   5. compute-sanitizer racecheck over the igemm conv cases with 128x128, in what time is left.
# CONV_LIMIT_S (default 560): the whole run's time; the steps get shares of what is left.
# $OUT gets conv-igemm.json and conv-logs.tgz (every log and JSON; refreshed after each step).
set -uo pipefail
t0=$(date +%s)
limit=${CONV_LIMIT_S:-560}
left() { echo $((limit - ($(date +%s) - t0))); }
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
final="${OUT:-$root/gpu-out}"
out=/tmp/conv-out
rm -rf "$out" && mkdir -p "$out" "$final"
pack() { tar czf "$final/conv-logs.tgz" -C "$out" . 2>/dev/null; }
export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
export COMMIT="$(cat .gpu/commit 2>/dev/null || git describe --always --dirty 2>/dev/null || echo unknown)"
unset TESSERA_CUDA_CONV TESSERA_CUDA_CONV_TILE TESSERA_CUDA_CONV_TRACE

echo "== build (sm_90a)"
OUT="$out" timeout 200 bash scripts/gpu/check.sh --build-only
pack
export PATH=/tmp:$PATH TESSERA_NATIVE_BUILD_DIR=/tmp/tessera-build/Release
lib="$TESSERA_NATIVE_BUILD_DIR/libtessera_cuda.so"
[ -f "$lib" ] || { echo "no build"; exit 1; }
runner=.gpu/native-dist/testing/run-conformance.js

echo "== kernel resources as built ($(left)s left)"
cuobjdump -res-usage "$lib" 2>&1 | grep -A1 -E "conv_igemm|reorder_kn" | grep -vE "^--" > "$out/res-usage.txt"
sed -E 's/Function _ZN7tessera[^ ]*(conv_igemm_kernel|reorder_kn_kernel)I?([^ ]*):/\1 \2:/' "$out/res-usage.txt" | paste - - | cut -c1-200
g++ -std=c++17 -O2 -I native/include -I native native/cuda/conv/igemm_host_check.cpp -o /tmp/igemm-check \
  && /tmp/igemm-check > "$out/host-check.log" 2>&1
echo "host replay: rc=$? $(tail -1 "$out/host-check.log")"
pack

conf() {  # name, filter, env...: conformance cases matching filter on cuda:0 (CPU reference)
  local name=$1 filter=$2
  shift 2
  env "$@" timeout 120 node "$runner" --device cuda --filter "$filter" --commit "$COMMIT" \
    --out "$out/conf-$name.json" > "$out/conf-$name.log" 2> "$out/conf-$name.err"
  echo "conformance [$name]: rc=$? $(tail -1 "$out/conf-$name.log")"
  grep -E "^FAIL" "$out/conf-$name.log" | head -8
}
echo "== conformance: conv cases with igemm, each tile forced, patch_embed3d, default path ($(left)s left)"
conf igemm conv TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TRACE=1
echo "paths taken (trace; the f32 cases and Cin % 8 != 0 go to the older kernels):"
sed -E 's/ M=[0-9]+ N=.*//; s/^\[tessera conv\] //' "$out/conf-igemm.err" | sort | uniq -c
conf igemm-128x128 conv TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x128
conf igemm-128x96 conv TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x96
conf igemm-128x64 conv TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x64
conf igemm-patch patch_embed3d TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TRACE=1
sed -E 's/ M=[0-9]+ N=.*//; s/^\[tessera conv\] //' "$out/conf-igemm-patch.err" | sort | uniq -c
conf old conv TESSERA_CUDA_CONV=wmma
pack

san() {  # tool, tag, seconds, env...: compute-sanitizer over the igemm conv cases
  local tool=$1 tag=$2 secs=$3
  shift 3
  [ "$secs" -lt 20 ] && { echo "sanitizer $tool [$tag]: skipped (time)"; return; }
  env TESSERA_CUDA_CONV=igemm "$@" timeout "$secs" compute-sanitizer --tool "$tool" --print-limit 20 \
    node "$runner" --device cuda --sanitizer --filter conv --out "$out/sanitizer-$tool-$tag.json" \
    > "$out/sanitizer-$tool-$tag.log" 2>&1
  echo "sanitizer $tool [$tag]: rc=$? ($(left)s left)"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race|passed" "$out/sanitizer-$tool-$tag.log" | tail -6
  pack
}
echo "== compute-sanitizer memcheck ($(left)s left)"
san memcheck default 80
san memcheck 128x128 70 TESSERA_CUDA_CONV_TILE=128x128

echo "== benchmark ($(left)s left)"
work=/tmp/kbench
rm -rf "$work" && mkdir -p "$work"
python3 benchmarks/kernels/cases.py --out "$work/all.json" > /dev/null
python3 benchmarks/kernels/conv_igemm.py manifest --in "$work/all.json" --out "$work/manifest.json"
cp benchmarks/kernels/bench.mjs .gpu/kernels-bench.mjs  # resolves @tessera/native from .gpu/node_modules
b=$(($(left) * 35 / 100))
PYTHONUNBUFFERED=1 timeout $((b + 30)) python3 benchmarks/kernels/torch_bench.py --manifest "$work/manifest.json" \
  --out "$out/torch.json" --device cuda --budget $b > "$out/torch.log" 2>&1
echo "torch: rc=$? ($(left)s left)"
grep -E "^\[torch\]" "$out/torch.log" | cut -c1-160
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
  grep -E "^\[ours" "$out/ours-$tag.log" | cut -c1-160
  pack
}
ours igemm 40 -- TESSERA_CUDA_CONV=igemm
ours old 50 -- TESSERA_CUDA_CONV=wmma
# The tile each shape takes by default (3 calls per case: check, estimate, one timed call).
ours trace 30 --reps 1 --warm 0 --target-ms 0.001 -- TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TRACE=1
sed -E 's/^\[tessera conv\] //; s/ K=.*//' "$out/ours-trace.err" | sort | uniq -c
ours igemm-128x128 30 --only "@60x104x1f" -- TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x128
ours igemm-128x64 40 --only ".96to96@" -- TESSERA_CUDA_CONV=igemm TESSERA_CUDA_CONV_TILE=128x64

python3 benchmarks/kernels/conv_igemm.py summary --manifest "$work/manifest.json" --torch "$out/torch.json" \
  --ours igemm="$out/ours-igemm.json" --ours old="$out/ours-old.json" \
  --ours igemm-128x128="$out/ours-igemm-128x128.json" --ours igemm-128x64="$out/ours-igemm-128x64.json" \
  --json "$out/conv-igemm.json" \
  --meta commit="$COMMIT" --meta device="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" \
  --meta date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
cp "$out/conv-igemm.json" "$final/" 2>/dev/null
pack

echo "== compute-sanitizer racecheck ($(left)s left)"
san racecheck 128x128 $(($(left) - 10)) TESSERA_CUDA_CONV_TILE=128x128
echo "total $(($(date +%s) - t0))s"
