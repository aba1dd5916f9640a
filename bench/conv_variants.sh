#!/usr/bin/env bash
# Versions of kernels/gated_conv_mma.cu against each other on the GPU machine, in one call. Each
# version is built into its own kernel_speed and test_kernels_conv and tested; then the versions
# are timed in turn (ROUNDS rounds of `kernel_speed --sections conv --repeats 5`, so that drift in
# the machine hits them alike) and a table of the medians is printed, µs, with the working tree's
# forward ÷ its memory floor and backward ÷ forward (the two ratios BENCHMARKS.md tracks). The
# working tree's file is "new"; the others are files given as NAME=FILE, e.g. in the ignored
# folder .variants (carry it to the GPU machine with .gpu-debs): `git show
# HEAD:kernels/gated_conv_mma.cu > .variants/base.cu`, then `bench/conv_variants.sh
# base=.variants/base.cu`. A version need not include conv_staging.cuh and conv_products.cuh: one
# that defines its own building blocks (as the file did before they were split off) builds too.
# From the repository root on the GPU machine (../shared/device/ says how .gpu-debs is filled):
#   bench/conv_variants.sh [NAME=FILE ...]
# Environment: ROUNDS (3); TESTS, more test targets to build and run once on "new" (e.g.
# "test_kernels test_kernels_scan"); E2E=1 adds train_speed on the StripedHyena 2 preset with and
# without the kernels, for "new"; PROFILE=1 adds Nsight Compute's sections (speed of light, warp
# states, instruction and scheduler statistics, occupancy, shared-memory wavefronts and bank
# conflicts) for every version's Hyena-MR forward and backward kernels at B=8 into
# $LOG/ncu-NAME-PASS.txt, with their headline figures, conflicts and longest stalls printed; LOG,
# the folder for the logs (bench-logs/variants).
set -uo pipefail
log=${LOG:-bench-logs/variants}
rounds=${ROUNDS:-3}
mkdir -p "$log"
source .gpu-debs/gpu-env.sh >/dev/null
kernel=kernels/gated_conv_mma.cu
cp "$kernel" "$log/new.cu"
trap 'cp "$log/new.cu" "$kernel"' EXIT  # the working tree's version back, whatever happens
names=(new)
for arg in "$@"; do
  name=${arg%%=*} file=${arg#*=}
  [ -f "$file" ] || { echo "conv_variants: $arg: no such file $file (expected NAME=FILE)" >&2; exit 2; }
  cp "$file" "$log/$name.cu"
  names+=("$name")
done
extra=()
[ "${E2E:-0}" = 1 ] && extra+=(train_speed)
if [ ! -f build-gpu/build.ninja ]; then
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release $GPU_CMAKE_ARGS >"$log/cmake.log" 2>&1 ||
    { tail -20 "$log/cmake.log"; exit 1; }
fi
for name in "${names[@]}"; do
  cp "$log/$name.cu" "$kernel"
  targets=(kernel_speed test_kernels_conv "${extra[@]}")
  [ "$name" = new ] && targets+=(${TESTS:-})
  if ! cmake --build build-gpu -j"$(nproc)" --target "${targets[@]}" >"$log/build-$name.log" 2>&1; then
    echo "$name: build failed"; grep -E "error" -A3 "$log/build-$name.log" | head -20; continue
  fi
  mkdir -p "$log/bin-$name"
  cp build-gpu/bench/kernel_speed build-gpu/tests/test_kernels_conv "$log/bin-$name/"
  [ "$name" = new ] && [ "${E2E:-0}" = 1 ] && cp build-gpu/bench/train_speed "$log/bin-$name/"
  "$log/bin-$name/test_kernels_conv" >"$log/test-$name.log" 2>&1
  echo "$name: test_kernels_conv exit $?, $(grep -c '^\[       OK' "$log/test-$name.log") passed"
done
cp "$log/new.cu" "$kernel"
for test in ${TESTS:-}; do
  build-gpu/tests/$test >"$log/$test.log" 2>&1
  echo "new: $test exit $?, $(grep -c '^\[       OK' "$log/$test.log") passed"
done
for round in $(seq "$rounds"); do
  for name in "${names[@]}"; do
    [ -x "$log/bin-$name/kernel_speed" ] && "$log/bin-$name/kernel_speed" --sections conv --repeats 5 >"$log/speed-$name-$round.log" 2>&1
  done
done
python3 - "$log" "$rounds" "${names[@]}" <<'PY'
# Medians per variant, µs, then new's ratios: forward ÷ its memory floor (the floors kernel_speed
# derives from the copy bandwidth it measures, median over the rounds) and backward ÷ forward.
import os, re, statistics, sys
log, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows, floors, bandwidths = {}, {}, []
for name in names:
    for r in range(1, rounds + 1):
        path = f"{log}/speed-{name}-{r}.log"
        if not os.path.exists(path):
            continue
        for line in open(path):
            m = re.search(r"copy bandwidth (\d+) GB/s", line)
            if m:
                bandwidths.append(int(m.group(1)))
            parts = line.split("|")
            if len(parts) != 3 or "shape" in line:
                continue
            key = " ".join(parts[0].split())
            rows.setdefault(key, {}).setdefault(name, []).append((float(parts[1].split()[0]), float(parts[2].split()[0])))
            floors.setdefault(key, []).append(float(parts[1].split()[2]))
if bandwidths:
    print(f"copy bandwidth {min(bandwidths)}-{max(bandwidths)} GB/s")
print(f"{'shape, op, taps':40s}" + "".join(f"{n + ' fwd':>12s}{n + ' bwd':>12s}" for n in names) +
      f"{'new÷floor':>11s}{'new bwd÷fwd':>13s}")
for key, by_name in rows.items():
    cells, median = "", {}
    for n in names:
        t = by_name.get(n)
        if t:
            median[n] = (statistics.median(x[0] for x in t), statistics.median(x[1] for x in t))
        cells += f"{median[n][0]:12.0f}{median[n][1]:12.0f}" if t else " " * 24
    if "new" in median:
        fwd, bwd = median["new"]
        cells += f"{fwd / statistics.median(floors[key]):11.2f}{bwd / fwd:13.2f}"
    print(f"{key:40s}{cells}")
PY
if [ "${E2E:-0}" = 1 ] && [ -x "$log/bin-new/train_speed" ]; then
  for kernels in 0 1; do
    STARSYNTH_KERNELS=$kernels "$log/bin-new/train_speed" --preset striped-hyena2 --width 768 --livs 24 --batch 16 \
      --seq 2048 --steps 10 --repeats 3 >"$log/train-$kernels.log" 2>&1
    echo "new, STARSYNTH_KERNELS=$kernels: $(grep -E 'median|rror' "$log/train-$kernels.log" | tail -1)"
  done
fi
if [ "${PROFILE:-0}" = 1 ]; then
  # The first launch of each 128-tap kernel is B=8's; the name is matched on its demangled form,
  # e.g. "forward_kernel<(int)128, (int)8, (int)2, (int)4>".
  for name in "${names[@]}"; do
    [ -x "$log/bin-$name/kernel_speed" ] || continue  # its build failed, as the timing rounds skip it
    for pass in forward backward; do
      report="$log/ncu-$name-$pass.txt"
      timeout 120 ncu --kernel-name-base demangled -k "regex:${pass}_kernel<.int.128" -c 1 --section SpeedOfLight \
        --section WarpStateStats --section InstructionStats --section SchedulerStats --section Occupancy \
        --section LaunchStats --section MemoryWorkloadAnalysis_Tables --print-details all \
        "$log/bin-$name/kernel_speed" --sections conv --repeats 1 --iters 1 >"$report" 2>&1
      echo "$name $pass (ncu exit $?):" $(grep -E "^ +(Duration|Compute \(SM\) Throughput|L1/TEX Cache Throughput|L1: Data Pipe Lsu Wavefronts|DRAM Throughput|Issue Slots Busy|Achieved Occupancy|Warp Cycles Per Issued Instruction|Registers Per Thread|Instructions Executed|l1tex__data_pipe_lsu_wavefronts_mem_shared_op_(ld|st)\.sum) " "$report" |
        sed -E 's/ {2,}/ /g' | awk '!seen[$0]++' | paste -sd ';')
      # Shared-memory bank conflicts (Nsight's rule text) and the three longest stalls, cycles an instruction.
      grep -oE "causes on average a [0-9.]+ - way bank|conflict across all [0-9]+ shared (load|store) requests|[0-9]+ bank conflicts" "$report" |
        paste -sd ' ' | sed -E 's/causes on average a/  conflicts:/g'
      echo "  stalls:" $(grep -E "^ +Stall " "$report" | sed -E 's/ {2,}/ /g; s/^ Stall //; s/ inst / /' |
        awk '{v = $NF; $NF = ""; print v "\t" $0}' | sort -gr | head -3 | awk -F'\t' '{printf "%s%s %s", (NR > 1 ? "; " : ""), $2, $1}')
    done
  done
fi
