// Which kernel runs: bfloat16 (the evaluator's case under autocast) with up to 128 taps goes to the
// tensor cores (kernels/gated_conv_mma.cu), except the forward pass of filters of up to 4 taps, where
// the register-window kernel is faster. float32, float64 and longer filters take the CUDA-core
// kernels: forward with up to 16 taps the register window (a thread walks 64 time steps of one
// channel); longer filters, and every backward pass, are tiled: a block owns 64 channels (a warp
// reads 32 consecutive channels of one time step, so every global load is coalesced and every
// shared-memory access conflict-free) and a tile of 64 time steps. It stages z = k ⊙ v over the
// tile plus the K − 1 steps before it, and the filter transposed to [tap][channel], in shared
// memory; each thread then produces 16 outputs of one channel. The backward pass stages the gated
// gradient g = dy ⊙ q over the tile and the K − 1 steps after it as well (dz is g correlated with
// the filter), and accumulates the filter gradient Σ_t g[t]·z[t−j] for its channels in shared
// memory across several tiles before one atomic add per (channel, tap).
#include "kernels/gated_conv.h"
#include "kernels/gated_conv_mma.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_util.cuh"

namespace starsynth::kernels {
namespace {

constexpr int kChannels = 64;  // per block
constexpr int kRows = 4;       // thread rows per block: 256 threads
constexpr int kTile = 64;      // time steps per tile

using cuda::Accumulate;
using cuda::multiprocessors;
using cuda::narrow;
using cuda::widen;

void check(cudaError_t e, const char* what) { cuda::check(e, "gated_conv", what); }

template <typename A> size_t forward_smem(int K) { return sizeof(A) * kChannels * size_t(K + kTile + K - 1); }
template <typename A> size_t backward_smem(int K) {
  return sizeof(A) * kChannels * size_t(2 * K + 2 * (kTile + K - 1) + kRows);
}

// z[b, t, c] = k·v, 0 outside [0, L).
template <typename T, typename A>
__device__ __forceinline__ A gated_input(const T* k, const T* v, int64_t i, bool inside) {
  if (!inside) return A(0);
  A z = widen(v[i]);
  if (k) z *= widen(k[i]);
  return z;
}

template <typename T, typename A>
__global__ void __launch_bounds__(kChannels * kRows) forward_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                                                     const T* __restrict__ v, const A* __restrict__ h,
                                                                     const A* __restrict__ D, T* __restrict__ y,
                                                                     int64_t L, int64_t C, int K) {
  extern __shared__ unsigned char smem[];
  A* hs = reinterpret_cast<A*>(smem);  // [K][kChannels]
  A* zs = hs + K * kChannels;          // [kTile + K - 1][kChannels]: time t0 - K + 1 + r
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = int64_t(blockIdx.x) * kChannels + tx, t0 = int64_t(blockIdx.y) * kTile;
  const int64_t base = int64_t(blockIdx.z) * L * C;
  const bool live = c < C;
  for (int j = ty; j < K; j += kRows) hs[j * kChannels + tx] = live ? h[c * K + j] : A(0);
  for (int r = ty; r < kTile + K - 1; r += kRows) {
    const int64_t t = t0 - (K - 1) + r;
    zs[r * kChannels + tx] = gated_input<T, A>(k, v, base + t * C + c, live && t >= 0 && t < L);
  }
  __syncthreads();
  if (!live) return;
  const A skip = D ? D[c] : A(0);
  for (int i = ty; i < kTile && t0 + i < L; i += kRows) {
    const A* z = zs + (i + K - 1) * kChannels + tx;  // z at time t0 + i; z[-j * kChannels] at t0 + i - j
    A acc = skip * z[0];
    for (int j = 0; j < K; ++j) acc += hs[j * kChannels + tx] * z[-j * kChannels];
    const int64_t o = base + (t0 + i) * C + c;
    if (q) acc *= widen(q[o]);
    y[o] = narrow<T>(acc);
  }
}

// Short filters (K ≤ KMAX ≤ 16): no shared memory. A thread walks 64 time steps of one channel
// with the filter and the last KMAX inputs in registers, so each input is read once (plus a
// (K − 1)-step halo per 64 steps) and the kernel streams at close to the copy bandwidth.
constexpr int kSpan = 64;          // time steps per thread
constexpr int kWindowThreads = 128;

template <typename T, typename A, int KMAX>
__global__ void __launch_bounds__(kWindowThreads)
    forward_window_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                          const A* __restrict__ h, const A* __restrict__ D, T* __restrict__ y, int64_t L, int64_t C,
                          int K) {
  const int64_t c = int64_t(blockIdx.x) * kWindowThreads + threadIdx.x;
  if (c >= C) return;
  const int64_t t0 = int64_t(blockIdx.y) * kSpan, base = int64_t(blockIdx.z) * L * C + c;
  A taps[KMAX], window[KMAX];  // at step t, after the shift: window[j] = z at time t - j
#pragma unroll
  for (int j = 0; j < KMAX; ++j) {
    taps[j] = j < K ? h[c * K + j] : A(0);
    const int64_t t = t0 - 1 - j;  // before the first shift
    window[j] = gated_input<T, A>(k, v, base + t * C, j < K - 1 && t >= 0);
  }
  const A skip = D ? D[c] : A(0);
  const int64_t end = t0 + kSpan < L ? t0 + kSpan : L;
#pragma unroll 4
  for (int64_t t = t0; t < end; ++t) {
#pragma unroll
    for (int j = KMAX - 1; j > 0; --j) window[j] = window[j - 1];
    window[0] = gated_input<T, A>(k, v, base + t * C, true);
    A acc = skip * window[0];
#pragma unroll
    for (int j = 0; j < KMAX; ++j) acc += taps[j] * window[j];
    if (q) acc *= widen(q[base + t * C]);
    y[base + t * C] = narrow<T>(acc);
  }
}

template <typename T, typename A>
__global__ void __launch_bounds__(kChannels * kRows)
    backward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                    const A* __restrict__ h, const A* __restrict__ D, const T* __restrict__ dy, T* __restrict__ dq,
                    T* __restrict__ dk, T* __restrict__ dv, A* __restrict__ dh, A* __restrict__ dD, int64_t L,
                    int64_t C, int K) {
  extern __shared__ unsigned char smem[];
  const int W = kTile + K - 1;
  A* hs = reinterpret_cast<A*>(smem);  // [K][kChannels]
  A* dhs = hs + K * kChannels;         // [K][kChannels]: this block's filter gradient
  A* zs = dhs + K * kChannels;         // [W][kChannels]: z at time t0 - K + 1 + r
  A* gs = zs + W * kChannels;          // [W][kChannels]: g = dy·q at time t0 + r
  A* dDs = gs + W * kChannels;         // [kRows][kChannels]
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = int64_t(blockIdx.x) * kChannels + tx;
  const int64_t base = int64_t(blockIdx.z) * L * C;
  const bool live = c < C;
  for (int j = ty; j < K; j += kRows) {
    hs[j * kChannels + tx] = live ? h[c * K + j] : A(0);
    dhs[j * kChannels + tx] = 0;
  }
  A dD_partial = 0;
  const A skip = live && D ? D[c] : A(0);
  const int64_t tiles = (L + kTile - 1) / kTile;
  for (int64_t tile = blockIdx.y; tile < tiles; tile += gridDim.y) {
    const int64_t t0 = tile * kTile;
    __syncthreads();  // the previous tile's readers are done
    for (int r = ty; r < W; r += kRows) {
      const int64_t tz = t0 - (K - 1) + r, tg = t0 + r;
      zs[r * kChannels + tx] = gated_input<T, A>(k, v, base + tz * C + c, live && tz >= 0 && tz < L);
      A g = 0;
      if (live && tg < L) {
        const int64_t i = base + tg * C + c;
        g = widen(dy[i]);
        if (q) g *= widen(q[i]);
      }
      gs[r * kChannels + tx] = g;
    }
    __syncthreads();
    if (live) {
      for (int i = ty; i < kTile && t0 + i < L; i += kRows) {
        const A* z = zs + (i + K - 1) * kChannels + tx;  // time t0 + i, then earlier
        const A* g = gs + i * kChannels + tx;            // time t0 + i, then later
        A s = skip * z[0], dz = skip * g[0];
        for (int j = 0; j < K; ++j) {
          const A hj = hs[j * kChannels + tx];
          s += hj * z[-j * kChannels];
          dz += hj * g[j * kChannels];
        }
        dD_partial += g[0] * z[0];
        const int64_t o = base + (t0 + i) * C + c;
        if (q) dq[o] = narrow<T>(widen(dy[o]) * s);
        if (k) {
          dk[o] = narrow<T>(dz * widen(v[o]));
          dv[o] = narrow<T>(dz * widen(k[o]));
        } else {
          dv[o] = narrow<T>(dz);
        }
      }
      // dh[c, j] += Σ_t g[t] z[t - j] over this tile (g is 0 past the sequence's end).
      for (int j = ty; j < K; j += kRows) {
        A acc = 0;
        for (int i = 0; i < kTile; ++i) acc += gs[i * kChannels + tx] * zs[(i + K - 1 - j) * kChannels + tx];
        dhs[j * kChannels + tx] += acc;
      }
    }
  }
  dDs[ty * kChannels + tx] = dD_partial;
  __syncthreads();
  if (!live) return;
  for (int j = ty; j < K; j += kRows) atomicAdd(dh + c * K + j, dhs[j * kChannels + tx]);
  if (dD && ty == 0) {
    A sum = 0;
    for (int r = 0; r < kRows; ++r) sum += dDs[r * kChannels + tx];
    atomicAdd(dD + c, sum);
  }
}

int device_smem_limit() {
  int device = 0, limit = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "shared memory limit");
  return limit;
}

template <typename T, typename A, int KMAX>
void forward_window(const GatedConvArgs& a, void* y) {
  const dim3 grid(unsigned((a.channels + kWindowThreads - 1) / kWindowThreads), unsigned((a.length + kSpan - 1) / kSpan),
                  unsigned(a.batch));
  forward_window_kernel<T, A, KMAX><<<grid, kWindowThreads, 0, static_cast<cudaStream_t>(a.stream)>>>(
      static_cast<const T*>(a.q), static_cast<const T*>(a.k), static_cast<const T*>(a.v), static_cast<const A*>(a.h),
      static_cast<const A*>(a.D), static_cast<T*>(y), a.length, a.channels, int(a.taps));
  check(cudaGetLastError(), "forward launch");
}

template <typename T>
void forward(const GatedConvArgs& a, void* y) {
  using A = typename Accumulate<T>::type;
  const int K = int(a.taps);
  if (K <= 4) return forward_window<T, A, 4>(a, y);  // at 3 taps faster than the tensor cores (BENCHMARKS.md)
  if (gated_conv_mma::applies(a)) return gated_conv_mma::run_forward(a, y);
  if (K <= 8) return forward_window<T, A, 8>(a, y);
  if (K <= 16) return forward_window<T, A, 16>(a, y);
  const size_t smem = forward_smem<A>(K);
  auto kernel = forward_kernel<T, A>;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), "shared memory");
  const dim3 grid(unsigned((a.channels + kChannels - 1) / kChannels), unsigned((a.length + kTile - 1) / kTile),
                  unsigned(a.batch));
  kernel<<<grid, dim3(kChannels, kRows), smem, static_cast<cudaStream_t>(a.stream)>>>(
      static_cast<const T*>(a.q), static_cast<const T*>(a.k), static_cast<const T*>(a.v), static_cast<const A*>(a.h),
      static_cast<const A*>(a.D), static_cast<T*>(y), a.length, a.channels, K);
  check(cudaGetLastError(), "forward launch");
}

template <typename T>
void backward(const GatedConvArgs& a, const void* dy, void* dq, void* dk, void* dv, void* dh, void* dD) {
  using A = typename Accumulate<T>::type;
  const int K = int(a.taps);
  const auto stream = static_cast<cudaStream_t>(a.stream);
  check(cudaMemsetAsync(dh, 0, sizeof(A) * size_t(a.channels * a.taps), stream), "zeroing dh");
  if (dD) check(cudaMemsetAsync(dD, 0, sizeof(A) * size_t(a.channels), stream), "zeroing dD");
  if (gated_conv_mma::applies(a)) return gated_conv_mma::run_backward(a, dy, dq, dk, dv, dh, dD);
  const size_t smem = backward_smem<A>(K);
  auto kernel = backward_kernel<T, A>;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), "shared memory");
  // Enough blocks to fill the machine a few times over; each walks several tiles so that its
  // filter gradient reaches global memory in one atomic add per (channel, tap), not one per tile.
  const int64_t channel_blocks = (a.channels + kChannels - 1) / kChannels, tiles = (a.length + kTile - 1) / kTile;
  const int64_t wanted = 8 * int64_t(multiprocessors());
  const int64_t per_row = std::clamp<int64_t>(wanted / std::max<int64_t>(1, channel_blocks * a.batch), 1, tiles);
  const dim3 grid(unsigned(channel_blocks), unsigned(per_row), unsigned(a.batch));
  kernel<<<grid, dim3(kChannels, kRows), smem, stream>>>(
      static_cast<const T*>(a.q), static_cast<const T*>(a.k), static_cast<const T*>(a.v), static_cast<const A*>(a.h),
      static_cast<const A*>(a.D), static_cast<const T*>(dy), static_cast<T*>(dq), static_cast<T*>(dk),
      static_cast<T*>(dv), static_cast<A*>(dh), static_cast<A*>(dD), a.length, a.channels, K);
  check(cudaGetLastError(), "backward launch");
}

}  // namespace

bool gated_conv_supported(const GatedConvArgs& a) {
  if (a.taps < 1 || a.taps > 4096 || a.batch > 65535) return false;
  if (gated_conv_mma::applies(a)) return true;  // its shared memory (81 KB at most) fits every sm_80 and later
  const size_t smem = a.dtype == DType::Float64 ? backward_smem<double>(int(a.taps)) : backward_smem<float>(int(a.taps));
  return smem <= size_t(device_smem_limit());
}

void gated_conv_forward(const GatedConvArgs& a, void* y) {
  if (a.batch == 0 || a.length == 0 || a.channels == 0) return;
  switch (a.dtype) {
    case DType::Float32: return forward<float>(a, y);
    case DType::Float64: return forward<double>(a, y);
    case DType::BFloat16: return forward<__nv_bfloat16>(a, y);
  }
}

void gated_conv_backward(const GatedConvArgs& a, const void* dy, void* dq, void* dk, void* dv, void* dh, void* dD) {
  if (a.batch == 0 || a.length == 0 || a.channels == 0) return;
  switch (a.dtype) {
    case DType::Float32: return backward<float>(a, dy, dq, dk, dv, dh, dD);
    case DType::Float64: return backward<double>(a, dy, dq, dk, dv, dh, dD);
    case DType::BFloat16: return backward<__nv_bfloat16>(a, dy, dq, dk, dv, dh, dD);
  }
}

}  // namespace starsynth::kernels
