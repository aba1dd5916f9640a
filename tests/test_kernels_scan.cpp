// The input-varying diagonal recurrence (kernels/scan.h: Rec-1, Rec-2) against its definition,
// one step at a time: forward and every gradient at random shapes and state sizes, outputs
// poisoned (NaN) beforehand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/cuda/CUDAContext.h>

#include <limits>
#include <random>

#include "evaluator/model.h"
#include "kernels/ops.h"
#include "kernels/scan.h"

#include "tests/kernel_testing.h"

namespace starsynth {
namespace {

using namespace kernel_testing;

// The recurrence by its definition, one step at a time.
at::Tensor sequential_scan(const at::Tensor& log_a, const at::Tensor& x, const at::Tensor& B, const at::Tensor& C) {
  at::Tensor h = at::zeros({x.size(0), x.size(2), B.size(2)}, x.options());
  std::vector<at::Tensor> ys;
  for (int64_t t = 0; t < x.size(1); ++t) {
    h = log_a.select(1, t).exp().unsqueeze(-1) * h + x.select(1, t).unsqueeze(-1) * B.select(1, t).unsqueeze(1);
    ys.push_back((h * C.select(1, t).unsqueeze(1)).sum(-1));
  }
  return at::stack(ys, 1);
}

struct ScanCase {
  int64_t B, L, D, E;
};

std::vector<ScanCase> scan_cases(int n) {
  std::mt19937 rng(11);
  auto pick = [&](std::vector<int64_t> v) { return v[rng() % v.size()]; };
  std::vector<ScanCase> out = {{1, 1, 1, 1}, {2, 257, 129, 16}, {1, 33, 300, 2}};
  for (int i = 0; i < n; ++i)
    out.push_back({pick({1, 2, 3}), pick({1, 31, 32, 33, 100, 257}), pick({1, 5, 127, 128, 129, 300}),
                   pick({1, 2, 3, 5, 8, 16})});
  return out;
}

std::vector<at::Tensor> scan_inputs(const ScanCase& c, at::ScalarType t, uint64_t seed) {
  torch::manual_seed(seed);
  const auto o = at::TensorOptions().dtype(at::kDouble).device(at::kCUDA);
  return {(-at::softplus(at::randn({c.B, c.L, c.D}, o))).to(t), at::randn({c.B, c.L, c.D}, o).to(t),
          at::randn({c.B, c.L, c.E}, o).to(t), at::randn({c.B, c.L, c.E}, o).to(t)};
}

// Raw kernels, outputs poisoned with NaN, against the definition and its autograd gradients.
TEST(ScanKernel, WritesEveryOutputAndMatchesTheDefinitionInFloat64) {
  REQUIRE_CUDA();
  for (const ScanCase& c : scan_cases(16)) {
    SCOPED_TRACE("B=" + std::to_string(c.B) + " L=" + std::to_string(c.L) + " D=" + std::to_string(c.D) +
                 " E=" + std::to_string(c.E));
    std::vector<at::Tensor> in = scan_inputs(c, at::kDouble, 1);
    kernels::ScanArgs a;
    a.dtype = kernels::DType::Float64;
    a.batch = c.B, a.length = c.L, a.channels = c.D, a.state = c.E;
    a.log_a = in[0].data_ptr(), a.x = in[1].data_ptr(), a.B = in[2].data_ptr(), a.C = in[3].data_ptr();
    a.stream = at::cuda::getCurrentCUDAStream().stream();
    ASSERT_TRUE(kernels::scan_supported(a));
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const at::Tensor y = at::full_like(in[1], nan), dy = at::randn_like(in[1]);
    const at::Tensor ckpt = at::full({kernels::scan_checkpoint_elements(a)}, nan, in[1].options());
    kernels::scan_forward(a, y.data_ptr(), ckpt.data_ptr());
    const int64_t blocks = kernels::scan_channel_blocks(a);
    at::Tensor dla = at::full_like(in[0], nan), dx = at::full_like(in[1], nan);
    at::Tensor dB = at::full({c.B, c.L, c.E, blocks}, nan, in[1].options()), dC = at::full_like(dB, nan);
    kernels::scan_backward(a, ckpt.data_ptr(), dy.data_ptr(), dla.data_ptr(), dx.data_ptr(), dB.data_ptr(),
                           dC.data_ptr());
    std::vector<at::Tensor> leaves;
    for (const at::Tensor& t : in) leaves.push_back(t.detach().requires_grad_());
    const at::Tensor ref = sequential_scan(leaves[0], leaves[1], leaves[2], leaves[3]);
    const auto g = torch::autograd::grad({ref}, leaves, {dy});
    EXPECT_LT(relative_error(y, ref), 1e-12);
    EXPECT_LT(relative_error(dla, g[0]), 1e-11) << "d log_a";
    EXPECT_LT(relative_error(dx, g[1]), 1e-11) << "dx";
    EXPECT_LT(relative_error(dB.sum(-1), g[2]), 1e-11) << "dB";
    EXPECT_LT(relative_error(dC.sum(-1), g[3]), 1e-11) << "dC";
  }
}

// Through the installed op in float32 (the evaluator's recurrence type), against float64.
TEST(ScanKernel, TheInstalledOpMatchesTheDefinitionInFloat32) {
  REQUIRE_CUDA();
  ASSERT_EQ(kernels::install(), kAllKernels);
  for (const ScanCase& c : scan_cases(8)) {
    SCOPED_TRACE("B=" + std::to_string(c.B) + " L=" + std::to_string(c.L) + " D=" + std::to_string(c.D) +
                 " E=" + std::to_string(c.E));
    const std::vector<at::Tensor> in = scan_inputs(c, at::kFloat, 2);
    std::vector<at::Tensor> fast, exact;
    for (const at::Tensor& t : in) {
      fast.push_back(t.detach().requires_grad_());
      exact.push_back(t.to(at::kDouble).detach().requires_grad_());
    }
    const at::Tensor y = diagonal_scan(fast[0], fast[1], fast[2], fast[3]);
    const at::Tensor ref = sequential_scan(exact[0], exact[1], exact[2], exact[3]);
    EXPECT_EQ(y.scalar_type(), at::kFloat);
    EXPECT_LT(relative_error(y, ref), 1e-5);
    const at::Tensor dy = at::randn_like(ref);
    const auto gf = torch::autograd::grad({y}, fast, {dy.to(at::kFloat)});
    const auto ge = torch::autograd::grad({ref}, exact, {dy});
    for (size_t i = 0; i < gf.size(); ++i) EXPECT_LT(relative_error(gf[i], ge[i]), 1e-4) << "gradient " << i;
  }
}

}  // namespace
}  // namespace starsynth
