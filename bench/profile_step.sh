#!/usr/bin/env bash
# Where the GPU time of one training step goes: Nsight Compute times every kernel of the timed
# steps of bench/train_speed (the NVTX range "timed"), and bench/kernel_profile.py adds them up
# per kernel. Kernels run one at a time under ncu, so the sum is GPU busy time without the gaps
# between launches; the step time train_speed prints without ncu is the other half of the story.
# On the GPU machine, from the repository root, after building build-gpu:
#   bench/profile_step.sh LOG_DIR NAME [train_speed arguments...]
#   bench/profile_step.sh logs mad --preset transformer++ --width 128 --livs 4 --batch 128 --seq 128
set -euo pipefail
log=${1:?usage: profile_step.sh LOG_DIR NAME [train_speed arguments]}; name=${2:?NAME}; shift 2
mkdir -p "$log"
# --cache-control none: small MAD-scale tensors live in L2 between kernels, as they do unprofiled.
ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --nvtx --nvtx-include "timed/" \
  -f -o "$log/$name" build-gpu/bench/train_speed "$@" --steps 2 --repeats 1 >"$log/$name.ncu.log" 2>&1
ncu --import "$log/$name.ncu-rep" --csv --page raw --print-units base >"$log/$name.csv"
python3 bench/kernel_profile.py "$log/$name.csv" --steps 2 | tee "$log/$name.txt"
