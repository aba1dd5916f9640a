// Puts kernels/'s CUDA kernels behind the evaluator's operators: after install(), CUDA tensors take
// the kernels, CPU tensors the composite LibTorch forms (which stay the reference). Plain C++, so
// the CLI (which must not see LibTorch's headers) can call it.
#pragma once

#include <string>

namespace starsynth::kernels {

// Installs every kernel, unless the environment says STARSYNTH_KERNELS=0 (for A/B measurements).
// Returns the names of the kernels now in use, comma-separated ("" when none).
std::string install();
// Puts the composite forms back everywhere (for A/B comparisons in tests and benchmarks).
void uninstall();

}  // namespace starsynth::kernels
