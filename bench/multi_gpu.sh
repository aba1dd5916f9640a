#!/usr/bin/env bash
# Scaling a MAD-scale search across the GPUs of one host: G = 1, 2, 4, ... GPUs, k workers on each,
# population 4 x (G k) so that every run dispatches the same number of rounds per generation (weak
# scaling: evaluations per hour should grow G-fold). Each evaluation trains a 4-LIV width-128
# network for STEPS steps at batch 128 on MAD's in-context recall and scores it.
#   bench/multi_gpu.sh [BUILD_DIR] [LOG_DIR]      env: K (workers per GPU, 4), STEPS (100),
#                                                      GENERATIONS (2), GPUS ("1 2 4 8", capped),
#                                                      STEADY (1: steady-state mode, lag 2 x workers)
# Prints one row per G: evaluations, wall s, evaluations per hour, efficiency against G = 1, the
# pool's utilisation (worker-seconds busy / offered; the rest is lost to the generational barrier's
# stragglers) and the mean GPU utilisation nvidia-smi sampled on the GPUs in use.
set -u
build=${1:-build-gpu}
log=${2:-multi-gpu-logs}
k=${K:-4}
mkdir -p "$log"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Each worker is a LibTorch process whose CPU thread pool defaults to every core: 16 of them on a
# 64-core host oversubscribe it. A few threads each is plenty for feeding a GPU.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
have=$(nvidia-smi -L | wc -l)
printf "%4s %8s %11s %8s %13s %10s %9s %9s %8s\n" gpus workers evaluations wall_s evals_per_hour efficiency pool_util lost_ws gpu_util
base=""
for g in ${GPUS:-1 2 4 8}; do
  [ "$g" -le "$have" ] || continue
  w=$((g * k))
  cfg=$log/gpus-$g.textproto
  cat >"$cfg" <<CFG
space { num_livs: 4 width: 128 vocab_size: 256 }
task { kind: "mad:in-context-recall" }
training { steps: ${STEPS:-100} batch: 128 device: "cuda" }
objectives: ["quality", "params"]
algorithm { population: $((4 * w)) generations: ${GENERATIONS:-2}${STEADY:+ steady_state: true lag: $((2 * w))} }
seed: 1
cluster { workers_per_gpu: $k }
CFG
  rm -rf "$log/run-$g"
  visible=$(seq -s, 0 $((g - 1)))
  nvidia-smi --query-gpu=index,utilization.gpu --format=csv,noheader,nounits -lms 500 >"$log/smi-$g.csv" &
  smi=$!
  CUDA_VISIBLE_DEVICES=$visible mpirun --oversubscribe -np $((w + 1)) -x CUDA_VISIBLE_DEVICES \
    "$build/starsynth" search "$cfg" --run "$log/run-$g" >"$log/gpus-$g.log" 2>&1
  kill $smi 2>/dev/null; wait $smi 2>/dev/null
  read -r evals wall util < <(tail -1 "$log/run-$g/progress.tsv" | cut -f4,8,10 | tr '\t' ' ')
  gpu=$(awk -F', *' -v g=$g '$1 < g { s += $2; n++ } END { printf "%.0f", n ? s / n : 0 }' "$log/smi-$g.csv")
  rate=$(awk -v e="$evals" -v s="$wall" 'BEGIN { printf "%.1f", e * 3600 / s }')
  [ -n "$base" ] || base=$rate
  awk -v g=$g -v w=$w -v e="$evals" -v s="$wall" -v r=$rate -v b=$base -v u="$util" -v gu=$gpu 'BEGIN {
    printf "%4d %8d %11d %8.1f %13.0f %9.1f%% %8.1f%% %9.0f %7d%%\n", g, w, e, s, r, 100 * r / (b * g), 100 * u, (1 - u) * w * s, gu }'
done
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
