#!/usr/bin/env bash
# End-to-end baseline, ours vs PyTorch, on one GPU (benchmarks/e2e/README.md).
# ON THE GPU HOST, after `bash scripts/gpu/prepare.sh` here (device tool: carry [".gpu"], timeout_s 560):
#   bash scripts/gpu/e2e-baseline.sh
# Here, no GPU (tiny shapes, CPU backend, /usr/bin/python3's torch):
#   bash scripts/gpu/e2e-baseline.sh --smoke
# Each part runs in its own process, one after the other (ours and PyTorch never share one):
# ours DiT (eager and as a CUDA graph), ours umT5, ours VAE f32 and bf16 (fresh processes: their peak
# is the VAE's), ours whole generation, PyTorch eager (ceiling,
# DiT, umT5, VAE), PyTorch torch.compile (last, with what time is left). Results to $OUT.
# E2E_LIMIT_S (default 540): the whole run; the compile gets what is left.
set -uo pipefail
t0=$(date +%s)
limit=${E2E_LIMIT_S:-540}
left() { echo $((limit - ($(date +%s) - t0))); }
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="${OUT:-$root/gpu-out}"
mkdir -p "$out"
log="$out/e2e.log"
: > "$log"
raw=/tmp/e2e-raw # the parts' files; $OUT takes at most 8 files, so they come back as one tar
rm -rf "$raw"
mkdir -p "$raw"
if [ "${1:-}" = "--smoke" ]; then
  py=/usr/bin/python3
  dev=cpu
  extra=(--tiny)
  export TESSERA_NATIVE_BUILD_DIR="${TESSERA_NATIVE_BUILD_DIR:-$root/packages/native/build/Release}"
  [ -d .gpu/node_modules ] || { echo "run scripts/gpu/prepare.sh first"; exit 1; }
else
  py=python3
  dev=cuda
  extra=()
  export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
  # The addon as committed: an uncommitted NCCL add-on in the tree is not part of this measurement.
  export TESSERA_NO_NCCL=1
  bash scripts/gpu/check.sh --build-only 2>&1 | tee -a "$log" || exit 1
  export PATH=/tmp:$PATH TESSERA_NATIVE_BUILD_DIR=/tmp/tessera-build/Release
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,memory.used --format=csv 2>&1 | tee -a "$log"
fi
export COMMIT="$(cat .gpu/commit 2>/dev/null || git describe --always --dirty 2>/dev/null || echo unknown)"
# ESM ignores NODE_PATH: run from a folder whose node_modules holds the packages.
cp benchmarks/e2e/ours.mjs .gpu/e2e-ours.mjs
# E2E_DIT_ONLY=1: the DiT step alone (ours, PyTorch eager + ceiling, torch.compile).
parts="dit t5 vae"; tpart=eager
[ "${E2E_DIT_ONLY:-0}" = 1 ] && { parts=dit; tpart=dit; }
# vae-bf16: the VAE decode in bf16 (the implicit-GEMM conv kernel's dtype), a fresh process too
# (GPU only: the CPU backend computes in f32).
[ "${E2E_DIT_ONLY:-0}" = 1 ] || [ $dev != cuda ] || parts="$parts vae-bf16"
# gen: the whole 50-step generation (benchmarks/gpu/wan-e2e.mjs, VAE in bf16, the step as a
# CUDA graph), a fresh process too; PyTorch's is composed from its stage timings in merge.py.
[ "${E2E_DIT_ONLY:-0}" = 1 ] || [ $dev != cuda ] || parts="$parts gen"
cp benchmarks/gpu/wan-e2e.mjs .gpu/wan-e2e.mjs
for part in $parts; do
  echo "== ours $part ($(($(date +%s) - t0))s)" | tee -a "$log"
  if [ "$part" = gen ]; then
    OUT="$raw" VAE_DTYPE=bf16 timeout 150 node .gpu/wan-e2e.mjs 2>&1 | tail -12 | tee -a "$log"
    echo "ours gen: rc=$?" | tee -a "$log"
    continue
  fi
  args=(--part "${part%-bf16}")
  [ "$part" = vae-bf16 ] && args+=(--vae-dtype bf16)
  timeout 150 node .gpu/e2e-ours.mjs "${args[@]}" --out "$raw/ours-$part.json" --device $dev "${extra[@]}" 2>&1 | tee -a "$log"
  echo "ours $part: rc=$?" | tee -a "$log"
done
[ $dev = cuda ] && nvidia-smi --query-gpu=memory.used --format=csv,noheader 2>&1 | tee -a "$log"
echo "== PyTorch eager ($(($(date +%s) - t0))s)" | tee -a "$log"
PYTHONUNBUFFERED=1 timeout 240 $py benchmarks/e2e/torch_e2e.py --part $tpart --out "$raw/torch.json" --device $dev \
  "${extra[@]}" 2>&1 | tee -a "$log"
echo "torch eager: rc=$?" | tee -a "$log"
b=$(($(left) - 15))
echo "== PyTorch torch.compile (limit ${b}s, $(($(date +%s) - t0))s so far)" | tee -a "$log"
if [ $b -gt 20 ]; then
  PYTHONUNBUFFERED=1 timeout $b $py benchmarks/e2e/torch_e2e.py --part compile --out "$raw/compile.json" --device $dev \
    "${extra[@]}" 2>&1 | tee -a "$log"
  rc=$?
  echo "torch compile: rc=$rc" | tee -a "$log"
  if [ $rc -ne 0 ]; then # keep what was saved (the compile time), and say why it stopped
    $py - "$raw/compile.json" "$rc" "$b" <<'PY'
import json, sys
p, rc, b = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    d = json.load(open(p))
except Exception:
    d = {}
s = d.setdefault("dit_compile", {})
if "ms" not in s:
    s.setdefault("error", f"timeout: not finished in the {b} s left in this call" if rc in (124, 137) else f"exit code {rc}")
json.dump(d, open(p, "w"), indent=1)
PY
  fi
else
  echo "{\"dit_compile\": {\"skipped\": \"no time left in the call (${b}s)\"}}" > "$raw/compile.json"
fi
[ $dev = cuda ] && nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv 2>&1 | tee -a "$log"
tar -C "$raw" -czf "$out/raw.tgz" . 2>/dev/null
$py benchmarks/e2e/merge.py --dir "$raw" --json "$out/e2e.json" --md "$out/e2e.md" --commit "$COMMIT" \
  --date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" 2>&1 | tee -a "$log"
echo "total $(($(date +%s) - t0))s" | tee -a "$log"
