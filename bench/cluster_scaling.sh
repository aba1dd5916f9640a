#!/usr/bin/env bash
# The MPI driver with a sleep evaluator (the synthetic surrogate with synthetic_delay_s): driver
# overhead per evaluation, and pool efficiency from 2 to 64 ranks on one machine (oversubscribed:
# sleeping workers use no CPU). Efficiency = evaluations × delay / (wall time × workers).
#   bench/cluster_scaling.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
run() {  # run RANKS POPULATION GENERATIONS DELAY → "evaluations wall_s"
  local cfg=$tmp/c-$1-$4.textproto dir=$tmp/r-$1-$4
  cat >"$cfg" <<CFG
space { num_livs: 24 width: 256 vocab_size: 256 }
task { kind: "synthetic:surrogate" synthetic_delay_s: $4 }
objectives: ["quality", "params"]
algorithm { population: $2 generations: $3 elites: 0 }
seed: 1
CFG
  mpirun --oversubscribe -np "$1" "$build/starsynth" search "$cfg" --run "$dir" >/dev/null 2>&1
  # The driver's own clock (progress.tsv's elapsed_s): from opening the run to the last checkpoint,
  # without mpirun's start-up.
  tail -1 "$dir/progress.tsv" | cut -f4,8 | tr '\t' ' '
}
echo "driver overhead (no delay, 8 ranks, population 64, 20 generations):"
read -r evals wall < <(run 8 64 20 0)
printf "  %d evaluations in %.2f s: %.2f ms per evaluation\n" "$evals" "$wall" \
  "$(echo "1000 * $wall / $evals" | bc -l)"
echo "pool efficiency (delay 0.2 s per evaluation, population 2 × workers, 4 generations):"
printf "  %6s %8s %12s %10s %11s\n" ranks workers evaluations wall_s efficiency
for ranks in 2 4 8 16 32 64; do
  workers=$((ranks - 1))
  pop=$((2 * workers)); [ $pop -lt 4 ] && pop=4
  read -r evals wall < <(run $ranks $pop 4 0.2)
  printf "  %6d %8d %12d %10.2f %10.1f%%\n" $ranks $workers "$evals" "$wall" \
    "$(echo "100 * $evals * 0.2 / ($wall * $workers)" | bc -l)"
done
rm -rf "$tmp"
