// Training throughput of a preset built by starsynth's evaluator: tokens/s, time per step and
// model FLOPs utilisation, on random byte tokens (the data do not change the work).
//
//   train_speed --preset transformer++ --width 768 --livs 24 --batch 16 --seq 2048 --device cuda
//   STARSYNTH_KERNELS=0 train_speed ...       the same without the CUDA kernels of kernels/
//   STARSYNTH_GRAPHS=0 train_speed ...        the evaluator's step op by op, not replayed as a CUDA graph
//   train_speed --optimizer torch ...         LibTorch's AdamW, op by op (the step before FlatAdamW)
//
// By default each step is the evaluator's (evaluator/train_step.h): the batch copied from the
// host, FlatAdamW with gradient clipping, a CUDA graph on CUDA.
// Prints one line per repeat and the median; `--csv` adds a machine-readable line.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "evaluator/model.h"
#include "evaluator/train_step.h"
#include "genome/genome.h"
#include "genome/metrics.h"
#include "genome/presets.h"
#ifdef STARSYNTH_KERNELS
#include <nvtx3/nvToolsExt.h>  // header-only: marks the timed steps for bench/profile_step.sh (ncu)

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
  const std::string optimizer = option(argc, argv, "optimizer", "flat");
  if (optimizer != "flat" && optimizer != "torch") {
    std::fprintf(stderr, "error: --optimizer: expected flat or torch, got \"%s\"\n", optimizer.c_str());
    return 2;
  }
  const bool torch_adamw = optimizer == "torch";
  const at::Tensor tokens = at::randint(256, {batch, seq + 1}, at::kLong);  // on the host, as the evaluator's batches
  const at::Tensor x = tokens.slice(1, 0, seq).contiguous(), y = tokens.slice(1, 1).contiguous();
  auto loss_of = [&](const at::Tensor& in, const at::Tensor& tg) {
    const Bf16Autocast autocast(bf16);
    return cross_entropy(model->forward(in).reshape({-1, 256}), tg.reshape({-1}), -100);
  };

  const int64_t total_steps = 5 + int64_t(repeats) * steps;
  std::unique_ptr<torch::optim::AdamW> their_adamw;
  std::unique_ptr<FlatAdamW> flat;
  std::unique_ptr<TrainStep> runner;
  at::Tensor dx, dy;  // the batch on the device, for the old step (TrainStep copies it each step)
  if (torch_adamw) {
    their_adamw = std::make_unique<torch::optim::AdamW>(model->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.1));
    dx = x.to(device), dy = y.to(device);
  } else {
    std::vector<at::Tensor> decay, no_decay;
    for (const at::Tensor& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    flat = std::make_unique<FlatAdamW>(decay, no_decay, AdamWSettings{});
    runner = std::make_unique<TrainStep>(loss_of, *flat, device, total_steps, TrainStep::graphs_enabled());
  }
  int64_t done = 0;
  auto step = [&] {
    if (runner) {
      runner->run(x, y, done++, 1e-4);
      return;
    }
    const at::Tensor loss = loss_of(dx, dy);
    their_adamw->zero_grad();
    loss.backward();
    their_adamw->step();
  };
  auto wait = [&] {
    if (runner) runner->losses(0, done);
    sync(device);
  };

  for (int i = 0; i < 5; ++i) step();  // allocator, cuBLAS and kernel selection warm-up, and the capture
  wait();
  const AnalyticMetrics a = analyze(spec, seq, 2);
  std::vector<double> rates;
#ifdef STARSYNTH_KERNELS
  nvtxRangePushA("timed");
#endif
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) step();
    wait();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(double(batch * seq * steps) / s);
    std::printf("repeat %d: %.0f tokens/s, %.2f ms/step\n", r, rates.back(), 1e3 * s / steps);
  }
#ifdef STARSYNTH_KERNELS
  nvtxRangePop();
#endif
  std::sort(rates.begin(), rates.end());
  const double median = rates[rates.size() / 2];
  // Training ≈ 3 × the forward FLOPs (forward plus twice for the backward).
  const double mfu = 3.0 * a.flops_per_token * median / (peak_tflops * 1e12);
  std::printf("%s width %lld, %d LIVs, batch %lld × %lld, %s: median %.0f tokens/s, %.2f ms/step, MFU %.1f %% of %.0f TFLOP/s "
              "(%s parameters; CUDA kernels: %s; step: %s)\n",
              preset.c_str(), static_cast<long long>(width), livs, static_cast<long long>(batch),
              static_cast<long long>(seq), bf16 ? "bf16 autocast" : "fp32", median, 1e3 * double(batch * seq) / median,
              100 * mfu, peak_tflops, std::to_string(a.params.total).c_str(), kernels.empty() ? "none" : kernels.c_str(),
              torch_adamw ? "torch AdamW, op by op"
              : runner->graphed() ? "FlatAdamW, CUDA graph"
                                  : ("FlatAdamW, op by op" + (runner->fallback_reason().empty() ? std::string() : " (capture failed: " + runner->fallback_reason() + ")")).c_str());
  if (flag(argc, argv, "csv"))
    std::printf("csv,starsynth,%s,%lld,%d,%lld,%lld,%.0f,%.4f\n", preset.c_str(), static_cast<long long>(width), livs,
                static_cast<long long>(batch), static_cast<long long>(seq), median, mfu);
  return 0;
}
