// Whole models on the GPU with the CUDA kernels installed and without them. Each kernel against
// its own definition: test_kernels_conv.cpp, test_kernels_scan.cpp, test_kernels_pointwise.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/cuda/CUDAContext.h>

#include "evaluator/model.h"
#include "genome/presets.h"
#include "kernels/ops.h"

#include "tests/kernel_testing.h"

namespace starsynth {
namespace {

using namespace kernel_testing;

// Models on the GPU compute the same loss and gradients with the kernels as without: the
// StripedHyena 2 preset (Hyena-SE, -MR, -LI and their short convolutions), the StripedMamba one
// (Rec-1) and Transformer++ (rotary attention, SwiGLU).
TEST(Kernels, ModelsTrainTheSameWithAndWithoutThem) {
  REQUIRE_CUDA();
  for (const std::string name : {"striped-hyena2", "striped-mamba", "transformer++"}) {
    SCOPED_TRACE(name);
    const SearchSpace space = preset_space(8, 64, 64);
    const ModelSpec spec = compile(space, preset_genome(space, name));
    torch::manual_seed(3);
    LivModel model(spec);
    model->to(at::kCUDA, at::kDouble);
    const at::Tensor tokens = at::randint(0, 64, {2, 50}, at::TensorOptions().dtype(at::kLong).device(at::kCUDA));
    auto loss_and_grads = [&](bool kernels) {
      if (kernels) {
        EXPECT_EQ(kernels::install(), kAllKernels);
      } else {
        kernels::uninstall();
      }
      model->zero_grad();
      const at::Tensor logits = model->forward(tokens);
      const at::Tensor loss = cross_entropy(logits.reshape({-1, 64}), tokens.reshape({-1}), -100);
      loss.backward();
      std::vector<at::Tensor> out = {loss.detach().clone()};
      for (const auto& p : model->parameters())
        out.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
      return out;
    };
    const std::vector<at::Tensor> with = loss_and_grads(true), without = loss_and_grads(false);
    ASSERT_EQ(with.size(), without.size());
    for (size_t i = 0; i < with.size(); ++i)
      EXPECT_LT(relative_error(with[i], without[i]), 1e-10) << "tensor " << i;
  }
  kernels::install();
}

}  // namespace
}  // namespace starsynth
