#!/usr/bin/env bash
# Registers and spills per kernel of a CUDA file, from ptxas (sm_90), on any machine with nvcc:
# the tensor-core convolution's backward pass runs at 128 registers (two blocks per
# multiprocessor), where even a few bytes of spill have cost time, so check before a GPU run.
#   bench/conv_registers.sh [FILE]      (kernels/gated_conv_mma.cu)
set -euo pipefail
file=${1:-kernels/gated_conv_mma.cu}
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
"$nvcc" -I. -O2 -DNDEBUG --generate-code=arch=compute_90,code=sm_90 -std=c++17 -c "$file" -o /dev/null -Xptxas -v 2>&1 |
  awk '/Compiling entry function/ { match($0, /_Z[^'"'"']*/); name = substr($0, RSTART, RLENGTH) }
       /bytes stack frame/ { sub(/.*info *: */, ""); frame = $0 }
       /Used [0-9]+ registers/ { match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART, RLENGTH)
         cmd = "c++filt " name; cmd | getline pretty; close(cmd)
         gsub(/\(anonymous namespace\)::/, "", pretty); sub(/\(.*/, "", pretty); sub(/.*::/, "", pretty)
         printf "%-48s %s; %s\n", pretty, regs, frame }'
