#!/usr/bin/env bash
# Run ON THE GPU HOST (after prepare-demo.sh here): renders the world dataset with
# Node (the one definition in @tessera/core's world), then trains the demo model
# (training/demo/train.py). Checkpoints and the log go to $OUT; pass the previous
# call's files back with --init to resume.
#   bash scripts/gpu/train-demo.sh [train.py args: --init .gpu-demo/demo-ckpt --vae-minutes M --dit-minutes M --decay ...]
# Env: DEMO_CLIPS (default 32000), DEMO_SEED (default 1), DEMO_BUDGET_S (default 560:
# the trainer stops the DiT in time to save within that many seconds of the start).
set -euo pipefail
start=$(date +%s)
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="${OUT:-$root/gpu-out}"
mkdir -p "$out"
export DEMO_DEADLINE=$(( start + ${DEMO_BUDGET_S:-560} ))
if ! command -v node >/dev/null 2>&1; then
  xz -d -T8 -c .gpu-demo/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
node training/demo/make_dataset.mjs --out /tmp/world --count "${DEMO_CLIPS:-32000}" --seed "${DEMO_SEED:-1}" \
  --workers 16 --world .gpu-demo/core-dist/world
PYTHONPATH=training PYTHONUNBUFFERED=1 python3 -m demo.train --data /tmp/world --out "$out" "$@" 2>&1 | tee "$out/train.log" | grep -v '"stage": "dit", "step"' | tail -40
