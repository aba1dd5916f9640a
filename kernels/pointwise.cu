// Rotary embedding: a thread rotates pairs (i, i + hd/2) of one row (batch, head, position), a few
// consecutive ones at a time where alignment allows, so a warp reads and writes consecutive
// elements of each half of a row; input and output take any strides, which lets the forward
// pass read the projection's [B, L, H, hd] layout and write the [B, H, L, hd] layout attention
// wants (the transpose costs nothing extra), and the backward pass write its gradient straight
// back into the projection's layout. The angles come from a table the glue computes once per
// length.
//
// SwiGLU: a grid-stride loop over packs of 16 bytes (8 bfloat16, 4 float) when every pointer is
// aligned to them, single elements otherwise.
//
// AdamW: a grid-stride loop over elements; every thread reads the norm and the step's scalars
// (cached), so the whole update is one kernel that a CUDA graph replays with new scalars.
#include "kernels/pointwise.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "kernels/cuda_util.cuh"

namespace starsynth::kernels {
namespace {

using cuda::Accumulate;
using cuda::narrow;
using cuda::widen;

constexpr int kThreads = 256;

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

bool aligned(std::initializer_list<const void*> ptrs, size_t bytes) {
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % bytes) return false;
  return true;
}

// A block is kThreads / P rows of P threads, P the power of two nearest above hd/(2V) (at most
// 32), so that no lane idles at small head sizes; a thread rotates V consecutive pairs at a time
// (8-byte loads of x, V-wide loads of the angle tables) and walks its row P·V pairs apart. Row
// indices are 32-bit: 64-bit division costs more than the memory traffic here.
template <typename T, typename A, int V>
__global__ void __launch_bounds__(kThreads)
    rope_kernel(const T* __restrict__ x, T* __restrict__ y, const A* __restrict__ cos_table,
                const A* __restrict__ sin_table, uint32_t heads, uint32_t length, int hd, int64_t xb, int64_t xh,
                int64_t xl, int64_t yb, int64_t yh, int64_t yl, uint32_t rows, bool inverse) {
  const uint32_t row = blockIdx.x * blockDim.y + threadIdx.y;
  if (row >= rows) return;
  const uint32_t t = row % length, bh = row / length, h = bh % heads, b = bh / heads;
  const T* xr = x + b * xb + h * xh + t * xl;
  T* yr = y + b * yb + h * yh + t * yl;
  const int half = hd / 2;
  const A* cr = cos_table + int64_t(t) * half;
  const A* sr = sin_table + int64_t(t) * half;
  for (int i = threadIdx.x * V; i < half; i += blockDim.x * V) {
    const Pack<T, V> p1 = *reinterpret_cast<const Pack<T, V>*>(xr + i);
    const Pack<T, V> p2 = *reinterpret_cast<const Pack<T, V>*>(xr + i + half);
    const Pack<A, V> pc = *reinterpret_cast<const Pack<A, V>*>(cr + i);
    const Pack<A, V> ps = *reinterpret_cast<const Pack<A, V>*>(sr + i);
    Pack<T, V> q1, q2;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const A c = pc.v[k], s = inverse ? -ps.v[k] : ps.v[k];
      const A x1 = widen(p1.v[k]), x2 = widen(p2.v[k]);
      q1.v[k] = narrow<T>(x1 * c - x2 * s);
      q2.v[k] = narrow<T>(x2 * c + x1 * s);
    }
    *reinterpret_cast<Pack<T, V>*>(yr + i) = q1;
    *reinterpret_cast<Pack<T, V>*>(yr + i + half) = q2;
  }
  if ((hd & 1) && threadIdx.x == 0) yr[2 * half] = xr[2 * half];  // an odd head size's last element
}

int blocks_for(int64_t work) {
  // Enough blocks for every thread to have a few items, no more than the grid-stride loop needs.
  const int64_t wanted = (work + kThreads - 1) / kThreads;
  return int(std::clamp<int64_t>(wanted, 1, int64_t(cuda::multiprocessors()) * 16));
}

template <typename T, int V>
void rope_launch(const RopeArgs& a, void* y, int64_t rows) {
  using A = typename Accumulate<T>::type;
  const int64_t half = a.head_dim / 2;
  int lanes = 1;
  while (lanes * V < half && lanes < 32) lanes *= 2;
  const dim3 block(unsigned(lanes), unsigned(kThreads / lanes));
  const auto grid = unsigned((rows + block.y - 1) / block.y);
  rope_kernel<T, A, V><<<grid, block, 0, static_cast<cudaStream_t>(a.stream)>>>(
      static_cast<const T*>(a.x), static_cast<T*>(y), static_cast<const A*>(a.cos), static_cast<const A*>(a.sin),
      uint32_t(a.heads), uint32_t(a.length), int(a.head_dim), a.x_strides[0], a.x_strides[1], a.x_strides[2],
      a.y_strides[0], a.y_strides[1], a.y_strides[2], uint32_t(rows), a.inverse);
  cuda::check(cudaGetLastError(), "rope", "launch");
}

template <typename T>
void rope_typed(const RopeArgs& a, void* y) {
  using A = typename Accumulate<T>::type;
  const int64_t rows = a.batch * a.heads * a.length, half = a.head_dim / 2;
  if (rows == 0) return;
  if (rows > int64_t(UINT32_MAX)) throw std::runtime_error("rope: more than 2^32 rows");
  // Packs of 8 bytes of x where every row's halves start on one: V pairs per thread.
  constexpr int V = sizeof(T) >= 8 ? 1 : int(8 / sizeof(T));
  bool packed = V > 1 && half % V == 0 && aligned({a.x, y}, V * sizeof(T)) && aligned({a.cos, a.sin}, V * sizeof(A));
  for (int d = 0; d < 3; ++d) packed = packed && a.x_strides[d] % V == 0 && a.y_strides[d] % V == 0;
  if (packed) return rope_launch<T, V>(a, y, rows);
  rope_launch<T, 1>(a, y, rows);
}

template <typename A> __device__ __forceinline__ A sigmoid(A g) { return A(1) / (A(1) + exp(-g)); }
template <> __device__ __forceinline__ float sigmoid<float>(float g) { return 1.f / (1.f + expf(-g)); }

template <typename T, typename A, int V>
__global__ void __launch_bounds__(kThreads)
    swiglu_forward_kernel(const T* __restrict__ g, const T* __restrict__ u, T* __restrict__ y, int64_t packs) {
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
    const Pack<T, V> gp = reinterpret_cast<const Pack<T, V>*>(g)[p], up = reinterpret_cast<const Pack<T, V>*>(u)[p];
    Pack<T, V> yp;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const A gv = widen(gp.v[k]);
      yp.v[k] = narrow<T>(gv * sigmoid(gv) * widen(up.v[k]));
    }
    reinterpret_cast<Pack<T, V>*>(y)[p] = yp;
  }
}

// d/dg [g σ(g)] = σ(g) (1 + g (1 − σ(g)))
template <typename T, typename A, int V>
__global__ void __launch_bounds__(kThreads)
    swiglu_backward_kernel(const T* __restrict__ g, const T* __restrict__ u, const T* __restrict__ dy,
                           T* __restrict__ dg, T* __restrict__ du, int64_t packs) {
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
    const Pack<T, V> gp = reinterpret_cast<const Pack<T, V>*>(g)[p], up = reinterpret_cast<const Pack<T, V>*>(u)[p];
    const Pack<T, V> dp = reinterpret_cast<const Pack<T, V>*>(dy)[p];
    Pack<T, V> dgp, dup;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const A gv = widen(gp.v[k]), uv = widen(up.v[k]), d = widen(dp.v[k]), s = sigmoid(gv);
      dgp.v[k] = narrow<T>(d * uv * s * (A(1) + gv * (A(1) - s)));
      dup.v[k] = narrow<T>(d * gv * s);
    }
    reinterpret_cast<Pack<T, V>*>(dg)[p] = dgp;
    reinterpret_cast<Pack<T, V>*>(du)[p] = dup;
  }
}

template <typename T>
void swiglu_forward_typed(int64_t n, const void* g, const void* u, void* y, cudaStream_t stream) {
  using A = typename Accumulate<T>::type;
  constexpr int V = 16 / sizeof(T);
  if (n % V == 0 && aligned({g, u, y}, 16))
    swiglu_forward_kernel<T, A, V><<<blocks_for(n / V), kThreads, 0, stream>>>(
        static_cast<const T*>(g), static_cast<const T*>(u), static_cast<T*>(y), n / V);
  else
    swiglu_forward_kernel<T, A, 1><<<blocks_for(n), kThreads, 0, stream>>>(
        static_cast<const T*>(g), static_cast<const T*>(u), static_cast<T*>(y), n);
  cuda::check(cudaGetLastError(), "swiglu", "forward launch");
}

template <typename T>
void swiglu_backward_typed(int64_t n, const void* g, const void* u, const void* dy, void* dg, void* du,
                           cudaStream_t stream) {
  using A = typename Accumulate<T>::type;
  constexpr int V = 16 / sizeof(T);
  const T *gt = static_cast<const T*>(g), *ut = static_cast<const T*>(u), *dyt = static_cast<const T*>(dy);
  T *dgt = static_cast<T*>(dg), *dut = static_cast<T*>(du);
  if (n % V == 0 && aligned({g, u, dy, dg, du}, 16))
    swiglu_backward_kernel<T, A, V><<<blocks_for(n / V), kThreads, 0, stream>>>(gt, ut, dyt, dgt, dut, n / V);
  else
    swiglu_backward_kernel<T, A, 1><<<blocks_for(n), kThreads, 0, stream>>>(gt, ut, dyt, dgt, dut, n);
  cuda::check(cudaGetLastError(), "swiglu", "backward launch");
}

template <typename A>
__global__ void __launch_bounds__(kThreads)
    adamw_kernel(A* __restrict__ p, A* __restrict__ m, A* __restrict__ v, const A* __restrict__ grad,
                 const A* __restrict__ norm, const A* __restrict__ scalars, int64_t n, int64_t decayed, A beta1,
                 A beta2, A eps, A clip) {
  const A coef = clip > 0 ? fmin(clip / (*norm + A(1e-6)), A(1)) : A(1);
  const A decay = scalars[0], step = scalars[1], unbias = scalars[2];
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const A g = grad[i] * coef;
    const A mi = m[i] * beta1 + (1 - beta1) * g;
    const A vi = v[i] * beta2 + (1 - beta2) * g * g;
    const A pi = i < decayed ? p[i] * decay : p[i];
    m[i] = mi, v[i] = vi;
    p[i] = pi + step * (mi / (sqrt(vi) * unbias + eps));
  }
}

template <typename A>
void adamw_typed(const AdamWArgs& a, void* param, void* exp_avg, void* exp_avg_sq) {
  adamw_kernel<A><<<blocks_for(a.n), kThreads, 0, static_cast<cudaStream_t>(a.stream)>>>(
      static_cast<A*>(param), static_cast<A*>(exp_avg), static_cast<A*>(exp_avg_sq), static_cast<const A*>(a.grad),
      static_cast<const A*>(a.norm), static_cast<const A*>(a.scalars), a.n, a.decayed, A(a.beta1), A(a.beta2),
      A(a.eps), A(a.clip));
  cuda::check(cudaGetLastError(), "adamw", "launch");
}

}  // namespace

void rope(const RopeArgs& a, void* y) {
  switch (a.dtype) {
    case DType::Float32: return rope_typed<float>(a, y);
    case DType::Float64: return rope_typed<double>(a, y);
    case DType::BFloat16: return rope_typed<__nv_bfloat16>(a, y);
  }
}

void swiglu_forward(DType dtype, int64_t n, const void* g, const void* u, void* y, void* stream) {
  if (n == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::Float32: return swiglu_forward_typed<float>(n, g, u, y, s);
    case DType::Float64: return swiglu_forward_typed<double>(n, g, u, y, s);
    case DType::BFloat16: return swiglu_forward_typed<__nv_bfloat16>(n, g, u, y, s);
  }
}

void swiglu_backward(DType dtype, int64_t n, const void* g, const void* u, const void* dy, void* dg, void* du,
                     void* stream) {
  if (n == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::Float32: return swiglu_backward_typed<float>(n, g, u, dy, dg, du, s);
    case DType::Float64: return swiglu_backward_typed<double>(n, g, u, dy, dg, du, s);
    case DType::BFloat16: return swiglu_backward_typed<__nv_bfloat16>(n, g, u, dy, dg, du, s);
  }
}

void adamw_update(const AdamWArgs& a, void* param, void* exp_avg, void* exp_avg_sq) {
  if (a.n == 0) return;
  if (a.dtype == DType::Float64) return adamw_typed<double>(a, param, exp_avg, exp_avg_sq);
  if (a.dtype == DType::Float32) return adamw_typed<float>(a, param, exp_avg, exp_avg_sq);
  throw std::invalid_argument("adamw: parameters must be float32 or float64");
}

}  // namespace starsynth::kernels
