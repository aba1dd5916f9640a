#!/usr/bin/env bash
# MAD-scale evaluations per hour with k = 1, 2, 4, 8 MPI workers sharing one GPU: a real search
# (in-context recall at MAD's baseline settings, width 128, 4 LIVs, 200 steps at batch 128).
#   bench/gpu_share.sh [BUILD_DIR] [LOG_DIR]
set -uo pipefail
build=${1:-build-gpu}
log=${2:-gpu-share-logs}
mkdir -p "$log"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
printf "%3s %12s %10s %14s\n" k evaluations wall_s evals_per_hour
for k in 1 2 4 8; do
  cfg=$log/share-$k.textproto
  cat >"$cfg" <<CFG
space { num_livs: 4 width: 128 vocab_size: 256 }
task { kind: "mad:in-context-recall" }
training { steps: 200 batch: 128 device: "cuda" }
objectives: ["quality", "params"]
algorithm { population: 16 generations: ${GENERATIONS:-2} }
seed: 1
cluster { workers_per_gpu: $k }
CFG
  rm -rf "$log/run-$k"
  mpirun --oversubscribe -np $((k + 1)) "$build/starsynth" search "$cfg" --run "$log/run-$k" >"$log/share-$k.log" 2>&1
  read -r evals wall < <(tail -1 "$log/run-$k/progress.tsv" | cut -f4,8 | tr '\t' ' ')
  awk -v k=$k -v e="$evals" -v w="$wall" 'BEGIN { printf "%3d %12d %10.1f %14.0f\n", k, e, w, e * 3600 / w }' 
done
nvidia-smi --query-gpu=name --format=csv,noheader
