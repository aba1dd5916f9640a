#!/usr/bin/env bash
# STAR in miniature: a complete search on one GPU, then its report and a results table that sets
# the front against the presets it was seeded with.
#   examples/star-mini/run.sh [RUN_DIR]            env: BUILD (build-gpu), WORKERS (4 per GPU),
#                                                       CONFIG (examples/star-mini/config.textproto: MAD;
#                                                       ecoli.textproto: byte-level LM of E. coli),
#                                                       STOP_AFTER (13m: as many generations as fit)
# Run it again on the same RUN_DIR to continue a search that stopped (for another STOP_AFTER).
#   DRY_RUN=1 examples/star-mini/run.sh RUN_DIR    the same pipeline on the CPU at toy size (ctest)
# Writes RUN_DIR/report.html, RUN_DIR/results.md (the table), RUN_DIR/gpu.csv (utilisation) and
# RUN_DIR/wall_s.txt (wall seconds of each invocation).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
run=$(realpath -m "${1:-runs/star-mini}")
config=$(realpath "${CONFIG:-$here/config.textproto}")
cd "$root"  # the configs name corpora relative to the repository (data/)
bin=${BUILD:-$root/build-gpu}/starsynth
workers=${WORKERS:-4}
stop_after=${STOP_AFTER:-13m}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# LibTorch would give every rank a thread per core: share the cores out instead.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / (workers + 1) > 0 ? $(nproc) / (workers + 1) : 1 ))}
mkdir -p "$(dirname "$run")"
if [ -n "${DRY_RUN:-}" ]; then
  # Toy size on the CPU: the same space, presets and pipeline, seconds instead of minutes.
  bin=${BUILD:-$root/build}/starsynth
  workers=2
  sed -e 's/width: 128/width: 32/; s/head_dim: 16/head_dim: 8/g; s/filter_length: 64/filter_length: 8/' \
      -e 's/task { kind: "mad" }/task { kind: "mad:in-context-recall" vocab_size: 8 seq_len: 16 train_examples: 64 test_examples: 32 }/' \
      -e 's/lm_seq_len: [0-9]*/lm_seq_len: 16/' \
      -e 's/training {[^}]*}/training { steps: 3 batch: 8 device: "cpu" }/' \
      -e 's/population: 16 generations: [0-9]*/population: 4 generations: 1/' "$config" >"$run.dry.textproto"
  config=$run.dry.textproto
fi
gpu_log=$run.gpu.csv
if command -v nvidia-smi >/dev/null && [ -z "${DRY_RUN:-}" ]; then
  # Only the GPU this run was given, when it was given one of several (numbered as nvidia-smi does).
  [ -n "${CUDA_VISIBLE_DEVICES:-}" ] && export CUDA_DEVICE_ORDER=PCI_BUS_ID
  nvidia-smi ${CUDA_VISIBLE_DEVICES:+-i "$CUDA_VISIBLE_DEVICES"} --query-gpu=timestamp,utilization.gpu,memory.used \
    --format=csv,noheader,nounits -lms 1000 >"$gpu_log" &
  smi=$!
  trap 'kill $smi 2>/dev/null || true' EXIT
fi
started=$(date +%s)
if [ -d "$run" ] && [ -e "$run/config.textproto" ]; then
  mpirun --oversubscribe -np $((workers + 1)) "$bin" search --resume "$run" --stop-after "$stop_after"
else
  mpirun --oversubscribe -np $((workers + 1)) "$bin" search "$config" --run "$run" --stop-after "$stop_after"
fi
wall=$(( $(date +%s) - started ))
# A resumed run adds its samples and its wall time to those of the earlier invocations.
[ -n "${smi:-}" ] && { kill $smi 2>/dev/null || true; cat "$gpu_log" >>"$run/gpu.csv"; rm -f "$gpu_log"; }
echo "$wall" >>"$run/wall_s.txt"
wall=$(awk '{ s += $1; n++ } END { printf "%d s%s", s, (n > 1 ? " over " n " invocations" : "") }' "$run/wall_s.txt")
"$bin" report "$run" -o "$run/report.html"
"$bin" results "$run" >"$run/results.md"
gpu=$( [ -e "$run/gpu.csv" ] && awk -F', *' '{ s += $2; n++ } END { if (n) printf "%.0f %%", s / n }' "$run/gpu.csv" || echo "n/a (no GPU)")
{
  echo
  echo "Wall time $wall with $workers workers; mean GPU utilisation $gpu;" \
       "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo CPU), $(date -u +%Y-%m-%d)."
} >>"$run/results.md"
cat "$run/results.md"
echo "report: $run/report.html"
