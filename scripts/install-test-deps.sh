#!/usr/bin/env bash
# What `pnpm test` needs besides Node.js, from Debian or Ubuntu packages, installed only
# where missing: a C++ compiler, CMake and make (the native addon), ffmpeg (MP4 and WebM),
# redis-server (the scale-out tests start their own) and Chromium (the web page's tests
# drive it). Without them those tests skip, and under CI=true they fail. Needs root or sudo.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x "${TESSERA_CHROMIUM:-/usr/bin/chromium}" ] || need+=(chromium)
((${#need[@]})) || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: missing ${need[*]}; install them with your package manager (no apt-get here)" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "install-test-deps: missing ${need[*]}; run as root (or install sudo) to install them" >&2
    exit 1
  }
  sudo=(sudo)
fi
echo "install-test-deps: installing ${need[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}"
