#include "kernels/scan.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda_util.cuh"

namespace starsynth::kernels {
namespace {

using cuda::warp_sum;

constexpr int kThreads = 128;  // channels per block: 4 warps
constexpr int kWarps = kThreads / 32;
constexpr int kChunk = 32;     // steps between checkpoints

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("scan: ") + what + ": " + cudaGetErrorString(e));
}

__device__ __forceinline__ float exp_of(float v) { return expf(v); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }

// B and C of one chunk into shared memory, zero past the sequence and past the state size.
template <typename A, int EMAX>
__device__ __forceinline__ void stage(A (*Bs)[EMAX], A (*Cs)[EMAX], const A* Bm, const A* Cm, int64_t row0,
                                      int64_t t0, int64_t L, int E) {
  for (int i = threadIdx.x; i < kChunk * EMAX; i += kThreads) {
    const int s = i / EMAX, e = i % EMAX;
    const bool inside = t0 + s < L && e < E;
    Bs[s][e] = inside ? Bm[(row0 + t0 + s) * E + e] : A(0);
    Cs[s][e] = inside ? Cm[(row0 + t0 + s) * E + e] : A(0);
  }
}

template <typename A, int EMAX>
__global__ void __launch_bounds__(kThreads) forward_kernel(const A* __restrict__ la, const A* __restrict__ x,
                                                           const A* __restrict__ Bm, const A* __restrict__ Cm,
                                                           A* __restrict__ y, A* __restrict__ ckpt, int64_t L,
                                                           int64_t D, int E) {
  __shared__ A Bs[kChunk][EMAX], Cs[kChunk][EMAX];
  const int64_t d = int64_t(blockIdx.x) * kThreads + threadIdx.x, b = blockIdx.y, row0 = b * L;
  const int64_t chunks = (L + kChunk - 1) / kChunk;
  const bool live = d < D;
  A h[EMAX];
#pragma unroll
  for (int e = 0; e < EMAX; ++e) h[e] = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t t0 = c * kChunk;
    if (live && ckpt) {
#pragma unroll
      for (int e = 0; e < EMAX; ++e)
        if (e < E) ckpt[((b * chunks + c) * E + e) * D + d] = h[e];
    }
    __syncthreads();
    stage<A, EMAX>(Bs, Cs, Bm, Cm, row0, t0, L, E);
    __syncthreads();
    if (!live) continue;
    const int n = int(L - t0 < kChunk ? L - t0 : kChunk);
    for (int s = 0; s < n; ++s) {
      const int64_t i = (row0 + t0 + s) * D + d;
      const A a = exp_of(la[i]), xt = x[i];
      A acc = 0;
#pragma unroll
      for (int e = 0; e < EMAX; ++e) {
        h[e] = a * h[e] + xt * Bs[s][e];
        acc += Cs[s][e] * h[e];
      }
      y[i] = acc;
    }
  }
}

template <typename A, int EMAX>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const A* __restrict__ la, const A* __restrict__ x, const A* __restrict__ Bm,
                    const A* __restrict__ Cm, const A* __restrict__ ckpt, const A* __restrict__ dy,
                    A* __restrict__ dla, A* __restrict__ dx, A* __restrict__ dBp, A* __restrict__ dCp, int64_t L,
                    int64_t D, int E) {
  __shared__ A Bs[kChunk][EMAX], Cs[kChunk][EMAX];
  __shared__ A partB[kChunk][EMAX][kWarps], partC[kChunk][EMAX][kWarps];
  const int64_t d = int64_t(blockIdx.x) * kThreads + threadIdx.x, b = blockIdx.y, row0 = b * L;
  const int64_t chunks = (L + kChunk - 1) / kChunk, blocks = gridDim.x;
  const bool live = d < D;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  A g[EMAX];  // ∂loss/∂h_t, carried backwards as a_{t+1}·g_{t+1}
#pragma unroll
  for (int e = 0; e < EMAX; ++e) g[e] = 0;
  A hist[kChunk][EMAX];  // the chunk's states, recomputed from its checkpoint
  for (int64_t c = chunks - 1; c >= 0; --c) {
    const int64_t t0 = c * kChunk;
    const int n = int(L - t0 < kChunk ? L - t0 : kChunk);
    __syncthreads();
    stage<A, EMAX>(Bs, Cs, Bm, Cm, row0, t0, L, E);
    __syncthreads();
    A h0[EMAX];
#pragma unroll
    for (int e = 0; e < EMAX; ++e) h0[e] = live && e < E ? ckpt[((b * chunks + c) * E + e) * D + d] : A(0);
    if (live) {
      A h[EMAX];
#pragma unroll
      for (int e = 0; e < EMAX; ++e) h[e] = h0[e];
      for (int s = 0; s < n; ++s) {
        const int64_t i = (row0 + t0 + s) * D + d;
        const A a = exp_of(la[i]), xt = x[i];
#pragma unroll
        for (int e = 0; e < EMAX; ++e) hist[s][e] = h[e] = a * h[e] + xt * Bs[s][e];
      }
    }
    for (int s = kChunk - 1; s >= 0; --s) {
      const bool step = live && s < n;
      A dyt = 0, a = 0, xt = 0;
      int64_t i = 0;
      if (step) {
        i = (row0 + t0 + s) * D + d;
        dyt = dy[i], a = exp_of(la[i]), xt = x[i];
      }
      A dxt = 0, dat = 0;
#pragma unroll
      for (int e = 0; e < EMAX; ++e) {
        const A hprev = s > 0 ? hist[s > 0 ? s - 1 : 0][e] : h0[e];
        const A ht = step ? hist[s][e] : A(0);
        if (step) g[e] += Cs[s][e] * dyt;
        dxt += g[e] * Bs[s][e];
        dat += g[e] * hprev;
        const A contribution_B = step ? g[e] * xt : A(0), contribution_C = dyt * ht;
        const A sumB = warp_sum(contribution_B), sumC = warp_sum(contribution_C);
        if (lane == 0) partB[s][e][warp] = sumB, partC[s][e][warp] = sumC;
        if (step) g[e] *= a;
      }
      if (step) {
        dx[i] = dxt;
        dla[i] = a * dat;
      }
    }
    __syncthreads();
    for (int k = threadIdx.x; k < n * E; k += kThreads) {
      const int s = k / E, e = k % E;
      A sb = 0, sc = 0;
      for (int w = 0; w < kWarps; ++w) sb += partB[s][e][w], sc += partC[s][e][w];
      const int64_t o = ((row0 + t0 + s) * E + e) * blocks + blockIdx.x;
      dBp[o] = sb;
      dCp[o] = sc;
    }
  }
}

template <typename A, int EMAX>
void launch(const ScanArgs& a, bool backward, void* y, void* ckpt, const void* dy, void* dla, void* dx, void* dBp,
            void* dCp) {
  const dim3 grid(unsigned((a.channels + kThreads - 1) / kThreads), unsigned(a.batch));
  const auto stream = static_cast<cudaStream_t>(a.stream);
  const A *la = static_cast<const A*>(a.log_a), *x = static_cast<const A*>(a.x);
  const A *Bm = static_cast<const A*>(a.B), *Cm = static_cast<const A*>(a.C);
  if (!backward)
    forward_kernel<A, EMAX><<<grid, kThreads, 0, stream>>>(la, x, Bm, Cm, static_cast<A*>(y), static_cast<A*>(ckpt),
                                                           a.length, a.channels, int(a.state));
  else
    backward_kernel<A, EMAX><<<grid, kThreads, 0, stream>>>(
        la, x, Bm, Cm, static_cast<const A*>(ckpt), static_cast<const A*>(dy), static_cast<A*>(dla),
        static_cast<A*>(dx), static_cast<A*>(dBp), static_cast<A*>(dCp), a.length, a.channels, int(a.state));
  check(cudaGetLastError(), backward ? "backward launch" : "forward launch");
}

// The backward pass's static shared memory (48 KB at most) bounds the state: 32 in float32, 16 in
// float64 (Rec-1 has 16, Rec-2 has 2).
template <typename A> constexpr int kMaxState = sizeof(A) == 4 ? 32 : 16;

template <typename A>
void dispatch(const ScanArgs& a, bool backward, void* y, void* ckpt, const void* dy, void* dla, void* dx, void* dBp,
              void* dCp) {
  if (a.state <= 2) return launch<A, 2>(a, backward, y, ckpt, dy, dla, dx, dBp, dCp);
  if (a.state <= 4) return launch<A, 4>(a, backward, y, ckpt, dy, dla, dx, dBp, dCp);
  if (a.state <= 8) return launch<A, 8>(a, backward, y, ckpt, dy, dla, dx, dBp, dCp);
  if constexpr (kMaxState<A> == 16) return launch<A, 16>(a, backward, y, ckpt, dy, dla, dx, dBp, dCp);
  else {
    if (a.state <= 16) return launch<A, 16>(a, backward, y, ckpt, dy, dla, dx, dBp, dCp);
    return launch<A, 32>(a, backward, y, ckpt, dy, dla, dx, dBp, dCp);
  }
}

}  // namespace

bool scan_supported(const ScanArgs& a) {
  const int64_t max_state = a.dtype == DType::Float32 ? kMaxState<float> : kMaxState<double>;
  return (a.dtype == DType::Float32 || a.dtype == DType::Float64) && a.state >= 1 && a.state <= max_state &&
         a.batch <= 65535 && a.channels > 0 && a.length > 0;
}

int64_t scan_checkpoint_elements(const ScanArgs& a) {
  return a.batch * ((a.length + kChunk - 1) / kChunk) * a.state * a.channels;
}

int64_t scan_channel_blocks(const ScanArgs& a) { return (a.channels + kThreads - 1) / kThreads; }

void scan_forward(const ScanArgs& a, void* y, void* checkpoints) {
  if (a.dtype == DType::Float64) return dispatch<double>(a, false, y, checkpoints, nullptr, nullptr, nullptr, nullptr, nullptr);
  dispatch<float>(a, false, y, checkpoints, nullptr, nullptr, nullptr, nullptr, nullptr);
}

void scan_backward(const ScanArgs& a, const void* checkpoints, const void* dy, void* dlog_a, void* dx,
                   void* dB_partial, void* dC_partial) {
  void* ckpt = const_cast<void*>(checkpoints);
  if (a.dtype == DType::Float64)
    return dispatch<double>(a, true, nullptr, ckpt, dy, dlog_a, dx, dB_partial, dC_partial);
  dispatch<float>(a, true, nullptr, ckpt, dy, dlog_a, dx, dB_partial, dC_partial);
}

}  // namespace starsynth::kernels
