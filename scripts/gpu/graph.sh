#!/usr/bin/env bash
# ON THE GPU HOST, after prepare.sh here (device tool: carry [".gpu"], timeout_s 590):
# the CUDA-graph step's correctness and a first timing, in one call. Builds the addon
# (check.sh: conformance on every backend + the runtime checks, which include the graph
# checks), the golden-tensor checks in bf16 and f32 (with the forward replayed as a graph),
# the pipeline's graph-vs-eager check (benchmarks/gpu/step-graph-check.mjs), the demo model's
# generation with and without the graph (benchmarks/gpu/demo-graph.mjs), then the Wan2.1-1.3B
# DiT step eager and as a graph (benchmarks/e2e/ours.mjs --part dit).
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="${OUT:-$root/gpu-out}"
mkdir -p "$out"
export TESSERA_NO_NCCL=1 TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
bash scripts/gpu/check.sh --no-sanitizer 2>&1 | tail -30
export PATH=/tmp:$PATH TESSERA_NATIVE_BUILD_DIR=/tmp/tessera-build/Release
export COMMIT="$(cat .gpu/commit 2>/dev/null || echo unknown)"
export TESSERA_GOLDEN_DIR="$root/packages/core/test-fixtures/golden"
for dt in bf16 f32; do
  node .gpu/node_modules/@tessera/core/dist/golden/run.js --device cuda --dtype $dt --out "$out/golden-$dt.json" 2>&1 | tail -12
done
cp benchmarks/gpu/step-graph-check.mjs benchmarks/gpu/demo-graph.mjs benchmarks/e2e/ours.mjs .gpu/
OUT="$out" node .gpu/step-graph-check.mjs 2>&1 | tail -5
OUT="$out" timeout 120 node .gpu/demo-graph.mjs packages/core/models/tessera-world 2>&1 | tail -3
timeout 120 node .gpu/ours.mjs --part dit --out "$out/ours-dit.json" --device cuda 2>&1 | tail -4
# $OUT brings back at most 8 files: pack them into one.
tar -C "$out" -czf /tmp/graph-run.tgz . && rm -rf "${out:?}"/* && mv /tmp/graph-run.tgz "$out/"
