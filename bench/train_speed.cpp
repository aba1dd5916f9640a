// Training throughput of a preset built by starsynth's evaluator: tokens/s, time per step and
// model FLOPs utilisation, on random byte tokens (the data do not change the work).
//
//   train_speed --preset transformer++ --width 768 --livs 24 --batch 16 --seq 2048 --device cuda
//   STARSYNTH_KERNELS=0 train_speed ...       the same without the CUDA kernels of kernels/
//
// Prints one line per repeat and the median; `--csv` adds a machine-readable line.
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "evaluator/model.h"
#include "genome/genome.h"
#include "genome/metrics.h"
#include "genome/presets.h"
#ifdef STARSYNTH_KERNELS
#include "kernels/ops.h"
#endif

using namespace starsynth;

namespace {

std::string option(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

bool flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i)
    if (argv[i] == "--" + name) return true;
  return false;
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string preset = option(argc, argv, "preset", "transformer++");
  const int livs = std::stoi(option(argc, argv, "livs", "24"));
  const int64_t width = std::stoll(option(argc, argv, "width", "768"));
  const int64_t batch = std::stoll(option(argc, argv, "batch", "16"));
  const int64_t seq = std::stoll(option(argc, argv, "seq", "2048"));
  const int steps = std::stoi(option(argc, argv, "steps", "20"));
  const int repeats = std::stoi(option(argc, argv, "repeats", "3"));
  const double peak_tflops = std::stod(option(argc, argv, "peak-tflops", "989"));  // H100 SXM dense bf16
  const torch::Device device(option(argc, argv, "device", torch::cuda::is_available() ? "cuda" : "cpu"));
  const bool bf16 = device.is_cuda() && !flag(argc, argv, "fp32");
#ifdef STARSYNTH_KERNELS
  const std::string kernels = kernels::install();  // STARSYNTH_KERNELS=0: the composite forms
#else
  const std::string kernels;
#endif

  const SearchSpace space = preset_space(livs, width, 256);
  const ModelSpec spec = compile(space, preset_genome(space, preset));
  torch::manual_seed(0);
  LivModel model(spec);
  model->to(device);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.1));
  const at::Tensor tokens = at::randint(256, {batch, seq + 1}, at::TensorOptions().dtype(at::kLong).device(device));
  const at::Tensor x = tokens.slice(1, 0, seq), y = tokens.slice(1, 1);

  auto step = [&] {
    at::Tensor loss;
    {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
      if (bf16) at::autocast::set_autocast_enabled(at::kCUDA, true), at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
#endif
      loss = at::cross_entropy_loss(model->forward(x).reshape({-1, 256}).to(at::kFloat), y.reshape({-1}));
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
      if (bf16) at::autocast::set_autocast_enabled(at::kCUDA, false), at::autocast::clear_cache();
#endif
    }
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  };

  for (int i = 0; i < 3; ++i) step();  // allocator, cuBLAS and kernel selection warm-up
  sync(device);
  const AnalyticMetrics a = analyze(spec, seq, 2);
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) step();
    sync(device);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(double(batch * seq * steps) / s);
    std::printf("repeat %d: %.0f tokens/s, %.2f ms/step\n", r, rates.back(), 1e3 * s / steps);
  }
  std::sort(rates.begin(), rates.end());
  const double median = rates[rates.size() / 2];
  // Training ≈ 3 × the forward FLOPs (forward plus twice for the backward).
  const double mfu = 3.0 * a.flops_per_token * median / (peak_tflops * 1e12);
  std::printf("%s width %lld, %d LIVs, batch %lld × %lld, %s: median %.0f tokens/s, %.2f ms/step, MFU %.1f %% of %.0f TFLOP/s "
              "(%s parameters; CUDA kernels: %s)\n",
              preset.c_str(), static_cast<long long>(width), livs, static_cast<long long>(batch),
              static_cast<long long>(seq), bf16 ? "bf16 autocast" : "fp32", median, 1e3 * double(batch * seq) / median,
              100 * mfu, peak_tflops, std::to_string(a.params.total).c_str(), kernels.empty() ? "none" : kernels.c_str());
  if (flag(argc, argv, "csv"))
    std::printf("csv,starsynth,%s,%lld,%d,%lld,%lld,%.0f,%.4f\n", preset.c_str(), static_cast<long long>(width), livs,
                static_cast<long long>(batch), static_cast<long long>(seq), median, mfu);
  return 0;
}
