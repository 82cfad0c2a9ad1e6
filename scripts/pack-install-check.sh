#!/usr/bin/env bash
# Checks that the packages install and run from their packed tarballs, as on a machine with no
# checkout: packs @tessera/native, core, server and cli (pnpm pack: workspace ranges become
# versions, native/ sources go into @tessera/native), installs the four tarballs with npm into an
# empty folder (only the npm registry is reached), which builds the addon from source, and runs
# `tessera generate` there with the bundled demo model. CPU only: TESSERA_NO_CUDA=1, so the
# install needs no nvcc. Run from anywhere after `pnpm build`; KEEP=1 keeps the folder.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/tessera-pack-check.XXXXXX)"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tarballs" "$work/app"
fail() { echo "pack-install-check: $*" >&2; exit 1; }

for p in native core server cli; do
  (cd "$root/packages/$p" && pnpm pack --pack-destination "$work/tarballs" > /dev/null)
done
tarballs=("$work"/tarballs/*.tgz)
[ ${#tarballs[@]} = 4 ] || fail "expected 4 tarballs, got ${#tarballs[@]}"
tar -tzf "$work"/tarballs/tessera-native-*.tgz > "$work/native.txt"
tar -tzf "$work"/tarballs/tessera-core-*.tgz > "$work/core.txt"
# Built from source at install time: no prebuilt addon or CUDA library in the tarball, the sources in it.
if grep -E '^package/build/' "$work/native.txt"; then fail "@tessera/native's tarball carries a build/ folder"; fi
grep -x 'package/native/include/tessera/backend.h' "$work/native.txt" > /dev/null ||
  fail "@tessera/native's tarball lacks the native/ sources"
if grep 'test-fixtures' "$work/core.txt"; then fail "@tessera/core's tarball carries test fixtures"; fi
grep -x 'package/models/tessera-world/model_index.json' "$work/core.txt" > /dev/null ||
  fail "@tessera/core's tarball lacks the demo model"
[ ! -e "$root/packages/native/native" ] || fail "postpack left packages/native/native behind"

echo "pack-install-check: npm install of ${tarballs[*]##*/} (builds the addon)"
cd "$work/app"
echo '{"name": "pack-install-check", "private": true}' > package.json
TESSERA_NO_CUDA=1 npm install --no-audit --no-fund --loglevel=error "${tarballs[@]}"
[ -f node_modules/@tessera/native/build/Release/tessera.node ] || fail "the install did not build the addon"

out="$work/x.gif"
npx --no tessera generate "red ball going right" -o "$out"
[ -s "$out" ] || fail "tessera generate wrote no $out"
[ "$(head -c 6 "$out")" = GIF89a ] || fail "$out is not a GIF"
echo "pack-install-check: ok ($(wc -c < "$out") bytes of GIF from the packed packages)"
