#include "evaluator/train_step.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <unordered_set>

#ifdef STARSYNTH_CUDA
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace starsynth {

namespace {
AdamWKernel g_adamw_kernel = nullptr;
}

void use_adamw_kernel(AdamWKernel kernel) { g_adamw_kernel = kernel; }

FlatAdamW::FlatAdamW(const std::vector<at::Tensor>& decay, const std::vector<at::Tensor>& no_decay,
                     const AdamWSettings& s)
    : s_(s) {
  std::unordered_set<const void*> seen;
  auto take = [&](const std::vector<at::Tensor>& tensors) {
    for (const at::Tensor& p : tensors)
      if (seen.insert(p.unsafeGetTensorImpl()).second) params_.push_back(p);
  };
  take(decay);
  const size_t decayed_tensors = params_.size();
  take(no_decay);
  if (params_.empty()) throw std::invalid_argument("FlatAdamW: no parameters");
  std::vector<at::Tensor> pieces;
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& p = params_[i];
    if (p.device() != params_[0].device() || p.scalar_type() != params_[0].scalar_type() ||
        !at::isFloatingType(p.scalar_type()))
      throw std::invalid_argument("FlatAdamW: parameters must share one device and one floating dtype");
    pieces.push_back(p.detach().reshape({-1}));
    if (i < decayed_tensors) decayed_ += p.numel();
  }
  torch::NoGradGuard no_grad;
  flat_ = at::cat(pieces);
  int64_t offset = 0;
  for (at::Tensor& p : params_) {
    const int64_t n = p.numel();
    p.set_data(flat_.narrow(0, offset, n).view(p.sizes()));
    offset += n;
  }
  grad_ = at::zeros_like(flat_);
  exp_avg_ = at::zeros_like(flat_);
  exp_avg_sq_ = at::zeros_like(flat_);
  norm_ = at::zeros({}, flat_.options());
  scalars_ = at::zeros({3}, flat_.options());
}

void FlatAdamW::schedule(int64_t step, double lr) {
  const double t = double(step + 1);
  at::Tensor host = at::tensor({1.0 - lr * s_.weight_decay, -lr / (1.0 - std::pow(s_.beta1, t)),
                                1.0 / std::sqrt(1.0 - std::pow(s_.beta2, t))},
                               at::TensorOptions().dtype(at::kDouble))
                        .to(scalars_.scalar_type());
  if (!scalars_.is_cuda()) {
    scalars_.copy_(host);
    return;
  }
  // Pinned, so the copy is queued rather than waited for; the host allocator keeps the block
  // until the copy has run.
  scalars_.copy_(host.pin_memory(), /*non_blocking=*/true);
}

void FlatAdamW::update() {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  grads.reserve(params_.size());
  for (const at::Tensor& p : params_)
    grads.push_back(p.grad().defined() ? p.grad().reshape({-1}) : at::zeros({p.numel()}, flat_.options()));
  at::cat_out(grad_, grads, 0);
  at::linalg_vector_norm_out(norm_, grad_, 2);
  if (g_adamw_kernel && flat_.is_cuda() && g_adamw_kernel(flat_, grad_, exp_avg_, exp_avg_sq_, scalars_, norm_, decayed_, s_))
    return;
  if (s_.clip > 0) grad_.mul_((s_.clip / (norm_ + 1e-6)).clamp_max_(1.0));  // clip_grad_norm_'s coefficient
  if (decayed_ > 0) flat_.narrow(0, 0, decayed_).mul_(scalars_[0]);
  exp_avg_.mul_(s_.beta1).add_(grad_, 1 - s_.beta1);
  exp_avg_sq_.mul_(s_.beta2).addcmul_(grad_, grad_, 1 - s_.beta2);
  const at::Tensor denom = exp_avg_sq_.sqrt().mul_(scalars_[2]).add_(s_.eps);
  flat_.addcmul_(exp_avg_ / denom, scalars_[1]);
}

void FlatAdamW::zero_grad() {
  for (at::Tensor& p : params_) p.mutable_grad() = at::Tensor();
}

// ---------------------------------------------------------------------------------------------

namespace {
constexpr int64_t kEagerSteps = 3;  // op by op before the capture: lazy initialisation settles
}

bool TrainStep::graphs_enabled() {
  const char* v = std::getenv("STARSYNTH_GRAPHS");
  return !(v && std::string(v) == "0");
}

#ifdef STARSYNTH_CUDA
struct TrainStep::Cuda {
  explicit Cuda(const torch::Device& d) : side(c10::cuda::getStreamFromPool(false, d.index())), caller(c10::cuda::getCurrentCUDAStream(d.index())) {}
  c10::cuda::CUDAStream side, caller;
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  at::Tensor inputs, targets, loss;  // the graph reads and writes these
};
#else
struct TrainStep::Cuda {};
#endif

TrainStep::TrainStep(Loss loss, FlatAdamW& optimizer, const torch::Device& device, int64_t steps, bool graphs)
    : loss_(std::move(loss)), optimizer_(optimizer), device_(device), graphs_(graphs && device.is_cuda()) {
  losses_ = at::zeros({std::max<int64_t>(steps, 1)}, at::TensorOptions().dtype(at::kFloat).device(device));
#ifdef STARSYNTH_CUDA
  if (device.is_cuda()) {
    cuda_ = std::make_unique<Cuda>(device);
    at::cuda::CUDAEvent ready;  // the side stream starts after everything queued so far
    ready.record(cuda_->caller);
    ready.block(cuda_->side);
  }
#endif
}

TrainStep::~TrainStep() {
#ifdef STARSYNTH_CUDA
  if (cuda_) {
    try {
      cuda_->side.synchronize();
    } catch (...) {  // a destructor never throws; a broken context shows up at the next call
    }
  }
#endif
  optimizer_.zero_grad();  // the gradients (the graph's, on CUDA) are not needed after training
}

bool TrainStep::graphed() const {
#ifdef STARSYNTH_CUDA
  return cuda_ && cuda_->graph;
#else
  return false;
#endif
}

at::Tensor TrainStep::eager(const at::Tensor& inputs, const at::Tensor& targets) {
  optimizer_.zero_grad();
  const at::Tensor loss = loss_(inputs, targets);
  loss.backward();
  optimizer_.update();
  ++eager_steps_;
  return loss.detach();
}

#ifdef STARSYNTH_CUDA
namespace {

using PoolId = decltype(at::cuda::graph_pool_handle());

// What CUDAGraph's own clean-up leaves behind when a capture fails: end the stream's capture if it
// is still on, and stop routing this device's allocations to the graph's pool (while a capture
// seems under way the allocator never frees its cache to retry a failed allocation).
void abandon_capture(const c10::cuda::CUDAStream& stream, PoolId pool) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream.stream(), &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    cudaGraph_t partial = nullptr;
    if (cudaStreamEndCapture(stream.stream(), &partial) == cudaSuccess && partial) cudaGraphDestroy(partial);
  }
  (void)cudaGetLastError();  // the capture's error already travels in the exception
  try {
    c10::cuda::CUDACachingAllocator::endAllocateToPool(stream.device_index(), pool);
  } catch (...) {  // capture_end got that far itself
  }
  try {
    c10::cuda::CUDACachingAllocator::releasePool(stream.device_index(), pool);
  } catch (...) {
  }
}

}  // namespace
#endif

bool TrainStep::capture(const at::Tensor& inputs, const at::Tensor& targets) {
#ifdef STARSYNTH_CUDA
  Cuda& c = *cuda_;
  c.inputs = inputs.clone();
  c.targets = targets.clone();
  optimizer_.zero_grad();  // the captured backward allocates the gradients from the graph's pool
  // Autocast's cache of casted weights would outlive the capture; the graph recasts each replay.
  const bool cache = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_cache_enabled(false);
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  const PoolId pool = at::cuda::graph_pool_handle();
  try {
    // Thread-local: other threads of this process (in-process workers sharing the GPU) may go on
    // allocating while this one captures.
    graph->capture_begin(pool, cudaStreamCaptureModeThreadLocal);
    const at::Tensor loss = loss_(c.inputs, c.targets);
    loss.backward();
    optimizer_.update();
    c.loss = loss.detach();
    graph->capture_end();
  } catch (const std::exception& e) {
    optimizer_.zero_grad();  // gradients the partial capture allocated from the graph's pool
    c.inputs = c.targets = c.loss = at::Tensor();
    abandon_capture(cuda_->side, pool);
    // Deliberately leaked: the allocators may keep pointers to it after a failed capture.
    (void)graph.release();
    at::autocast::set_autocast_cache_enabled(cache);
    const std::string what = e.what();
    fallback_ = what.substr(0, what.find('\n'));
    static std::atomic<bool> said{false};  // once per process: later models would mostly say the same
    if (!said.exchange(true))
      std::fprintf(stderr, "starsynth: CUDA graph capture failed, training op by op: %s\n", fallback_.c_str());
    return false;
  }
  at::autocast::set_autocast_cache_enabled(cache);
  c.graph = std::move(graph);
  return true;
#else
  (void)inputs, (void)targets;
  return false;
#endif
}

void TrainStep::run(const at::Tensor& inputs, const at::Tensor& targets, int64_t step, double lr) {
  if (step < 0 || step >= losses_.numel())
    throw std::out_of_range("TrainStep: step " + std::to_string(step) + " outside the " +
                            std::to_string(losses_.numel()) + " steps it was made for");
#ifdef STARSYNTH_CUDA
  if (cuda_) {
    const c10::cuda::CUDAStreamGuard on_side(cuda_->side);
    optimizer_.schedule(step, lr);
    const at::Tensor in = inputs.pin_memory().to(device_, /*non_blocking=*/true);
    const at::Tensor tg = targets.pin_memory().to(device_, /*non_blocking=*/true);
    Cuda& c = *cuda_;
    if (c.graph && (!in.sizes().equals(c.inputs.sizes()) || !tg.sizes().equals(c.targets.sizes()))) {
      optimizer_.zero_grad();  // another shape: op by op from here on
      c.inputs = c.targets = c.loss = at::Tensor();
      c.graph.reset();
      graphs_ = false;
    }
    if (!c.graph && graphs_ && eager_steps_ >= kEagerSteps && !capture(in, tg)) graphs_ = false;
    if (c.graph) {
      c.inputs.copy_(in, /*non_blocking=*/true);
      c.targets.copy_(tg, /*non_blocking=*/true);
      c.graph->replay();
      losses_[step].copy_(c.loss);
    } else {
      losses_[step].copy_(eager(in, tg));
    }
    return;
  }
#endif
  optimizer_.schedule(step, lr);
  losses_[step].copy_(eager(inputs.to(device_), targets.to(device_)));
}

std::vector<double> TrainStep::losses(int64_t from, int64_t to) {
  at::Tensor host;
#ifdef STARSYNTH_CUDA
  if (cuda_) {
    const c10::cuda::CUDAStreamGuard on_side(cuda_->side);
    host = losses_.slice(0, from, to).to(at::kCPU, at::kDouble);  // waits for the side stream
    at::cuda::CUDAEvent done;  // the caller's stream sees every update launched so far
    done.record(cuda_->side);
    done.block(cuda_->caller);
  }
#endif
  if (!host.defined()) host = losses_.slice(0, from, to).to(at::kCPU, at::kDouble);
  const double* p = host.data_ptr<double>();
  return std::vector<double>(p, p + host.numel());
}

}  // namespace starsynth
