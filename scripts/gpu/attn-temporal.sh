#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the temporal-attention kernel (native/cuda/attention/attention_temporal.cu)
# checked and timed in one call: the attention conformance cases on cuda:0 against the CPU
# reference (f32, bf16, f16) with the new kernel (default) and with TESSERA_CUDA_ATTN_TEMPORAL=tiled,
# compute-sanitizer memcheck and racecheck over the temporal cases, then the whole kernel table
# (scripts/gpu/kernels.sh) and the temporal rows once more on the tiled kernels. $OUT gets
# kernels.json, kernels.md and temporal-logs.tgz.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
final="${OUT:-$root/gpu-out}"
out=/tmp/temporal-out
rm -rf "$out" && mkdir -p "$out" "$final"
pack() { tar czf "$final/temporal-logs.tgz" -C "$out" . 2>/dev/null; }
export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}" TESSERA_NO_NCCL=1
export COMMIT="$(cat .gpu/commit 2>/dev/null || echo unknown)"
OUT="$out" timeout 200 bash scripts/gpu/check.sh --build-only | tail -2
export PATH=/tmp:$PATH TESSERA_NATIVE_BUILD_DIR=/tmp/tessera-build/Release
runner=.gpu/native-dist/testing/run-conformance.js
for mode in default tiled; do
  e=(); [ $mode = tiled ] && e=(TESSERA_CUDA_ATTN_TEMPORAL=tiled)
  env "${e[@]}" timeout 150 node "$runner" --device cuda --filter attention --commit "$COMMIT" \
    --out "$out/conf-$mode.json" > "$out/conf-$mode.log" 2>&1
  echo "conformance attention [$mode]: rc=$? $(tail -1 "$out/conf-$mode.log")"
  grep -E "^FAIL" "$out/conf-$mode.log" | head -8
done
for tool in memcheck racecheck; do
  timeout 120 compute-sanitizer --tool $tool --print-limit 20 node "$runner" --device cuda --sanitizer \
    --filter temporal --out "$out/sanitizer-$tool.json" > "$out/sanitizer-$tool.log" 2>&1
  echo "sanitizer $tool: rc=$? $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/sanitizer-$tool.log" | tail -1) $(grep -E "passed" "$out/sanitizer-$tool.log" | tail -1)"
done
pack
OUT="$final" KERNELS_LIMIT_S=300 bash scripts/gpu/kernels.sh > "$out/kernels-run.log" 2>&1
echo "kernels.sh: rc=$?"
grep -E "temporal" "$final/kernels.md" | cut -c1-200
TESSERA_CUDA_ATTN_TEMPORAL=tiled timeout 60 node .gpu/kernels-bench.mjs --manifest /tmp/kbench/manifest.json \
  --only temporal --device cuda --out "$out/ours-tiled.json" 2>&1 | grep -E "^\[ours" | sed 's/^/[tiled] /'
rm -f "$final"/{build.log,gpu.txt,ours-own.json,ours.json,torch.json,kernels.log}
pack
