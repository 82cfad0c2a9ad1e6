#!/usr/bin/env bash
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"],
# timeout_s 600): the Hopper wgmma conv3d (native/cuda/conv/conv3d_wgmma.cu, the default on
# sm_90a where it applies; TESSERA_CUDA_CONV=igemm runs the mma.sync kernel instead), checked
# and timed in one call:
#   1. build for sm_90a; the kernels' registers / stack as built (cuobjdump -res-usage);
#   2. the conformance suite's conv and patch_embed3d cases on cuda:0 against the CPU reference
#      (f32, bf16, f16) on the default path with a trace of the kernel each call took, then with
#      the other pipeline (s3d2) and the 128x128 / 128x192 tiles forced, and with
#      TESSERA_CUDA_CONV=igemm as a control;
#   3. compute-sanitizer memcheck over the conv cases (default path);
#   4. the kernel benchmark's conv and patch-embedding cases (benchmarks/kernels: cases.py's
#      Wan-VAE decoder convs + conv_igemm.py's others): PyTorch F.conv3d (cuDNN), ours with
#      wgmma (default tiles, then 128x128 forced), ours with igemm; conv_igemm.py prints the
#      table, $OUT/conv-wgmma.json;
#      then the patch embedding's two cases (timing only) with each kernel;
#   5. compute-sanitizer racecheck (default path) in what time is left.
# CONV_LIMIT_S (default 560). $OUT gets conv-wgmma.json and conv-logs.tgz.
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
export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}" TESSERA_NO_NCCL=1
export COMMIT="$(cat .gpu/commit 2>/dev/null || git describe --always --dirty 2>/dev/null || echo unknown)"
unset TESSERA_CUDA_CONV TESSERA_CUDA_CONV_TILE TESSERA_CUDA_CONV_TRACE

echo "== build (sm_90a)"
OUT="$out" timeout 200 bash scripts/gpu/check.sh --build-only | tail -3
export PATH=/tmp:$PATH TESSERA_NATIVE_BUILD_DIR=/tmp/tessera-build/Release
lib="$TESSERA_NATIVE_BUILD_DIR/libtessera_cuda.so"
[ -f "$lib" ] || { echo "no build"; pack; exit 1; }
runner=.gpu/native-dist/testing/run-conformance.js
cuobjdump -res-usage "$lib" 2>&1 | grep -A1 -E "conv_wgmma|conv_igemm" | grep -vE "^--" > "$out/res-usage.txt"
sed -E 's/Function _ZN7tessera[^ ]*(conv_wgmma_kernel|conv_igemm_kernel)I?([^ ]*):/\1 \2:/' "$out/res-usage.txt" | paste - - | cut -c1-160
pack

conf() {  # name, filter, env...
  local name=$1 filter=$2
  shift 2
  env "$@" timeout 150 node "$runner" --device cuda --filter "$filter" --commit "$COMMIT" \
    --out "$out/conf-$name.json" > "$out/conf-$name.log" 2> "$out/conf-$name.err"
  echo "conformance [$name]: rc=$? $(tail -1 "$out/conf-$name.log")"
  grep -E "^FAIL" "$out/conf-$name.log" | head -12
}
echo "== conformance ($(left)s left)"
conf wgmma conv TESSERA_CUDA_CONV_TRACE=1
sed -E 's/ M=[0-9]+ N=.*//; s/^\[tessera conv\] //; s/ \(.*//' "$out/conf-wgmma.err" | sort | uniq -c
conf wgmma-patch patch_embed3d TESSERA_CUDA_CONV_TRACE=1
sed -E 's/ M=[0-9]+ N=.*//; s/^\[tessera conv\] //' "$out/conf-wgmma-patch.err" | sort | uniq -c
conf wgmma-s3d2 conv TESSERA_CUDA_CONV_WGMMA=s3d2
conf wgmma-128x128 conv TESSERA_CUDA_CONV_TILE=128x128
conf wgmma-128x192 conv TESSERA_CUDA_CONV_TILE=128x192
conf igemm conv TESSERA_CUDA_CONV=igemm
pack

san() {  # tool, seconds
  local tool=$1 secs=$2
  [ "$secs" -lt 20 ] && { echo "sanitizer $tool: skipped (time)"; return; }
  timeout "$secs" compute-sanitizer --tool "$tool" --print-limit 20 \
    node "$runner" --device cuda --sanitizer --filter conv --out "$out/sanitizer-$tool.json" \
    > "$out/sanitizer-$tool.log" 2>&1
  echo "sanitizer $tool: rc=$? ($(left)s left)"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race|passed" "$out/sanitizer-$tool.log" | tail -6
  pack
}
echo "== compute-sanitizer memcheck ($(left)s left)"
san memcheck 90

echo "== benchmark ($(left)s left)"
work=/tmp/kbench
rm -rf "$work" && mkdir -p "$work"
python3 benchmarks/kernels/cases.py --out "$work/all.json" > /dev/null
python3 benchmarks/kernels/conv_igemm.py manifest --in "$work/all.json" --out "$work/manifest.json"
cp benchmarks/kernels/bench.mjs .gpu/kernels-bench.mjs
b=$(($(left) * 30 / 100))
PYTHONUNBUFFERED=1 timeout $((b + 30)) python3 benchmarks/kernels/torch_bench.py --manifest "$work/manifest.json" \
  --out "$out/torch.json" --device cuda --budget $b > "$out/torch.log" 2>&1
echo "torch: rc=$? ($(left)s left)"
pack
ours() {  # tag, share of what is left (%), env...
  local tag=$1 share=$2
  shift 2
  local b=$(($(left) * share / 100))
  env "$@" timeout $((b + 25)) node .gpu/kernels-bench.mjs --manifest "$work/manifest.json" --out "$out/ours-$tag.json" \
    --device cuda --tag "$tag" --budget $b > "$out/ours-$tag.log" 2> "$out/ours-$tag.err"
  echo "ours [$tag]: rc=$? ($(left)s left) $(grep -c FAIL "$out/ours-$tag.log") FAIL lines"
  pack
}
ours wgmma 30
ours wgmma-128x128 40 TESSERA_CUDA_CONV_TILE=128x128
ours igemm 60 TESSERA_CUDA_CONV=igemm
python3 benchmarks/kernels/conv_igemm.py summary --manifest "$work/manifest.json" --torch "$out/torch.json" \
  --ours wgmma="$out/ours-wgmma.json" --ours wgmma-128x128="$out/ours-wgmma-128x128.json" --ours igemm="$out/ours-igemm.json" \
  --json "$out/conv-wgmma.json" \
  --meta commit="$COMMIT" --meta device="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" \
  --meta date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
cp "$out/conv-wgmma.json" "$final/" 2>/dev/null
for v in wgmma igemm; do  # the patch embedding (a conv with kernel = stride), timing only
  e=(); [ $v = igemm ] && e=(TESSERA_CUDA_CONV=igemm)
  env "${e[@]}" timeout 60 node .gpu/kernels-bench.mjs --manifest "$work/all.json" --only patch_embed --device cuda \
    --out "$out/patch-$v.json" 2>&1 | grep -E "^\[ours" | sed "s/^/[$v] /"
done
pack

echo "== compute-sanitizer racecheck ($(left)s left)"
san racecheck $(($(left) - 10))
echo "total $(($(date +%s) - t0))s"
