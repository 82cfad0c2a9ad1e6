#!/usr/bin/env bash
# prepare: run HERE (no GPU needed), before any suite of scripts/gpu/ runs on a GPU host. Stages
# in .gpu/ (git-ignored; the device tool's carry [".gpu"]) what that host lacks: a Node binary,
# the built JS of @tessera/native and @tessera/core (and core's tokenizer library), the Node-API
# headers, and the commit the results will name. The addon itself is built there by the suites.
#   bash scripts/gpu/prepare.sh [--base REV] [--diffusers DIR] [--demo-init DIR [--vae-only | --dit-from-model]]
# --base REV: also stage commit REV's native sources, built JS and end-to-end scripts in .gpu/base,
#   for `e2e-bench.sh compare` (the same measurements of REV and of this tree on one machine).
# --diffusers DIR: also stage a diffusers source tree's src/ (DIR: a checkout, or a bare git
#   repository whose HEAD is used) as .gpu/diffusers-src.tar.xz, for goldens.sh (the GPU host has
#   no diffusers package).
# --demo-init DIR: also stage a demo-training checkpoint to resume from (.gpu/demo-ckpt): DIR is a
#   demo-training call's $OUT (DiT and text encoder in f32; the VAE goes in as float16, frozen after
#   the first call, since the carry is limited to 64 MiB).
#   --vae-only: just the VAE, to train it further (train.py --train-vae).
#   --dit-from-model: DIR's VAE with the shipped model's DiT and text encoder as the start (the
#   training suite copies them from the working tree there); pair it with train.py --rebase-dit
#   after a VAE-only call.
# Without --demo-init an earlier checkpoint is removed, so it does not travel with other suites.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

init=""
mode=""
base=""
diffusers=""
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="${2:?--base takes a commit}"; shift ;;
    --diffusers) diffusers="${2:?--diffusers takes a diffusers checkout}"; shift ;;
    --demo-init) init="${2:?--demo-init takes the folder of the files a demo-training call wrote}"; shift ;;
    --vae-only | --dit-from-model) mode="$1" ;;
    *) echo "prepare.sh: unknown option '$1' (see the comment at the top of scripts/gpu/prepare.sh)"; exit 2 ;;
  esac
  shift
done
[ -z "$mode" ] || [ -n "$init" ] || { echo "prepare.sh: $mode goes with --demo-init DIR"; exit 2; }
[ -z "$init" ] || init="$(cd "$init" && pwd)"

# .gitignore's /.gpu/ matches only a folder: make it before asking.
mkdir -p .gpu
git check-ignore -q .gpu || { echo "prepare.sh: .gpu/ must be git-ignored (see .gitignore)"; exit 1; }
[ -f .gpu/node.xz ] || xz -T2 -6 -k -c "$(command -v node)" > .gpu/node.xz
pnpm --filter @tessera/native run build:ts > /dev/null
pnpm --filter @tessera/core run build > /dev/null
rm -rf .gpu/native-dist .gpu/node-addon-api .gpu/node-api-headers .gpu/node_modules .gpu/demo-ckpt
cp -rL packages/native/dist .gpu/native-dist
cp -rL packages/native/node_modules/node-addon-api .gpu/node-addon-api
cp -rL packages/native/node_modules/node-api-headers .gpu/node-api-headers
rm -rf .gpu/node-api-headers/def .gpu/node-addon-api/tools
# The JS packages for the suites' Node scripts (benchmarks/gpu, benchmarks/e2e, the dataset renderer).
mkdir -p .gpu/node_modules/@tessera .gpu/node_modules/@huggingface
for p in native core; do
  mkdir -p .gpu/node_modules/@tessera/$p
  cp packages/$p/package.json .gpu/node_modules/@tessera/$p/
  cp -rL packages/$p/dist .gpu/node_modules/@tessera/$p/dist
done
find .gpu/node_modules -name '*.map' -delete
cp -rL packages/core/node_modules/@huggingface/tokenizers .gpu/node_modules/@huggingface/tokenizers

if [ -n "$init" ]; then
  ck=.gpu/demo-ckpt
  mkdir -p $ck
  cp "$init"/train.json $ck/
  (cd training && /usr/bin/python3 - "$init/vae" "../$ck/vae" << 'PY'
import sys
import torch
from demo.common import load_sharded, save_sharded
save_sharded(load_sharded(sys.argv[1]), sys.argv[2], dtype=torch.float16)
PY
  )
  case "$mode" in
    --vae-only) ;;
    --dit-from-model)
      touch $ck/dit-from-model
      # DIR (a VAE-only call) has dit_steps 0: continue the count from the shipped model.
      /usr/bin/python3 - $ck/train.json packages/core/models/tessera-world/tessera.json << 'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["dit_steps"] = t.get("dit_steps") or json.load(open(sys.argv[2]))["training"]["ditSteps"]
json.dump(t, open(sys.argv[1], "w"))
PY
      ;;
    *) cp "$init"/dit-*.safetensors "$init"/t5-*.safetensors $ck/ ;;
  esac
fi
git describe --always --dirty > .gpu/commit

if [ -n "$diffusers" ]; then
  if [ -d "$diffusers/src/diffusers" ]; then
    tar -C "$diffusers" -cf - src | xz -T2 -6 > .gpu/diffusers-src.tar.xz
  else
    git -C "$diffusers" archive HEAD src | xz -T2 -6 > .gpu/diffusers-src.tar.xz
  fi
fi

# The baseline of `e2e-bench.sh compare`: REV's addon sources (built there), its JS packages and
# its end-to-end scripts, each built in a throwaway worktree of REV.
rm -rf .gpu/base
if [ -n "$base" ]; then
  rev=$(git rev-parse --verify "$base^{commit}")
  wt=$(mktemp -d /tmp/tessera-base-XXXXXX)
  git worktree add -q --detach "$wt" "$rev"
  (cd "$wt" && pnpm install --frozen-lockfile --prefer-offline > /dev/null &&
    pnpm --filter @tessera/native run build:ts > /dev/null && pnpm --filter @tessera/core run build > /dev/null)
  mkdir -p .gpu/base/tree .gpu/base/node_modules/@tessera .gpu/base/node_modules/@huggingface
  git archive "$rev" packages/native native | tar -x -C .gpu/base/tree
  for p in native core; do
    mkdir -p .gpu/base/node_modules/@tessera/$p
    cp "$wt/packages/$p/package.json" .gpu/base/node_modules/@tessera/$p/
    cp -rL "$wt/packages/$p/dist" .gpu/base/node_modules/@tessera/$p/dist
  done
  cp -rL "$wt/packages/core/node_modules/@huggingface/tokenizers" .gpu/base/node_modules/@huggingface/
  find .gpu/base/node_modules -name '*.map' -delete
  cp "$wt/benchmarks/e2e/ours.mjs" "$wt/benchmarks/gpu/wan-e2e.mjs" .gpu/base/
  git rev-parse --short "$rev" > .gpu/base/commit
  git worktree remove --force "$wt"
fi

# What travels: the tracked tree plus .gpu/, 64 MiB at most.
kib_tree=$(git ls-files -z | du -c --files0-from=- -k 2> /dev/null | tail -1 | cut -f1)
kib_gpu=$(du -sk .gpu | cut -f1)
echo ".gpu/: $((kib_gpu / 1024)) MiB; with the tracked tree $(((kib_tree + kib_gpu) / 1024)) MiB of the 64 MiB a call carries"
[ $((kib_tree + kib_gpu)) -lt $((64 * 1024)) ] || echo "prepare.sh: too large to travel; stage a smaller checkpoint (--dit-from-model)"
