#!/usr/bin/env bash
# The CUDA kernels on the GPU machine in one call: their tests, their speed beside the composite
# forms and the memory floor, and end-to-end training of the StripedHyena 2 and StripedMamba
# presets with and without them (the commands behind BENCHMARKS.md's "CUDA kernels"). From the
# repository root, after building build-gpu as ../shared/device/ says, with the targets
# starsynth test_kernels test_kernels_conv test_kernels_scan test_kernels_pointwise kernel_speed train_speed:
#   bench/kernels.sh [LOG_DIR]
set -uo pipefail
log=${1:-bench-logs}
mkdir -p "$log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
for test in test_kernels_conv test_kernels_scan test_kernels_pointwise test_kernels; do
  build-gpu/tests/$test >"$log/$test.log" 2>&1
  echo "$test: exit $?, $(grep -c '^\[       OK' "$log/$test.log") passed, $(grep -c '^\[  FAILED  \].* ms)$' "$log/$test.log") failed"
done
build-gpu/bench/kernel_speed 2>&1 | tee "$log/kernel_speed.log"
for preset in striped-hyena2 striped-mamba; do
  for kernels in 0 1; do
    STARSYNTH_KERNELS=$kernels build-gpu/bench/train_speed --preset $preset --width 768 --livs 24 --batch 16 \
      --seq 2048 --steps 10 --repeats 3 >"$log/train-$preset-$kernels.log" 2>&1
    grep -E "median|rror" "$log/train-$preset-$kernels.log" | tail -1
  done
done
