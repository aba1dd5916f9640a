// The evaluator's training step: FlatAdamW against LibTorch's own AdamW and clip_grad_norm_ (the
// arithmetic it replaces), tied tensors updated once, parameters turned into views of one buffer
// with their values kept; TrainStep's losses; and, on a GPU, a step replayed from a CUDA graph
// against the same step run op by op (with the CUDA kernels where they are built).
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "evaluator/model.h"
#include "evaluator/train_step.h"
#include "genome/genome.h"
#include "genome/presets.h"
#ifdef STARSYNTH_KERNELS
#include "kernels/ops.h"
#endif

namespace starsynth {
namespace {

class TrainStepTest : public ::testing::Test {
 protected:
  void SetUp() override { at::set_num_threads(1); }
};

LivModel preset_model(const std::string& preset, int livs, int64_t width, const torch::Device& device,
                      at::ScalarType dtype) {
  const SearchSpace space = preset_space(livs, width, 16);
  torch::manual_seed(7);
  LivModel m(compile(space, preset_genome(space, preset)));
  m->to(device, dtype);
  return m;
}

// The trainer's split: weight decay on matrices, none on the rest (vectors here).
void split(LivModel& m, std::vector<at::Tensor>& decay, std::vector<at::Tensor>& no_decay) {
  for (const auto& p : m->named_parameters()) (p.value().dim() >= 2 ? decay : no_decay).push_back(p.value());
}

at::Tensor loss_of(LivModel& m, const at::Tensor& x, const at::Tensor& y) {
  return at::cross_entropy_loss(m->forward(x).reshape({-1, 16}).to(at::kFloat), y.reshape({-1}));
}

double max_difference(const LivModel& a, const LivModel& b) {
  double worst = 0;
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    worst = std::max(worst, (pa[i] - pb[i]).abs().max().item<double>());
  return worst;
}

// Six steps of FlatAdamW beside torch::optim::AdamW after clip_grad_norm_, float64 on `device`.
void expect_flat_adamw_matches_torch(const torch::Device& device) {
  const auto on = at::TensorOptions().dtype(at::kLong).device(device);
  for (const double clip : {0.05, 0.0}) {
    LivModel ours = preset_model("striped-hyena2", 4, 32, device, at::kDouble);
    LivModel theirs = preset_model("striped-hyena2", 4, 32, device, at::kDouble);
    ASSERT_EQ(max_difference(ours, theirs), 0.0);
    std::vector<at::Tensor> decay, no_decay, their_decay, their_no_decay;
    split(ours, decay, no_decay);
    split(theirs, their_decay, their_no_decay);
    ASSERT_FALSE(decay.empty());
    ASSERT_FALSE(no_decay.empty());
    AdamWSettings s;
    s.weight_decay = 0.1;
    s.clip = clip;
    FlatAdamW flat(decay, no_decay, s);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(their_decay, std::make_unique<torch::optim::AdamWOptions>(
                                         torch::optim::AdamWOptions(1).weight_decay(0.1).betas({0.9, 0.95})));
    groups.emplace_back(their_no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                            torch::optim::AdamWOptions(1).weight_decay(0.0).betas({0.9, 0.95})));
    torch::optim::AdamW torch_adamw(groups);
    torch::manual_seed(1);
    for (int64_t step = 0; step < 6; ++step) {
      const double lr = 0.01 * double(step + 1);  // changes every step, as the schedule does
      const at::Tensor x = at::randint(16, {3, 12}, on), y = at::randint(16, {3, 12}, on);
      flat.zero_grad();
      loss_of(ours, x, y).backward();
      flat.schedule(step, lr);
      flat.update();

      torch_adamw.zero_grad();
      loss_of(theirs, x, y).backward();
      const double norm = torch::nn::utils::clip_grad_norm_(theirs->parameters(), clip > 0 ? clip : 1e300);
      EXPECT_NEAR(flat.grad_norm().item<double>(), norm, 1e-12 * norm) << "step " << step;
      if (clip > 0 && step == 0) {
        ASSERT_GT(norm, clip) << "the test should make clipping matter";
      }
      for (auto& g : torch_adamw.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      torch_adamw.step();
      EXPECT_LT(max_difference(ours, theirs), 1e-12) << "clip " << clip << ", step " << step;
    }
    // The parameters moved: the comparison above compared updates, not untouched tensors.
    EXPECT_GT(max_difference(ours, preset_model("striped-hyena2", 4, 32, device, at::kDouble)), 1e-3);
  }
}

TEST_F(TrainStepTest, FlatAdamWDoesWhatTorchAdamWAndClipGradNormDo) { expect_flat_adamw_matches_torch(torch::kCPU); }

// On a GPU the update is one fused kernel where the kernels are built (LibTorch's ops elsewhere).
TEST_F(TrainStepTest, OnTheGpuFlatAdamWDoesWhatTorchAdamWAndClipGradNormDo) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
#ifdef STARSYNTH_KERNELS
  ASSERT_NE(kernels::install().find("adamw"), std::string::npos);
#endif
  expect_flat_adamw_matches_torch(torch::kCUDA);
}

TEST_F(TrainStepTest, ParametersBecomeViewsOfOneBufferAndTiedTensorsCountOnce) {
  LivModel m = preset_model("transformer++", 4, 32, torch::kCPU, at::kFloat);
  const std::vector<at::Tensor> params = m->parameters();
  std::vector<at::Tensor> before;
  for (const auto& p : params) before.push_back(p.clone());
  const at::Tensor x = at::randint(16, {2, 9}, at::kLong);
  const at::Tensor out = m->forward(x).detach();
  // The first tensor listed three times, as tied layers would list it.
  std::vector<at::Tensor> decay = params, no_decay = {params[0], params[0]};
  FlatAdamW flat(decay, no_decay, AdamWSettings{});
  EXPECT_EQ(flat.numel(), m->parameter_count());
  EXPECT_EQ(flat.params().size(), params.size());
  const void* base = params[0].storage().unsafeGetStorageImpl();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(params[i].storage().unsafeGetStorageImpl(), base) << i;
    EXPECT_TRUE(at::equal(params[i], before[i])) << i;
    EXPECT_TRUE(params[i].requires_grad()) << i;
  }
  EXPECT_TRUE(at::equal(m->forward(x), out));
  // A step with no gradients at all: zero gradients, so only the decay moves the parameters.
  flat.schedule(0, 0.5);
  flat.update();
  EXPECT_TRUE(at::allclose(params[1], before[1] * (1 - 0.5 * 0.1)));

  const at::Tensor other = at::zeros({3}, at::kDouble).requires_grad_();
  EXPECT_THROW((FlatAdamW({params[0], other}, {}, AdamWSettings{})), std::invalid_argument);
}

TEST_F(TrainStepTest, TrainStepKeepsEachStepsLoss) {
  LivModel m = preset_model("striped-mamba", 4, 32, torch::kCPU, at::kFloat);
  LivModel copy = preset_model("striped-mamba", 4, 32, torch::kCPU, at::kFloat);
  std::vector<at::Tensor> decay, no_decay;
  split(m, decay, no_decay);
  FlatAdamW flat(decay, no_decay, AdamWSettings{});
  TrainStep runner([&](const at::Tensor& x, const at::Tensor& y) { return loss_of(m, x, y); }, flat, torch::kCPU, 3,
                   true);
  EXPECT_FALSE(runner.graphed());  // no graphs on the CPU
  const at::Tensor x = at::randint(16, {2, 10}, at::kLong), y = x;  // learnable: name the current token
  const double first = loss_of(copy, x, y).item<double>();
  runner.run(x, y, 0, 1e-2);
  runner.run(x, y, 1, 1e-2);
  const std::vector<double> losses = runner.losses(0, 2);
  ASSERT_EQ(losses.size(), 2u);
  EXPECT_NEAR(losses[0], first, 1e-6);
  EXPECT_LT(losses[1], losses[0]);  // one AdamW step on the same batch lowers its loss
  try {
    runner.run(x, y, 3, 1e-2);
    FAIL() << "step 3 of 3 should be refused";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "TrainStep: step 3 outside the 3 steps it was made for");
  }
}

// On a GPU: the graph replays what op by op computes, for models whose steps go through cuBLAS,
// cuFFT (Hyena-LI) and, where built, the CUDA kernels (gated convolutions, recurrences), in float32
// and under bf16 autocast as the evaluator trains (there atomics in the kernels' backward make the
// two runs differ in the last bits, which bf16 and a dozen AdamW steps magnify).
TEST_F(TrainStepTest, AReplayedCudaGraphTrainsLikeOpByOp) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
#ifdef STARSYNTH_KERNELS
  kernels::install();
#endif
  for (const bool bf16 : {false, true})
    for (const std::string preset : {"transformer++", "striped-hyena2", "striped-mamba"}) {
      const std::string what = preset + (bf16 ? ", bf16" : ", float32");
      std::vector<std::vector<double>> losses;
      std::vector<LivModel> models;
      for (const bool graphs : {false, true}) {
        models.push_back(preset_model(preset, 4, 64, torch::kCUDA, at::kFloat));
        LivModel& m = models.back();
        std::vector<at::Tensor> decay, no_decay;
        split(m, decay, no_decay);
        FlatAdamW flat(decay, no_decay, AdamWSettings{});
        const int64_t steps = 12;
        auto loss = [&](const at::Tensor& x, const at::Tensor& y) {
          const Bf16Autocast autocast(bf16);
          return loss_of(m, x, y);
        };
        TrainStep runner(loss, flat, torch::kCUDA, steps, graphs);
        torch::manual_seed(3);
        for (int64_t step = 0; step < steps; ++step) {
          const at::Tensor x = at::randint(16, {8, 64}, at::kLong);
          runner.run(x, x, step, 3e-3);  // learnable: name the current token
        }
        losses.push_back(runner.losses(0, steps));
        EXPECT_EQ(runner.graphed(), graphs) << what << ": " << runner.fallback_reason();
      }
      const double tolerance = bf16 ? 3e-2 : 1e-4;
      for (size_t i = 0; i < losses[0].size(); ++i)
        EXPECT_NEAR(losses[1][i], losses[0][i], tolerance) << what << ", step " << i;
      EXPECT_LT(losses[0].back(), losses[0].front()) << what;
      EXPECT_LT(max_difference(models[0], models[1]), bf16 ? 5e-2 : 1e-4) << what;
    }
}

}  // namespace
}  // namespace starsynth
