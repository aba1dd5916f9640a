// A warp per row: lanes 32 classes apart read the row once for its maximum and again (from L1)
// for Σ exp(x − max); lane 0 keeps the row's log-sum-exp and adds its loss to the warp's running
// sum. Each block writes one (loss sum, scored rows) pair; one block adds the pairs in order.
// The backward pass is one more read of the logits and one write of their gradient.
#include "kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "kernels/cuda_util.cuh"

namespace starsynth::kernels {
namespace {

using cuda::Accumulate;
using cuda::narrow;
using cuda::warp_max;
using cuda::warp_sum;
using cuda::widen;

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;

__device__ __forceinline__ float exponential(float v) { return expf(v); }
__device__ __forceinline__ double exponential(double v) { return exp(v); }
__device__ __forceinline__ float logarithm(float v) { return logf(v); }
__device__ __forceinline__ double logarithm(double v) { return log(v); }

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* __restrict__ x, const int64_t* __restrict__ targets, A* __restrict__ lse,
                   A* __restrict__ partials, int rows, int classes, int64_t ignore) {
  __shared__ A warp_loss[kWarps], warp_scored[kWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  A loss = 0, scored = 0;  // lane 0's running sums over the warp's rows
  for (int row = blockIdx.x * kWarps + warp; row < rows; row += gridDim.x * kWarps) {
    const T* xr = x + int64_t(row) * classes;
    // A NaN logit is skipped by fmax but not by the sum below: the loss still says NaN.
    A m = A(-INFINITY);
#pragma unroll 4
    for (int j = lane; j < classes; j += 32) m = fmax(m, A(widen(xr[j])));
    m = warp_max(m);
    A s = 0;
#pragma unroll 4
    for (int j = lane; j < classes; j += 32) s += exponential(A(widen(xr[j])) - m);
    const A l = m + logarithm(warp_sum(s));
    if (lane == 0) {
      lse[row] = l;
      const int64_t t = targets[row];
      if (t != ignore) {
        loss += t >= 0 && t < classes ? l - A(widen(xr[t])) : A(NAN);
        scored += 1;
      }
    }
  }
  if (lane == 0) warp_loss[warp] = loss, warp_scored[warp] = scored;
  __syncthreads();
  if (threadIdx.x == 0) {
    A l = 0, c = 0;
    for (int w = 0; w < kWarps; ++w) l += warp_loss[w], c += warp_scored[w];
    partials[2 * blockIdx.x] = l;
    partials[2 * blockIdx.x + 1] = c;
  }
}

// One block: a fixed-order sum of the per-block pairs, so the loss is the same on every run.
template <typename A>
__global__ void __launch_bounds__(kThreads)
    finish_kernel(const A* __restrict__ partials, int blocks, A* __restrict__ loss, A* __restrict__ scored) {
  __shared__ A sl[kThreads], sc[kThreads];
  A l = 0, c = 0;
  for (int i = threadIdx.x; i < blocks; i += kThreads) l += partials[2 * i], c += partials[2 * i + 1];
  sl[threadIdx.x] = l, sc[threadIdx.x] = c;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) sl[threadIdx.x] += sl[threadIdx.x + half], sc[threadIdx.x] += sc[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *loss = sl[0] / sc[0], *scored = sc[0];
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* __restrict__ x, const int64_t* __restrict__ targets, const A* __restrict__ lse,
                    const A* __restrict__ scored, const A* __restrict__ grad, T* __restrict__ dx, int rows,
                    int classes, int64_t ignore) {
  const A scale = *grad / *scored;
  const int lane = threadIdx.x % 32;
  for (int row = blockIdx.x * kWarps + threadIdx.x / 32; row < rows; row += gridDim.x * kWarps) {
    const int64_t base = int64_t(row) * classes;
    T* dr = dx + base;
    const int64_t t = targets[row];
    if (t == ignore) {
      for (int j = lane; j < classes; j += 32) dr[j] = narrow<T>(A(0));
      continue;
    }
    const T* xr = x + base;
    const A l = lse[row];
#pragma unroll 4
    for (int j = lane; j < classes; j += 32)
      dr[j] = narrow<T>((exponential(A(widen(xr[j])) - l) - (j == t ? A(1) : A(0))) * scale);
  }
}

// Forward: at most 4 blocks per multiprocessor (each warp then walks several rows), which keeps
// the partial pairs few for the one-block finish.
int forward_grid(const CrossEntropyArgs& a) {
  return int(std::clamp<int64_t>((a.rows + kWarps - 1) / kWarps, 1, 4 * int64_t(cuda::multiprocessors())));
}
int backward_grid(const CrossEntropyArgs& a) {
  return int(std::clamp<int64_t>((a.rows + kWarps - 1) / kWarps, 1, int64_t(1) << 30));
}

template <typename T>
void forward(const CrossEntropyArgs& a, void* loss, void* scored, void* lse, void* workspace) {
  using A = typename Accumulate<T>::type;
  const auto stream = static_cast<cudaStream_t>(a.stream);
  const int grid = forward_grid(a);
  forward_kernel<T, A><<<grid, kThreads, 0, stream>>>(static_cast<const T*>(a.logits), a.targets,
                                                      static_cast<A*>(lse), static_cast<A*>(workspace), int(a.rows),
                                                      int(a.classes), a.ignore_index);
  cuda::check(cudaGetLastError(), "cross_entropy", "forward launch");
  finish_kernel<A><<<1, kThreads, 0, stream>>>(static_cast<const A*>(workspace), grid, static_cast<A*>(loss),
                                               static_cast<A*>(scored));
  cuda::check(cudaGetLastError(), "cross_entropy", "finish launch");
}

template <typename T>
void backward(const CrossEntropyArgs& a, const void* lse, const void* scored, const void* grad, void* dlogits) {
  using A = typename Accumulate<T>::type;
  backward_kernel<T, A><<<backward_grid(a), kThreads, 0, static_cast<cudaStream_t>(a.stream)>>>(
      static_cast<const T*>(a.logits), a.targets, static_cast<const A*>(lse), static_cast<const A*>(scored),
      static_cast<const A*>(grad), static_cast<T*>(dlogits), int(a.rows), int(a.classes), a.ignore_index);
  cuda::check(cudaGetLastError(), "cross_entropy", "backward launch");
}

}  // namespace

bool cross_entropy_supported(const CrossEntropyArgs& a) {
  constexpr int64_t limit = int64_t(1) << 31;
  return a.rows >= 1 && a.rows < limit && a.classes >= 1 && a.classes < limit;
}

int64_t cross_entropy_workspace(const CrossEntropyArgs& a) { return 2 * int64_t(forward_grid(a)); }

void cross_entropy_forward(const CrossEntropyArgs& a, void* loss, void* scored, void* lse, void* workspace) {
  if (a.dtype == DType::Float64) return forward<double>(a, loss, scored, lse, workspace);
  if (a.dtype == DType::BFloat16) return forward<__nv_bfloat16>(a, loss, scored, lse, workspace);
  return forward<float>(a, loss, scored, lse, workspace);
}

void cross_entropy_backward(const CrossEntropyArgs& a, const void* lse, const void* scored, const void* grad,
                            void* dlogits) {
  if (a.dtype == DType::Float64) return backward<double>(a, lse, scored, grad, dlogits);
  if (a.dtype == DType::BFloat16) return backward<__nv_bfloat16>(a, lse, scored, grad, dlogits);
  return backward<float>(a, lse, scored, grad, dlogits);
}

}  // namespace starsynth::kernels
