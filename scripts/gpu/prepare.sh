#!/usr/bin/env bash
# Run HERE (no GPU): packs what the GPU host lacks into .gpu/ (git-ignored), for
# the device tool's `carry`: a Node binary, the built JS of @tessera/native, and
# the Node-API headers. The addon itself is built THERE by check.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
mkdir -p .gpu
[ -f .gpu/node.xz ] || xz -T2 -6 -k -c "$(command -v node)" > .gpu/node.xz
pnpm --filter @tessera/native run build:ts >/dev/null
rm -rf .gpu/native-dist .gpu/node-addon-api .gpu/node-api-headers .gpu/benchmarks
cp -rL packages/native/dist .gpu/native-dist
cp -rL packages/native/node_modules/node-addon-api .gpu/node-addon-api
cp -rL packages/native/node_modules/node-api-headers .gpu/node-api-headers
rm -rf .gpu/node-api-headers/def .gpu/node-addon-api/tools
# The JS packages for benchmarks that import @tessera/core (benchmarks/gpu/*.mjs).
pnpm --filter @tessera/core run build >/dev/null
rm -rf .gpu/node_modules
mkdir -p .gpu/node_modules/@tessera .gpu/node_modules/@huggingface
for p in native core; do
  mkdir -p .gpu/node_modules/@tessera/$p
  cp packages/$p/package.json .gpu/node_modules/@tessera/$p/
  cp -rL packages/$p/dist .gpu/node_modules/@tessera/$p/dist
done
cp -rL packages/core/node_modules/@huggingface/tokenizers .gpu/node_modules/@huggingface/tokenizers
git describe --always --dirty > .gpu/commit
du -sh .gpu
