#!/usr/bin/env bash
# The evaluator's GPU benchmarks (issue: evaluator), each beside the same architecture written
# directly in PyTorch (eager and torch.compile) in the same call on the same GPU. Run from the
# repository root on the GPU machine after building into build-gpu (see ../shared/device/).
#   bench/gpu_bench.sh [LOG_DIR]
set -uo pipefail
log=${1:-bench-logs}
mkdir -p "$log"
run() {  # run NAME COMMAND...: output to $log/NAME.log, last line echoed
  local name=$1; shift
  "$@" >"$log/$name.log" 2>&1 || echo "$name: exit $?" >>"$log/$name.log"
  grep -E "median|exit|Error" "$log/$name.log" | tail -2 | sed "s/^/$name: /"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
big=(--width 768 --livs 24 --batch 16 --seq 2048 --steps 10 --repeats 3)
mad=(--width 128 --livs 4 --batch 128 --seq 128 --steps 50 --repeats 5)
run starsynth-tpp build-gpu/bench/train_speed --preset transformer++ "${big[@]}" --csv
run starsynth-sh2 build-gpu/bench/train_speed --preset striped-hyena2 "${big[@]}" --csv
run pytorch-eager python3 bench/pytorch_transformer.py --mode eager "${big[@]}"
run pytorch-compile python3 bench/pytorch_transformer.py --mode compile "${big[@]}"
run pytorch-sh2-eager python3 bench/pytorch_striped_hyena.py --mode eager "${big[@]}"
run pytorch-sh2-compile python3 bench/pytorch_striped_hyena.py --mode compile "${big[@]}"
run starsynth-mad build-gpu/bench/train_speed --preset transformer++ "${mad[@]}" --csv
run starsynth-mad-op-by-op env STARSYNTH_GRAPHS=0 build-gpu/bench/train_speed --preset transformer++ "${mad[@]}"
run starsynth-mad-torch-adamw build-gpu/bench/train_speed --preset transformer++ "${mad[@]}" --optimizer torch
run pytorch-eager-mad python3 bench/pytorch_transformer.py --mode eager "${mad[@]}"
run pytorch-compile-mad python3 bench/pytorch_transformer.py --mode compile "${mad[@]}"
# One architecture through the whole six-task MAD suite at MAD's width, batch 128, 200 steps a task.
build-gpu/starsynth genome preset transformer++ --livs 4 --width 128 --vocab 256 -o "$log/tpp-mad.textproto"
/usr/bin/time -f "suite wall %e s" build-gpu/starsynth eval "$log/tpp-mad.textproto" --task mad --device cuda \
  --steps 200 --batch 128 >"$log/mad-suite.log" 2>&1
grep -E "task|wall|status" "$log/mad-suite.log"
