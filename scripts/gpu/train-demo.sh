#!/usr/bin/env bash
# Run ON THE GPU HOST (after prepare-demo.sh here): renders the world dataset with
# Node (the one definition in @tessera/core's world), then trains the demo model
# (training/demo/train.py). Checkpoints and the log go to $OUT; pass the previous
# call's files back with --init to resume.
#   bash scripts/gpu/train-demo.sh [train.py args: --init .gpu-demo/demo-ckpt --vae-minutes M --dit-minutes M --decay ...]
# A call made while the machine is still warm can resume from the last one's files
# without carrying them: --init /tmp/keep.
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
# A machine kept warm between calls keeps /tmp: the dataset is rendered once per machine.
if [ ! -f /tmp/world/.complete ]; then
  rm -rf /tmp/world
  node training/demo/make_dataset.mjs --out /tmp/world --count "${DEMO_CLIPS:-32000}" --seed "${DEMO_SEED:-1}" \
    --workers 16 --world .gpu-demo/core-dist/world
  touch /tmp/world/.complete
fi
# The shipped model's DiT and text encoder (float16, already in the working tree) as the
# starting point, when prepare-demo.sh marked the checkpoint so: it keeps the carry small.
ck=.gpu-demo/demo-ckpt
if [ -f "$ck/dit-from-model" ]; then
  cp packages/core/models/tessera-world/transformer/diffusion_pytorch_model.safetensors "$ck/dit-000.safetensors"
  cp packages/core/models/tessera-world/text_encoder/model.safetensors "$ck/t5-000.safetensors"
fi
PYTHONPATH=training PYTHONUNBUFFERED=1 python3 -m demo.train --data /tmp/world --out "$out" "$@" 2>&1 | tee "$out/train.log" | grep -v '"stage": "dit", "step"' | tail -40
# Kept on the machine for a next call made while it is still warm (--init /tmp/keep).
rm -rf /tmp/keep && mkdir -p /tmp/keep && cp "$out"/*.safetensors "$out"/train.json /tmp/keep/
