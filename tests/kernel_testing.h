// What the CUDA kernels' tests (tests/test_kernels*.cpp, GPU only) share.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

namespace starsynth::kernel_testing {

#define REQUIRE_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

// What kernels::install() reports when every kernel applies.
constexpr const char* kAllKernels = "gated_conv,long_conv,scan,rope,swiglu,rms_norm,cross_entropy,adamw";

// max |a - b| / max(1, max |b|)
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor bd = b.to(at::kDouble);
  return (a.to(at::kDouble) - bd).abs().max().item<double>() / std::max(1.0, bd.abs().max().item<double>());
}

}  // namespace starsynth::kernel_testing
