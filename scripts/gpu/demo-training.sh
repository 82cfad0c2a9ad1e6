#!/usr/bin/env bash
# demo-training: trains the bundled demo model (training/demo, docs/models.md). ON THE GPU HOST,
# after `bash scripts/gpu/prepare.sh [--demo-init DIR ...]` here (device tool: carry [".gpu"],
# timeout_s 600). Renders the world dataset with Node (the one definition, in @tessera/core's
# world), then runs training/demo/train.py, which stops in time to save its files within
# DEMO_BUDGET_S (default 560) of the start. Checkpoints and train.log go to $OUT; the next call
# resumes from them (`prepare.sh --demo-init DIR` here, train.py's --init .gpu/demo-ckpt there).
#   bash scripts/gpu/demo-training.sh [train.py args: --init .gpu/demo-ckpt --vae-minutes M --dit-minutes M --decay ...]
# A call made while the machine is still warm can resume from the last one's files without
# carrying them: --init /tmp/keep. DEMO_CLIPS (default 32000) and DEMO_SEED (default 1) set the
# dataset.
suite=demo-training
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
export DEMO_DEADLINE=$((t0 + ${DEMO_BUDGET_S:-560}))
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$log"

# A machine kept warm between calls keeps /tmp: the dataset is rendered once per machine.
if [ ! -f /tmp/world/.complete ]; then
  rm -rf /tmp/world
  node training/demo/make_dataset.mjs --out /tmp/world --count "${DEMO_CLIPS:-32000}" --seed "${DEMO_SEED:-1}" \
    --workers "$(nproc)" --world .gpu/node_modules/@tessera/core/dist/world >> "$log" 2>&1 || { pack_logs; exit 1; }
  touch /tmp/world/.complete
fi
# The shipped model's DiT and text encoder (float16, in the working tree) as the starting point,
# when prepare.sh --demo-init DIR --dit-from-model marked the checkpoint so: it keeps the carry small.
ck=.gpu/demo-ckpt
if [ -f "$ck/dit-from-model" ]; then
  cp packages/core/models/tessera-world/transformer/diffusion_pytorch_model.safetensors "$ck/dit-000.safetensors"
  cp packages/core/models/tessera-world/text_encoder/model.safetensors "$ck/t5-000.safetensors"
fi
PYTHONPATH=training PYTHONUNBUFFERED=1 python3 -m demo.train --data /tmp/world --out "$out" "$@" 2>&1 |
  tee "$out/train.log" | grep -v '"stage": "dit", "step"' | tail -40
status=${PIPESTATUS[0]}
# Kept on the machine for a next call made while it is still warm (--init /tmp/keep).
rm -rf /tmp/keep && mkdir -p /tmp/keep && cp "$out"/*.safetensors "$out"/train.json /tmp/keep/ 2> /dev/null
pack_logs
exit "$status"
