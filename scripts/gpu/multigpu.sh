#!/usr/bin/env bash
# Multi-GPU (issue #8) on a host with several GPUs: build with NCCL, check N ranks against one,
# and time one denoising step on 1/2/4/8 GPUs, ours and PyTorch + NCCL Ulysses side by side.
#
# UNRUN: written without a multi-GPU machine (none was lent); every part was checked only by
# reading and by the CPU smoke runs named below. Expect to fix small things on first contact.
#
# HERE first: bash scripts/gpu/prepare.sh   (then the device tool: carry [".gpu"], a multi-GPU kind)
# ON THE GPU HOST, one part per call (a device call has 10 minutes):
#   bash scripts/gpu/multigpu.sh build                 # NCCL build into /tmp/tessera-build (fails without NCCL)
#   bash scripts/gpu/multigpu.sh check                 # N ranks vs one GPU, N = 2, 4, 8 (as many as there are)
#   bash scripts/gpu/multigpu.sh bench 1.3b 832x480    # ours, step time on 1, 2, 4, 8 GPUs
#   bash scripts/gpu/multigpu.sh torch 1.3b 832x480    # PyTorch + NCCL Ulysses (and cfg on 2), same shapes
#   bash scripts/gpu/multigpu.sh bench 1.3b 1280x720 ; ... torch 1.3b 1280x720
#   bash scripts/gpu/multigpu.sh bench 14b 832x480   ; ... torch 14b 832x480    (MGPU_LAYERS_14B blocks, default 10)
#   bash scripts/gpu/multigpu.sh bench 14b 1280x720  ; ... torch 14b 1280x720
#   bash scripts/gpu/multigpu.sh merge                 # -> $OUT/multigpu-<gpu>.json and .md
#   bash scripts/gpu/multigpu.sh all                   # all of the above in one go (no call limit)
# Every part also leaves its raw JSON in $OUT, so `merge` can run HERE on the files that came back:
#   node benchmarks/gpu/multigpu-merge.mjs --dir DIR --out benchmarks/results/multigpu-h200.json
# Options (environment): MGPU_GPUS="1 2 4 8" (world sizes to try, capped at the GPU count),
# MGPU_REPS=3, MGPU_WARMUP=1, MGPU_LAYERS_13B=0 (0: all 30), MGPU_LAYERS_14B=10 (of 40: the
# result's extrapolated_ms scales the blocks to all 40), MGPU_TIMEOUT=240 (seconds per run).
# CPU smoke runs done here: benchmarks/gpu/multigpu.mjs check/bench with --device cpu at one
# rank; torch_ulysses.py on gloo with 1, 2 and 4 CPU processes (--device cpu --config tiny --check).
part="${1:-all}"
shift || true
suite=multigpu
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# The parts' raw files go to $OUT itself, so that `merge` can also run here on what came back.
raw="$out"
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
gpus=()
for n in ${MGPU_GPUS:-1 2 4 8}; do [ "$n" -le "$ngpu" ] && gpus+=("$n"); done
reps=${MGPU_REPS:-3}
warm=${MGPU_WARMUP:-1}
rank_limit=${MGPU_TIMEOUT:-240}
stage_js benchmarks/gpu/multigpu.mjs

# Runs `node .gpu/multigpu.mjs ARGS` as N ranks (torchrun's variables, one GPU each); if a rank
# fails the others are killed (they would wait in NCCL until the timeout). Rank r's log: $logs/TAG-rank$r.log (in multigpu-logs.tgz).
ranks() {
  local n=$1 tag=$2
  shift 2
  local port=$((20000 + RANDOM % 20000)) pids=() r
  rm -f "$logs/$tag-rank"*.rc
  for ((r = 0; r < n; r++)); do
    (
      RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
        CUDA_VISIBLE_DEVICES=$r timeout "$rank_limit" node .gpu/multigpu.mjs "$@" > "$logs/$tag-rank$r.log" 2>&1
      echo $? > "$logs/$tag-rank$r.rc"
    ) &
    pids+=($!)
  done
  local rc=0 left=$n f c
  while [ "$left" -gt 0 ]; do
    sleep 1
    left=0
    for ((r = 0; r < n; r++)); do
      f="$logs/$tag-rank$r.rc"
      if [ -f "$f" ]; then
        c=$(cat "$f")
        if [ "$c" != 0 ] && [ "$rc" = 0 ]; then
          rc=$c
          say "  rank $r exited $c; stopping the others"
          for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null; done
        fi
      else
        left=$((left + 1))
      fi
    done
  done
  wait
  return "$rc"
}

do_build() {
  say "== build with NCCL"
  # The nvidia-nccl wheel of PyTorch's python carries nccl.h and libnccl.so.2; CMake asks that
  # python3 by itself; this names the folder in the log, and a missing wheel before the build.
  local wheel
  wheel=$(python3 -c "import nvidia.nccl as m; print(list(m.__path__)[0])" 2>/dev/null)
  say "nvidia-nccl wheel: ${wheel:-none}; TESSERA_NCCL_ROOT=${TESSERA_NCCL_ROOT:-unset}"
  if [ -z "$wheel" ] && [ -z "${TESSERA_NCCL_ROOT:-}" ]; then
    say "no NCCL to build against: pip install nvidia-nccl-cu12, or set TESSERA_NCCL_ROOT"
    return 1
  fi
  [ -n "$wheel" ] && [ -z "${TESSERA_NCCL_ROOT:-}" ] && export TESSERA_NCCL_ROOT="$wheel"
  export TESSERA_CUDA_ARCHS="${TESSERA_CUDA_ARCHS:-90a}"
  build_native --nccl || return 1
  grep -q "tessera: NCCL collectives" "$logs/build.log" || {
    say "the build found no NCCL (see build.log in multigpu-logs.tgz)"
    return 1
  }
  find "$TESSERA_NATIVE_BUILD_DIR" -maxdepth 1 -name '*.so' -printf '%f %s bytes\n' | tee -a "$log"
  (cd .gpu && node -e 'import("@tessera/native").then((m) => console.log("ncclStatus", JSON.stringify(m.ncclStatus())))') 2>&1 |
    tee -a "$log"
}

do_check() {
  say "== check: N ranks vs one GPU ($gpu_name x $ngpu)"
  local rc=0 n
  for n in "${gpus[@]}"; do
    [ "$n" -eq 1 ] && continue
    say "-- check, $n ranks"
    ranks "$n" "check$n" check --out "$raw/raw-check-$n.json" || rc=1
    grep -hE "^\[rank 0\] (ok|FAIL)" "$logs/check$n-rank0.log" | tee -a "$log"
    grep -h "error" "$logs/check$n-rank"*.log | head -5 | tee -a "$log"
  done
  return $rc
}

layers_for() {
  case "$1" in
    14b) echo "${MGPU_LAYERS_14B:-10}" ;;
    *) echo "${MGPU_LAYERS_13B:-0}" ;;
  esac
}

do_bench() {
  local config=$1 size=$2 n layers
  layers=$(layers_for "$config")
  local la=()
  [ "$layers" != 0 ] && la=(--layers "$layers")
  say "== ours: $config $size 81 frames, layers ${layers/#0/all}, GPUs ${gpus[*]}"
  for n in "${gpus[@]}"; do
    local f="$raw/raw-ours-$config-$size-$n.json"
    ranks "$n" "ours-$config-$size-$n" bench --config "$config" --size "$size" --frames 81 "${la[@]}" \
      --reps "$reps" --warmup "$warm" --out "$f"
    say "-- $n GPU(s): rc=$? $(node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(d.strategy, d.stepMs?.median?.toFixed(0), "ms", d.error ? d.error.split("\n")[0] : "")' "$f" 2>&1)"
  done
}

do_torch() {
  local config=$1 size=$2 n layers s
  layers=$(layers_for "$config")
  local la=()
  [ "$layers" != 0 ] && la=(--layers "$layers")
  say "== PyTorch + NCCL: $config $size 81 frames, layers ${layers/#0/all}, GPUs ${gpus[*]}"
  for n in "${gpus[@]}"; do
    for s in ulysses cfg; do
      [ "$s" = cfg ] && [ "$n" -ne 2 ] && continue
      local f="$raw/raw-torch-$config-$size-$n-$s.json" check=()
      [ "$config" = 1.3b ] && [ "$size" = 832x480 ] && check=(--check)
      PYTHONUNBUFFERED=1 timeout "$rank_limit" python3 -m torch.distributed.run --standalone --nproc_per_node "$n" benchmarks/gpu/torch_ulysses.py \
        --config "$config" --size "$size" --frames 81 "${la[@]}" --strategy "$s" --reps "$reps" --warmup "$warm" \
        "${check[@]}" --out "$f" > "$logs/torch-$config-$size-$n-$s.log" 2>&1
      say "-- $n GPU(s) $s: rc=$? $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("stepMs",{}).get("median"), "ms", d.get("check",""), d.get("skipped",""))' "$f" 2>&1)"
    done
  done
}

do_merge() {
  node benchmarks/gpu/multigpu-merge.mjs --dir "$raw" --out "$out/multigpu-$gpu.json" \
    --md "$out/multigpu-$gpu.md" --gpu "$gpu_name" --gpus "$ngpu" --commit "$COMMIT" 2>&1 | tee -a "$log"
}

say "multigpu.sh $part ($gpu_name x $ngpu, commit $COMMIT, $(now))"
trap pack_logs EXIT
case "$part" in
  build) do_build ;;
  check) do_check ;;
  bench) do_bench "${1:-1.3b}" "${2:-832x480}" ;;
  torch) do_torch "${1:-1.3b}" "${2:-832x480}" ;;
  merge) do_merge ;;
  all)
    do_build || exit 1
    do_check
    for c in 1.3b 14b; do
      for s in 832x480 1280x720; do
        do_bench $c $s
        do_torch $c $s
      done
    done
    do_merge
    ;;
  *)
    echo "usage: multigpu.sh build|check|bench CONFIG SIZE|torch CONFIG SIZE|merge|all"
    exit 2
    ;;
esac
