#!/usr/bin/env bash
# e2e-bench: Wan2.1-T2V-1.3B end to end (random weights, 832x480, 81 frames, bf16), ours against
# PyTorch on one GPU (benchmarks/e2e/README.md). ON THE GPU HOST, after `bash scripts/gpu/prepare.sh`
# here (device tool: carry [".gpu"], timeout_s 600); or here with --smoke (no GPU: tiny configs on
# the CPU backend, the torch of /usr/bin/python3; baseline and dit only):
#   bash scripts/gpu/e2e-bench.sh [PART] [--smoke]
# PART (default baseline):
#   baseline    each part in a process of its own, one after the other: ours DiT step (eager, then
#               captured as a CUDA graph), umT5, VAE decode f32 and bf16, the whole 50-step generation;
#               PyTorch eager (GEMM ceiling, DiT, umT5, VAE) and torch.compile last, in what time is
#               left. $OUT: e2e-<gpu>.json, e2e-<gpu>.md.                                 (~4.5 min)
#   dit         the DiT step alone, ours and PyTorch (eager, compile). $OUT: e2e-dit-<gpu>.{json,md}.
#   generation  one whole generation (benchmarks/gpu/wan-e2e.mjs; VAE_DTYPE, default bf16, STEPS,
#               W, H, F, CUDA_GRAPH=0 as it reads them). $OUT: generation-<gpu>.json.
#   vae         the bf16 VAE decode alone, ours, in two fresh processes. $OUT: vae-decode-bf16-<gpu>.json.
#   graph       the CUDA-graph step: `check.sh --no-sanitizer` (conformance, runtime and golden checks),
#               the pipeline's graph-vs-eager generations, the demo model with and without the graph,
#               the DiT step eager and as a graph. $OUT: graph-checks-<gpu>.json and check's files.
#   compare     A/B on one machine: this tree against the commit staged by `prepare.sh --base REV`
#               (.gpu/base), both built here: this tree's conformance suite, then, while LIMIT_S
#               allows, the DiT step (eager and graph), the bf16 VAE decode, the DiT step again and a
#               whole generation (VAE bf16) of each, base first. $OUT: conformance-<gpu>.json,
#               e2e-compare-<gpu>.json.                                          (~9 min in all)
#   memory      the DiT step's peak memory (and time) at 480p/81, 480p/161 and 720p/81 frames, ours
#               (benchmarks/gpu/dit-memory.mjs: batch 2, bf16, random 1.3B weights, each shape a fresh
#               process; also the guided step and its CUDA graph), beside diffusers' own
#               WanTransformer3DModel (benchmarks/gpu/dit_memory_diffusers.py, when prepare.sh staged
#               --diffusers DIR) and, last and while time is left, base's (prepare.sh --base REV;
#               built beside this tree). $OUT: dit-memory-<gpu>.json.                  (~5 min)
# Every part also leaves e2e-bench-logs.tgz (logs and each process's own JSON).
# LIMIT_S (default 540): the run's time; torch.compile gets what is left.
part=baseline
smoke=0
for a in "$@"; do
  case "$a" in
    --smoke) smoke=1 ;;
    baseline | dit | generation | vae | graph | compare | memory) part=$a ;;
    *) echo "e2e-bench.sh: unknown argument '$a'; use baseline, dit, generation, vae, graph, compare or memory, and --smoke"; exit 2 ;;
  esac
done
suite=e2e-bench
LIMIT_S=${LIMIT_S:-540}
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

raw="$logs/raw" # each process's own JSON
mkdir -p "$raw"
if [ $smoke -eq 1 ]; then
  case "$part" in baseline | dit) ;; *) echo "e2e-bench.sh: --smoke runs baseline and dit only"; exit 2 ;; esac
  py=/usr/bin/python3
  dev=cpu
  extra=(--tiny)
  export TESSERA_NATIVE_BUILD_DIR="$root/packages/native/build/Release"
  [ -d .gpu/node_modules ] || { echo "run scripts/gpu/prepare.sh first"; exit 1; }
else
  py=python3
  dev=cuda
  extra=()
  export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
  if [ "$part" = compare ] || { [ "$part" = memory ] && [ -f .gpu/base/commit ]; }; then
    [ -f .gpu/base/commit ] || { echo "e2e-bench.sh compare: stage a baseline first: prepare.sh --base REV"; exit 1; }
    # The two builds side by side: nvcc's long files leave most cores idle in either alone.
    export TESSERA_NO_NCCL=1
    build_native_at .gpu/base/tree/packages/native "$build_dir-base" > "$logs/build-base.out" 2>&1 &
    base_build=$!
    build_native || { pack_logs; exit 1; }
    wait $base_build || { cat "$logs/build-base.out"; pack_logs; exit 1; }
    cat "$logs/build-base.out"
  elif [ "$part" = graph ]; then
    # check.sh builds the addon (for these archs, NCCL add-on off) and writes its results to $OUT.
    bash scripts/gpu/check.sh --no-sanitizer 2>&1 | tail -30 | tee -a "$log"
  else
    build_native || { pack_logs; exit 1; }
  fi
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,memory.used --format=csv 2>&1 | tee -a "$log"
fi
stage_js benchmarks/e2e/ours.mjs benchmarks/gpu/wan-e2e.mjs benchmarks/gpu/step-graph-check.mjs benchmarks/gpu/demo-graph.mjs \
  benchmarks/gpu/dit-memory.mjs

# ours_part NAME [ours.mjs args...]: one of ours.mjs's parts in a fresh process; $raw/ours-NAME.json.
ours_part() {
  local name=$1
  shift
  say "== ours $name ($(($(date +%s) - t0))s)"
  timeout 150 node .gpu/ours.mjs "$@" --out "$raw/ours-$name.json" --device $dev "${extra[@]}" >> "$log" 2>&1
  say "ours $name: rc=$?"
}

# generation: one whole generation in a fresh process; $raw/wan-e2e.json.
generation() {
  say "== ours whole generation, VAE ${VAE_DTYPE:-bf16} ($(($(date +%s) - t0))s)"
  OUT="$raw" VAE_DTYPE="${VAE_DTYPE:-bf16}" timeout 200 node .gpu/wan-e2e.mjs > "$logs/wan-e2e.log" 2>&1
  say "ours generation: rc=$?"
  tail -12 "$logs/wan-e2e.log" | tee -a "$log"
}

# torch_e2e NAME LIMIT ARGS...: torch_e2e.py's part in a process of its own; $raw/NAME.json.
torch_e2e() {
  local name=$1 secs=$2
  shift 2
  PYTHONUNBUFFERED=1 timeout "$secs" $py benchmarks/e2e/torch_e2e.py "$@" --out "$raw/$name.json" --device $dev \
    "${extra[@]}" >> "$log" 2>&1
}

# torch_compile: torch.compile last, in what time is left; its record says why it stopped, if it did.
torch_compile() {
  local b=$(($(left) - 15)) rc
  say "== PyTorch torch.compile (limit ${b}s)"
  if [ $b -le 20 ]; then
    echo "{\"dit_compile\": {\"skipped\": \"no time left in the call (${b}s)\"}}" > "$raw/compile.json"
    return
  fi
  torch_e2e compile "$b" --part compile
  rc=$?
  say "torch compile: rc=$rc"
  [ $rc -eq 0 ] && return
  $py - "$raw/compile.json" "$rc" "$b" << 'PY'
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
}

# merge NAME: benchmarks/e2e/merge.py over $raw into $OUT/NAME-<gpu>.{json,md}.
merge() {
  $py benchmarks/e2e/merge.py --dir "$raw" --json "$out/$1-$gpu.json" --md "$out/$1-$gpu.md" --commit "$COMMIT" \
    --date "$(now)" 2>&1 | tee -a "$log"
}

# side NAME: the environment and scripts of one side of `compare` ("base" or "this").
side() {
  if [ "$1" = base ]; then
    export TESSERA_NATIVE_BUILD_DIR="$build_dir-base/Release" COMMIT_SIDE="$(cat .gpu/base/commit)"
    js=.gpu/base
  else
    export TESSERA_NATIVE_BUILD_DIR="$build_dir/Release" COMMIT_SIDE="$COMMIT"
    js=.gpu
  fi
}

case "$part" in
  compare)
    # Stages in order of worth, each run only while LIMIT_S leaves it time: this tree's
    # conformance (same results), then the DiT step, the bf16 VAE decode and a whole generation
    # of each side (same speed), base first in each pair.
    if conformance all ""; then :; fi
    cp "$logs/conf-all.json" "$out/conformance-$gpu.json" 2> /dev/null
    parts=(--part conformance="$logs/conf-all.json")
    pair() { # NAME SECONDS-IT-NEEDS SHELL-COMMAND (run per side with $js and $OUT set)
      local name=$1 need=$2 cmd=$3
      if [ "$(left)" -lt "$need" ]; then
        say "== $name: skipped ($(left)s left, needs ${need}s)"
        return
      fi
      for s in base this; do
        side $s
        say "== $s ($COMMIT_SIDE) $name ($(($(date +%s) - t0))s)"
        mkdir -p "$raw/$s-$name"
        js=$js OUT="$raw/$s-$name" COMMIT="$COMMIT_SIDE" timeout 200 bash -c "$cmd" > "$logs/$s-$name.log" 2>&1
        say "$s $name: rc=$?"
        tail -3 "$logs/$s-$name.log" | tee -a "$log"
        parts+=(--part "$s.$name=$raw/$s-$name/result.json")
      done
    }
    # shellcheck disable=SC2016 # expanded by the bash -c of each side
    dit='node "$js/ours.mjs" --part dit --out "$OUT/result.json" --device cuda'
    # shellcheck disable=SC2016
    pair dit1 80 "$dit"
    # shellcheck disable=SC2016
    pair vae 70 'node "$js/ours.mjs" --part vae --vae-dtype bf16 --out "$OUT/result.json" --device cuda'
    pair dit2 80 "$dit"
    # shellcheck disable=SC2016
    pair generation 170 'VAE_DTYPE=bf16 node "$js/wan-e2e.mjs" && mv "$OUT/wan-e2e.json" "$OUT/result.json"'
    results merge "$out/e2e-compare-$gpu.json" date="$(now)" device="$gpu_name" commit="$COMMIT" \
      baseCommit="$(cat .gpu/base/commit)" command="bash scripts/gpu/e2e-bench.sh compare" \
      what="this tree's conformance; Wan2.1-1.3B DiT step (batch 2, 832x480x81, bf16; eager and CUDA graph), bf16 VAE decode (81x480x832) and whole 50-step generation (VAE bf16) of this tree and of base, built and run on one machine, base first in each pair" \
      "${parts[@]}"
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const f = (x) => (x === undefined ? "-" : x.toFixed(1));
      for (const s of ["base", "this"]) {
        const d = [r[s]?.dit1, r[s]?.dit2];
        console.log(`${s}: DiT step ${d.map((x) => f(x?.ms?.median)).join(" / ")} ms eager, ${d.map((x) => f(x?.graph?.median)).join(" / ")} ms graph; VAE bf16 ${f(r[s]?.vae?.ms?.median)} ms; generation ${f(r[s]?.generation?.timings?.total)} ms (step ${f(r[s]?.generation?.timings?.step)} ms, decode ${f(r[s]?.generation?.timings?.decode)} ms)`);
      }' "$out/e2e-compare-$gpu.json" | tee -a "$log"
    ;;
  baseline | dit)
    if [ "$part" = dit ]; then
      ours_part dit --part dit
      tpart=dit
    else
      ours_part dit --part dit
      ours_part t5 --part t5
      ours_part vae --part vae
      # bf16 decode and the whole generation: GPU only (the CPU backend computes in f32).
      if [ $dev = cuda ]; then
        ours_part vae-bf16 --part vae --vae-dtype bf16
        generation
      fi
      tpart=eager
    fi
    say "== PyTorch eager ($(($(date +%s) - t0))s)"
    torch_e2e torch 240 --part $tpart
    say "torch eager: rc=$?"
    torch_compile
    [ $dev = cuda ] && nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv 2>&1 | tee -a "$log"
    if [ "$part" = dit ]; then merge e2e-dit; else merge e2e; fi
    ;;
  memory)
    parts=()
    say "== ours: DiT step peak memory ($(($(date +%s) - t0))s)"
    timeout 300 node .gpu/dit-memory.mjs --device $dev --out "$raw/ours-memory.json" 2>&1 | tee -a "$log"
    [ -f "$raw/ours-memory.json" ] && parts+=(--part ours="$raw/ours-memory.json")
    if [ -f .gpu/diffusers-src.tar.xz ] && [ "$(left)" -gt 90 ]; then
      say "== diffusers WanTransformer3DModel ($(($(date +%s) - t0))s)"
      ref=/tmp/tessera-diffusers-src
      rm -rf "$ref" && mkdir -p "$ref" && tar -xJf .gpu/diffusers-src.tar.xz -C "$ref"
      PYTHONUNBUFFERED=1 timeout $(($(left) - 20)) $py benchmarks/gpu/dit_memory_diffusers.py --diffusers "$ref/src" \
        --out "$raw/diffusers-memory.json" 2>&1 | tee -a "$log"
      [ -f "$raw/diffusers-memory.json" ] && parts+=(--part diffusers="$raw/diffusers-memory.json")
    else
      say "== diffusers: not staged (prepare.sh --diffusers DIR) or no time left ($(left)s)"
    fi
    if [ -f .gpu/base/commit ] && [ "$(left)" -gt 120 ]; then
      say "== base $(cat .gpu/base/commit): DiT step peak memory ($(($(date +%s) - t0))s)"
      cp benchmarks/gpu/dit-memory.mjs .gpu/base/
      TESSERA_NATIVE_BUILD_DIR="$build_dir-base/Release" timeout $(($(left) - 10)) node .gpu/base/dit-memory.mjs \
        --device $dev --out "$raw/base-memory.json" 2>&1 | tee -a "$log"
      [ -f "$raw/base-memory.json" ] && parts+=(--part base="$raw/base-memory.json")
    fi
    results merge "$out/dit-memory-$gpu.json" date="$(now)" device="$gpu_name" commit="$COMMIT" \
      baseCommit="$(cat .gpu/base/commit 2> /dev/null || echo none)" command="bash scripts/gpu/e2e-bench.sh memory" \
      what="Wan2.1-1.3B DiT step (random weights, bf16, batch 2 = both guidance branches, 512 text tokens): peak memory and time at 832x480x81, 832x480x161 and 1280x720x81; ours (forward, guided step, CUDA graph replay), diffusers' WanTransformer3DModel forward, base's" \
      "${parts[@]}"
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const g = (b) => (b === undefined ? "-" : (b / 2 ** 30).toFixed(2));
      const f = (x) => (x == null ? "-" : x.toFixed(0));
      console.log("shape     | ours peak GiB (act) | ours ms (graph) | diffusers peak GiB (act) | diffusers ms | base peak GiB (ms)");
      for (const s of ["480p81", "480p161", "720p81"]) {
        const o = r.ours?.shapes?.[s], d = r.diffusers?.shapes?.[s], b = r.base?.shapes?.[s];
        console.log(`${s.padEnd(9)} | ${g(o?.forward?.peak)} (${g(o?.forward?.activationBytes)}) | ${f(o?.forward?.ms)} (${f(o?.graphMs)}) | ${g(d?.peak)} (${g(d?.activationBytes)}) | ${f(d?.ms)} | ${g(b?.forward?.peak)} (${f(b?.forward?.ms)})`);
      }' "$out/dit-memory-$gpu.json" | tee -a "$log"
    ;;
  generation)
    generation
    cp "$raw/wan-e2e.json" "$out/generation-$gpu.json"
    ;;
  vae)
    for i in 1 2; do ours_part "vae-bf16-$i" --part vae --vae-dtype bf16; done
    results merge "$out/vae-decode-bf16-$gpu.json" date="$(now)" device="$gpu_name" commit="$COMMIT" \
      what="Wan-VAE decode in bf16 (21x60x104 latent -> 81x480x832, chunked), ours, two fresh processes" \
      command="bash scripts/gpu/e2e-bench.sh vae" \
      --part runs.1="$raw/ours-vae-bf16-1.json" --part runs.2="$raw/ours-vae-bf16-2.json"
    ;;
  graph)
    say "== the pipeline's step graph against eager, the demo model with and without it"
    OUT="$raw" timeout 120 node .gpu/step-graph-check.mjs >> "$log" 2>&1
    say "step-graph-check: rc=$?"
    OUT="$raw" timeout 120 node .gpu/demo-graph.mjs packages/core/models/tessera-world >> "$log" 2>&1
    say "demo-graph: rc=$?"
    ours_part dit --part dit
    results merge "$out/graph-checks-$gpu.json" date="$(now)" device="$gpu_name" commit="$COMMIT" \
      what="CUDA-graph step correctness and speed (bash scripts/gpu/e2e-bench.sh graph): conformance, runtime and golden checks, the pipeline's graph-vs-eager generations, the demo model with and without the graph, the Wan2.1-1.3B DiT step eager vs graph" \
      --part conformance="$out/conformance-$gpu.json" --part runtime="$out/runtime-$gpu.json" \
      --part golden.bf16="$out/golden-$gpu-bf16.json" --part golden.f32="$out/golden-$gpu-f32.json" \
      --part pipeline="$raw/step-graph-check.json" --part demoModel="$raw/demo-graph.json" \
      --part ditStep="$raw/ours-dit.json"
    ;;
esac
pack_logs
say "total $(($(date +%s) - t0))s"
