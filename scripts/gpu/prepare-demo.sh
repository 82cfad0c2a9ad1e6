#!/usr/bin/env bash
# Run HERE (no GPU): packs what scripts/gpu/train-demo.sh needs into .gpu-demo/ (git-ignored,
# for the device tool's `carry`): Node, the built @tessera/core (its world renders the
# dataset), and, with --init DIR, a checkpoint to resume from (the VAE as float16:
# frozen after the first call, and the carry is limited to 64 MiB).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
grep -qx '/.gpu-demo/' .git/info/exclude 2>/dev/null || echo '/.gpu-demo/' >> .git/info/exclude
mkdir -p .gpu-demo
[ -f .gpu-demo/node.xz ] || xz -T2 -6 -k -c "$(command -v node)" > .gpu-demo/node.xz
pnpm --filter @tessera/core run build >/dev/null
rm -rf .gpu-demo/core-dist .gpu-demo/demo-ckpt .gpu-demo/native-dist .gpu-demo/node_modules .gpu-demo/node-addon-api .gpu-demo/node-api-headers
cp -rL packages/core/dist .gpu-demo/core-dist
find .gpu-demo/core-dist -name '*.map' -delete
# --init DIR: resume from a trainer's files (DiT and text encoder in f32, VAE in f16);
# --init DIR --vae-only: just the VAE, to train it further (--train-vae); in f16, since the
#   tracked tree (the shipped model is 22 MB of it) and the carry share the 64 MiB limit;
# --init DIR --dit-from-model: DIR's VAE (f16) with the shipped model's DiT and text encoder
#   as the start (train-demo.sh copies them from the working tree there); pair it with
#   train.py --rebase-dit after a VAE-only call.
if [ "${1:-}" = "--init" ]; then
  mkdir -p .gpu-demo/demo-ckpt
  cp "$2"/train.json .gpu-demo/demo-ckpt/
  (cd training && /usr/bin/python3 -c "
import torch
from demo.common import load_sharded, save_sharded
save_sharded(load_sharded('$2/vae'), '../.gpu-demo/demo-ckpt/vae', dtype=torch.float16)
")
  case "${3:-}" in
    --vae-only) ;;
    --dit-from-model)
      touch .gpu-demo/demo-ckpt/dit-from-model
      # DIR (a VAE-only call) has dit_steps 0: continue the count from the shipped model.
      /usr/bin/python3 - .gpu-demo/demo-ckpt/train.json packages/core/models/tessera-world/tessera.json <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["dit_steps"] = t.get("dit_steps") or json.load(open(sys.argv[2]))["training"]["ditSteps"]
json.dump(t, open(sys.argv[1], "w"))
PY
      ;;
    *) cp "$2"/dit-*.safetensors "$2"/t5-*.safetensors .gpu-demo/demo-ckpt/ ;;
  esac
fi
git describe --always --dirty > .gpu-demo/commit
du -sh .gpu-demo
