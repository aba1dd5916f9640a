#!/usr/bin/env bash
# SASS instruction counts of a CUDA file's kernels, on a machine without a GPU, to compare versions
# of the tensor-core convolution before spending GPU time on them (BENCHMARKS.md, 2026-12-06): per
# kernel, ptxas's registers and spill, the instruction count, the count and opcode mix of its
# MMA loop (first to last HMMA: the unrolled products, where every address, move and permute
# competes with the MMAs for issue slots), and the order of its global loads and stores, barriers,
# branches and spills around that loop (where a block's memory round trips come one after another).
#   bench/conv_sass.sh [FILE] [KERNEL_REGEX]    (kernels/gated_conv_mma.cu, "kernel")
# KERNEL_REGEX matches mangled names: e.g. 'forward_kernelILi128ELi8' (128 taps, 8 channels an
# access). nvcc 13's cubins are unreadable to the only disassembler Debian ships (nvdisasm 11.8,
# in non-free's nvidia-cuda-toolkit), so the PTX of nvcc 13, its .version lowered to 7.8, is
# assembled by ptxas 11.8 and disassembled by nvdisasm 11.8. ptxas 11.8 allocates and schedules
# unlike 13.0 (40 bytes of spill against 56 in the gated 128-tap backward pass): compare versions
# of a kernel with each other, never with the GPU build. CUDA118 (/opt/cuda-11.8-tools) holds its
# usr/bin; to fill it, with "non-free" added to the Components of
# /etc/apt/sources.list.d/debian.sources and `apt-get update`:
#   apt-get download nvidia-cuda-toolkit && dpkg -x nvidia-cuda-toolkit_*.deb /opt/cuda-11.8-tools
set -euo pipefail
file=${1:-kernels/gated_conv_mma.cu}
pattern=${2:-kernel}
tools=${CUDA118:-/opt/cuda-11.8-tools}/usr/bin
for tool in ptxas nvdisasm; do
  [ -x "$tools/$tool" ] || { echo "conv_sass: no $tools/$tool (see this script's header)" >&2; exit 2; }
done
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$nvcc" -I. -O2 -DNDEBUG -arch=sm_90 -std=c++17 -ptx "$file" -o "$work/k.ptx" 2>"$work/nvcc.log" ||
  { cat "$work/nvcc.log" >&2; exit 1; }
sed -e 's/^\.version .*/.version 7.8/' "$work/k.ptx" >"$work/k78.ptx"
"$tools/ptxas" -arch=sm_90 -O3 -v "$work/k78.ptx" -o "$work/k.cubin" 2>"$work/ptxas.log" ||
  { cat "$work/ptxas.log" >&2; exit 1; }
"$tools/nvdisasm" -c "$work/k.cubin" >"$work/k.sass"
python3 - "$work/k.sass" "$work/ptxas.log" "$pattern" <<'PY'
import collections, re, subprocess, sys
sass, log, pattern = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
usage = {}  # mangled name -> "R registers, S bytes spill"
for m in re.finditer(r"Compiling entry function '(\w+)'.*?(\d+) bytes spill stores.*?Used (\d+) registers", log, re.S):
    usage[m.group(1)] = f"{m.group(3)} registers, {m.group(2)} B spill"
parts = re.split(r"//-+ \.text\.(\w+) -+", sass)
for name, body in zip(parts[1::2], parts[2::2]):
    if not re.search(pattern, name):
        continue
    ops = [re.sub(r"^@!?U?P\w+\s+", "", re.sub(r"^\s*/\*[0-9a-f]+\*/\s*", "", line)).split()[0].split(".")[0]
           for line in body.splitlines() if re.match(r"\s*/\*[0-9a-f]+\*/\s+\S", line)]
    mma = [i for i, op in enumerate(ops) if op == "HMMA"]
    loop = ops[mma[0]:mma[-1] + 1] if mma else []
    pretty = subprocess.run(["c++filt", name], capture_output=True, text=True).stdout.strip()
    pretty = re.sub(r"\(anonymous namespace\)::", "", pretty)
    pretty = re.sub(r"^void |\(.*$", "", pretty).split("::")[-1]
    print(f"{pretty}: {usage.get(name, '?')}; {len(ops)} instructions, MMA loop {len(loop)}")
    if loop:
        print("  loop: " + " ".join(f"{op} {n}" for op, n in collections.Counter(loop).most_common(10)))
    # Global memory, barriers and spills before and after the loop, in program order, runs counted:
    # loads that a store, branch or barrier separates are (mostly) separate round trips.
    def trace(part):
        kept = [op for op in part if op in ("LDG", "LDGSTS", "STG", "BAR", "LDL", "STL", "STS", "BRA")]
        runs = [[op, 1] for op in kept[:1]]
        for op in kept[1:]:
            if op == runs[-1][0]: runs[-1][1] += 1
            else: runs.append([op, 1])
        return " ".join(op if n == 1 else f"{op}×{n}" for op, n in runs)
    if mma:
        print("  before: " + trace(ops[:mma[0]]))
        print("  after: " + trace(ops[mma[-1] + 1:]))
PY
