// One training step as the evaluator runs it — forward, loss, backward, global gradient-norm
// clipping, AdamW — built so that nothing in it waits for the device. At MAD scale (width 128,
// batch 128 × 128) a step is hundreds of tiny kernels and the per-tensor optimiser alone launches
// seven per parameter tensor, so launching, not arithmetic, sets the pace:
//   - FlatAdamW keeps every parameter as a view of one flat buffer, so clipping and the update
//     are a dozen kernels whatever the number of tensors (three with the CUDA kernel: gather,
//     norm, update), and keeps the per-step scalars (learning rate, bias corrections) on the device;
//   - TrainStep, on CUDA, captures the whole step once as a CUDA graph and replays it
//     (STARSYNTH_GRAPHS=0, or a capture that fails, runs it op by op instead);
//   - Bf16Autocast is the autocast guard the evaluator's and the benchmarks' forward passes share.
// Only evaluator translation units and benchmarks include this header (it pulls in LibTorch).
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace starsynth {

// bf16 autocast of CUDA forward passes while in scope (LibTorch ≥ 2.4's per-device API; the CPU
// build has none). `on` = false does nothing.
class Bf16Autocast {
 public:
  explicit Bf16Autocast(bool on) : on_(on) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    if (on_) {
      at::autocast::set_autocast_enabled(at::kCUDA, true);
      at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    }
#else
    on_ = false;
#endif
  }
  ~Bf16Autocast() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    if (on_) {
      at::autocast::set_autocast_enabled(at::kCUDA, false);
      at::autocast::clear_cache();
    }
#endif
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_;
};

struct AdamWSettings {
  double weight_decay = 0.1;  // on the `decay` tensors only
  double clip = 1.0;          // global L2 norm of all gradients; ≤ 0: no clipping
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
};

// AdamW (decoupled weight decay, torch::optim::AdamW's arithmetic) over one flat buffer. Unlike
// torch::optim::AdamW, a tensor without a gradient is not skipped: it counts as a zero gradient.
class FlatAdamW {
 public:
  // The tensors become views of one buffer (their values kept): call after the model has moved
  // to its device, and never move it again. A tensor listed twice (tied) is taken once. All must
  // be on one device and of one floating dtype.
  FlatAdamW(const std::vector<at::Tensor>& decay, const std::vector<at::Tensor>& no_decay, const AdamWSettings& s);

  // Host side of step `step` (0-based) at learning rate `lr`: writes the device scalars, never waits.
  void schedule(int64_t step, double lr);
  // Gathers the gradients, clips them, updates the parameters: device work only, with the device
  // scalars of the last schedule() (so it can be captured in a CUDA graph). A tensor without a
  // gradient counts as a zero gradient (and still decays).
  void update();
  // Sets every gradient to none, so that the next backward allocates them afresh.
  void zero_grad();

  // The last update's gradient norm before clipping (a device scalar).
  const at::Tensor& grad_norm() const { return norm_; }
  const std::vector<at::Tensor>& params() const { return params_; }
  int64_t numel() const { return flat_.numel(); }

 private:
  AdamWSettings s_;
  std::vector<at::Tensor> params_;  // decayed ones first
  int64_t decayed_ = 0;             // elements of flat_ that get weight decay
  at::Tensor flat_, grad_, exp_avg_, exp_avg_sq_, norm_;
  at::Tensor scalars_;  // on the device: [1 − lr·weight_decay, −lr / (1 − β1^t), 1 / √(1 − β2^t)]
};

// FlatAdamW's update after the gradient norm (clipping, decay, moments, step) as one CUDA kernel;
// kernels::install() sets it. Arguments: the flat parameter, gradient and moment buffers, the
// device scalars [1 − lr·wd, −lr / (1 − β1^t), 1 / √(1 − β2^t)], the norm, the decayed prefix's
// length and the settings. It returns false where it does not apply (a dtype it lacks), and
// LibTorch's ops run instead; so they do with no kernel installed.
using AdamWKernel = bool (*)(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                             const at::Tensor& exp_avg_sq, const at::Tensor& scalars, const at::Tensor& norm,
                             int64_t decayed, const AdamWSettings& s);
void use_adamw_kernel(AdamWKernel kernel);

// Runs training steps: loss(inputs, targets) → scalar loss, backward, FlatAdamW. On CUDA, all of
// it (the batch's copy to the device too) runs on a side stream of its own, since a capture
// cannot use the default stream; after a few steps op by op (cuBLAS, cuFFT and the allocator
// settle) the step is captured as a CUDA graph, and every later step with same-shaped batches
// replays it. Nothing waits for the device until losses() is asked.
class TrainStep {
 public:
  using Loss = std::function<at::Tensor(const at::Tensor& inputs, const at::Tensor& targets)>;
  // `steps`: how many steps will run (their losses are kept on the device).
  TrainStep(Loss loss, FlatAdamW& optimizer, const torch::Device& device, int64_t steps, bool graphs);
  ~TrainStep();  // waits for the steps launched

  // Step `step` on this batch (host tensors; moved to the device here) at learning rate `lr`.
  void run(const at::Tensor& inputs, const at::Tensor& targets, int64_t step, double lr);
  // The losses of steps [from, to): waits for them, and afterwards the caller's stream sees every
  // parameter update launched so far.
  std::vector<double> losses(int64_t from, int64_t to);

  // Whether steps are replayed from a CUDA graph; if a capture failed, why.
  bool graphed() const;
  const std::string& fallback_reason() const { return fallback_; }

  // STARSYNTH_GRAPHS=0 turns graphs off (for comparison, or if a driver misbehaves).
  static bool graphs_enabled();

 private:
  at::Tensor eager(const at::Tensor& inputs, const at::Tensor& targets);
  bool capture(const at::Tensor& inputs, const at::Tensor& targets);

  Loss loss_;
  FlatAdamW& optimizer_;
  torch::Device device_;
  bool graphs_;
  int64_t eager_steps_ = 0;
  std::string fallback_;
  at::Tensor losses_;  // [steps] on the device
  struct Cuda;         // the side stream, the graph and its static tensors (CUDA builds only)
  std::unique_ptr<Cuda> cuda_;
};

}  // namespace starsynth
