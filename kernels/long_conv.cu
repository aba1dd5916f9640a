// The passes of the gated long convolution around its transforms. The four that change layout
// between [B, L, C] and rows [B, C, N] are tile transposes: a block takes 32 positions × 32
// channels, reads them along channels (the model's contiguous dimension) and writes them along
// positions (the rows' contiguous dimension), both coalesced, through a padded shared-memory tile
// (33 columns: no bank conflicts either way). Their elementwise work (gates, skip term, scale)
// rides along. The two spectral products are elementwise over complex numbers; the backward one
// walks the batch in registers, so the filter gradient's batch sum costs no second pass.
#include "kernels/long_conv.h"

#include <algorithm>

#include "kernels/cuda_util.cuh"

namespace starsynth::kernels {
namespace {

using cuda::Accumulate;
using cuda::narrow;
using cuda::widen;

constexpr int kTile = 32, kRows = 8;  // a block: 32 × 8 threads over a 32 × 32 tile
constexpr int kThreads = 256;

template <typename A>
struct alignas(2 * sizeof(A)) Complex {
  A re, im;
};

template <typename T, typename A>
__device__ __forceinline__ A gate_product(const T* __restrict__ a, const T* __restrict__ b, int64_t at) {
  return a ? widen(a[at]) * widen(b[at]) : widen(b[at]);  // a ⊙ b, or b alone when a is absent
}

// Each thread of a 32 × 8 block takes kSteps rows of the 32 × 32 tile: loads for all of them are
// issued before any result is used (the passes are bound by memory latency, not arithmetic).
constexpr int kSteps = kTile / kRows;

// Row (b, c) of [B, C, N] holds z[b, :, c], then zeros up to N.
template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    pack_forward_kernel(const T* __restrict__ k, const T* __restrict__ v, A* __restrict__ z_rows, int L, int C, int N) {
  __shared__ A tile[kTile][kTile + 1];
  const int t0 = blockIdx.x * kTile, c0 = blockIdx.y * kTile, b = blockIdx.z, tx = threadIdx.x, ty = threadIdx.y;
  const bool data = t0 < L;  // tiles wholly past L are zeros and read nothing
  if (data) {
    A z[kSteps];
#pragma unroll
    for (int r = 0; r < kSteps; ++r) {
      const int t = t0 + ty + r * kRows, c = c0 + tx;
      z[r] = t < L && c < C ? gate_product<T, A>(k, v, (int64_t(b) * L + t) * C + c) : A(0);
    }
#pragma unroll
    for (int r = 0; r < kSteps; ++r) tile[ty + r * kRows][tx] = z[r];
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < kSteps; ++r) {
    const int i = ty + r * kRows, c = c0 + i, t = t0 + tx;
    if (c < C && t < N) z_rows[(int64_t(b) * C + c) * N + t] = data ? tile[tx][i] : A(0);
  }
}

// Reads the first L of each row times `scale` into tile[channel][position] for the block's tile.
template <typename A>
__device__ __forceinline__ void load_rows(const A* __restrict__ rows, A (*tile)[kTile + 1], A scale, int L, int C,
                                          int N) {
  const int t0 = blockIdx.x * kTile, c0 = blockIdx.y * kTile, b = blockIdx.z, tx = threadIdx.x, ty = threadIdx.y;
  A x[kSteps];
#pragma unroll
  for (int r = 0; r < kSteps; ++r) {
    const int c = c0 + ty + r * kRows, t = t0 + tx;
    x[r] = c < C && t < L ? rows[(int64_t(b) * C + c) * N + t] : A(0);
  }
#pragma unroll
  for (int r = 0; r < kSteps; ++r) tile[ty + r * kRows][tx] = x[r] * scale;
  __syncthreads();
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    unpack_forward_kernel(const A* __restrict__ y_rows, const T* __restrict__ q, const T* __restrict__ k,
                          const T* __restrict__ v, const A* __restrict__ D, T* __restrict__ conv, T* __restrict__ y,
                          int L, int C, int N, A scale) {
  __shared__ A tile[kTile][kTile + 1];
  load_rows(y_rows, tile, scale, L, C, N);
  const int t0 = blockIdx.x * kTile, c = blockIdx.y * kTile + threadIdx.x, b = blockIdx.z;
  if (c >= C) return;
  const A skip = D ? D[c] : A(0);
#pragma unroll
  for (int r = 0; r < kSteps; ++r) {
    const int i = threadIdx.y + r * kRows;
    if (t0 + i >= L) break;
    const int64_t at = (int64_t(b) * L + t0 + i) * C + c;
    // y is computed from the rounded convolution that backward will read, as the composite form does.
    const T rounded = narrow<T>(tile[threadIdx.x][i]);
    conv[at] = rounded;
    A out = widen(rounded);
    if (D) out += skip * gate_product<T, A>(k, v, at);
    y[at] = narrow<T>(q ? out * widen(q[at]) : out);
  }
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    pack_backward_kernel(const T* __restrict__ dy, const T* __restrict__ q, const T* __restrict__ k,
                         const T* __restrict__ v, const T* __restrict__ conv, const A* __restrict__ D,
                         A* __restrict__ g_rows, T* __restrict__ dq, A* __restrict__ dD_partial, int L, int C, int N) {
  __shared__ A tile[kTile][kTile + 1];
  __shared__ A partial[kRows][kTile];
  const int t0 = blockIdx.x * kTile, c0 = blockIdx.y * kTile, b = blockIdx.z, tx = threadIdx.x, ty = threadIdx.y;
  const bool data = t0 < L;
  if (data) {
    const int c = c0 + tx;
    const bool need_z = dq || D;
    const A skip = D && c < C ? D[c] : A(0);
    A d[kSteps], g[kSteps], z[kSteps], cv[kSteps];
#pragma unroll
    for (int r = 0; r < kSteps; ++r) {
      const int t = t0 + ty + r * kRows;
      d[r] = g[r] = z[r] = cv[r] = 0;
      if (t < L && c < C) {
        const int64_t at = (int64_t(b) * L + t) * C + c;
        d[r] = widen(dy[at]);
        g[r] = q ? d[r] * widen(q[at]) : d[r];
        if (need_z) z[r] = gate_product<T, A>(k, v, at);
        if (dq) cv[r] = widen(conv[at]);
      }
    }
    A gz = 0;  // this thread's share of Σ g·z for channel c
#pragma unroll
    for (int r = 0; r < kSteps; ++r) {
      const int t = t0 + ty + r * kRows;
      if (dq && t < L && c < C) dq[(int64_t(b) * L + t) * C + c] = narrow<T>(d[r] * (cv[r] + skip * z[r]));
      gz += g[r] * z[r];
      tile[ty + r * kRows][tx] = g[r];
    }
    partial[ty][tx] = gz;
    __syncthreads();
    if (D && ty == 0 && c < C) {
      A sum = 0;
#pragma unroll
      for (int r = 0; r < kRows; ++r) sum += partial[r][tx];
      dD_partial[(int64_t(b) * ((L + kTile - 1) / kTile) + blockIdx.x) * C + c] = sum;
    }
  }
#pragma unroll
  for (int r = 0; r < kSteps; ++r) {
    const int i = ty + r * kRows, c = c0 + i, t = t0 + tx;
    if (c < C && t < N) g_rows[(int64_t(b) * C + c) * N + t] = data ? tile[tx][i] : A(0);
  }
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    unpack_backward_kernel(const A* __restrict__ dz_rows, const T* __restrict__ dy, const T* __restrict__ q,
                           const T* __restrict__ k, const T* __restrict__ v, const A* __restrict__ D,
                           T* __restrict__ dk, T* __restrict__ dv, int L, int C, int N, A scale) {
  __shared__ A tile[kTile][kTile + 1];
  load_rows(dz_rows, tile, scale, L, C, N);
  const int t0 = blockIdx.x * kTile, c = blockIdx.y * kTile + threadIdx.x, b = blockIdx.z;
  if (c >= C) return;
  const A skip = D ? D[c] : A(0);
#pragma unroll
  for (int r = 0; r < kSteps; ++r) {
    const int i = threadIdx.y + r * kRows;
    if (t0 + i >= L) break;
    const int64_t at = (int64_t(b) * L + t0 + i) * C + c;
    A dz = tile[threadIdx.x][i];
    if (D) dz += skip * gate_product<T, A>(q, dy, at);
    if (k) {
      dk[at] = narrow<T>(dz * widen(v[at]));
      dv[at] = narrow<T>(dz * widen(k[at]));
    } else {
      dv[at] = narrow<T>(dz);
    }
  }
}

// The filter's rows [C, L] → [C, N], zeros past L (LibTorch's padding is a fill and a copy).
template <typename A>
__global__ void __launch_bounds__(kThreads) pad_rows_kernel(const A* __restrict__ h, A* __restrict__ rows, int L, int N) {
  const int64_t c = blockIdx.y;
  for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < N; t += gridDim.x * blockDim.x)
    rows[c * N + t] = t < L ? h[c * L + t] : A(0);
}

// One block per row (b, c) of Y; H's row c is shared by the batch.
template <typename A>
__global__ void __launch_bounds__(kThreads)
    multiply_kernel(const Complex<A>* __restrict__ Z, const Complex<A>* __restrict__ H, Complex<A>* __restrict__ Y,
                    int C, int F) {
  const int64_t row = blockIdx.x;
  const Complex<A>* z = Z + row * F;
  const Complex<A>* h = H + (row % C) * F;
  Complex<A>* y = Y + row * F;
  for (int f = threadIdx.x; f < F; f += blockDim.x) {
    const Complex<A> a = z[f], w = h[f];
    y[f] = {a.re * w.re - a.im * w.im, a.re * w.im + a.im * w.re};
  }
}

// A thread owns frequency f of channel c and walks the batch.
template <typename A>
__global__ void __launch_bounds__(kThreads)
    multiply_backward_kernel(Complex<A>* __restrict__ G, const Complex<A>* __restrict__ Z,
                             const Complex<A>* __restrict__ H, Complex<A>* __restrict__ dH, int B, int C, int F,
                             A scale) {
  const int c = blockIdx.y, f = blockIdx.x * blockDim.x + threadIdx.x;
  if (f >= F) return;
  const Complex<A> w = H[int64_t(c) * F + f];
  A re = 0, im = 0;
  for (int b = 0; b < B; ++b) {
    const int64_t at = (int64_t(b) * C + c) * F + f;
    const Complex<A> g = G[at], z = Z[at];
    re += g.re * z.re + g.im * z.im;  // g · conj(z)
    im += g.im * z.re - g.re * z.im;
    G[at] = {g.re * w.re + g.im * w.im, g.im * w.re - g.re * w.im};  // g · conj(w)
  }
  dH[int64_t(c) * F + f] = {re * scale, im * scale};  // the inverse transform's 1/N, here for free
}

dim3 tiles(const LongConvArgs& a, int64_t positions) {
  return dim3(unsigned((positions + kTile - 1) / kTile), unsigned((a.channels + kTile - 1) / kTile), unsigned(a.batch));
}

const dim3 kBlock(kTile, kRows);

cudaStream_t stream_of(const LongConvArgs& a) { return static_cast<cudaStream_t>(a.stream); }
int frequencies(const LongConvArgs& a) { return int(a.fft_length / 2 + 1); }

template <typename F>
void by_dtype(DType d, F f) {
  switch (d) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::BFloat16: return f(__nv_bfloat16{});
  }
}

}  // namespace

bool long_conv_supported(const LongConvArgs& a) {
  return a.batch > 0 && a.batch <= 65535 && a.channels > 0 && a.channels <= 65535 && a.length > 0 &&
         a.fft_length >= 2 * a.length - 1 && a.fft_length < (int64_t(1) << 31) &&
         a.batch * a.channels < (int64_t(1) << 31);
}

int64_t long_conv_fft_length(int64_t length) {
  for (int64_t n = std::max<int64_t>(2, 2 * length - 1);; ++n) {
    int64_t m = n;
    for (const int64_t p : {2, 3, 5, 7})
      while (m % p == 0) m /= p;
    if (m == 1) return n;
  }
}

int64_t long_conv_partial_rows(const LongConvArgs& a) { return a.batch * ((a.length + kTile - 1) / kTile); }

void long_conv_pack_forward(const LongConvArgs& a, void* z_rows) {
  by_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = typename Accumulate<T>::type;
    pack_forward_kernel<T, A><<<tiles(a, a.fft_length), kBlock, 0, stream_of(a)>>>(
        static_cast<const T*>(a.k), static_cast<const T*>(a.v), static_cast<A*>(z_rows), int(a.length),
        int(a.channels), int(a.fft_length));
  });
  cuda::check(cudaGetLastError(), "long_conv", "pack forward launch");
}

void long_conv_pad_filter(const LongConvArgs& a, const void* h, void* h_rows) {
  auto run = [&](auto tag) {
    using A = decltype(tag);
    const dim3 grid(unsigned(std::min<int64_t>((a.fft_length + kThreads - 1) / kThreads, 64)), unsigned(a.channels));
    pad_rows_kernel<A><<<grid, kThreads, 0, stream_of(a)>>>(static_cast<const A*>(h), static_cast<A*>(h_rows),
                                                            int(a.length), int(a.fft_length));
  };
  a.dtype == DType::Float64 ? run(double{}) : run(float{});
  cuda::check(cudaGetLastError(), "long_conv", "pad filter launch");
}

void long_conv_multiply(const LongConvArgs& a, const void* Z, const void* H, void* Y) {
  auto run = [&](auto tag) {
    using A = decltype(tag);
    multiply_kernel<A><<<unsigned(a.batch * a.channels), kThreads, 0, stream_of(a)>>>(
        static_cast<const Complex<A>*>(Z), static_cast<const Complex<A>*>(H), static_cast<Complex<A>*>(Y),
        int(a.channels), frequencies(a));
  };
  a.dtype == DType::Float64 ? run(double{}) : run(float{});
  cuda::check(cudaGetLastError(), "long_conv", "multiply launch");
}

void long_conv_unpack_forward(const LongConvArgs& a, const void* y_rows, void* conv, void* y) {
  by_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = typename Accumulate<T>::type;
    unpack_forward_kernel<T, A><<<tiles(a, a.length), kBlock, 0, stream_of(a)>>>(
        static_cast<const A*>(y_rows), static_cast<const T*>(a.q), static_cast<const T*>(a.k),
        static_cast<const T*>(a.v), static_cast<const A*>(a.D), static_cast<T*>(conv), static_cast<T*>(y),
        int(a.length), int(a.channels), int(a.fft_length), A(1) / A(a.fft_length));
  });
  cuda::check(cudaGetLastError(), "long_conv", "unpack forward launch");
}

void long_conv_pack_backward(const LongConvArgs& a, const void* dy, const void* conv, void* g_rows, void* dq,
                             void* dD_partial) {
  by_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = typename Accumulate<T>::type;
    pack_backward_kernel<T, A><<<tiles(a, a.fft_length), kBlock, 0, stream_of(a)>>>(
        static_cast<const T*>(dy), static_cast<const T*>(a.q), static_cast<const T*>(a.k), static_cast<const T*>(a.v),
        static_cast<const T*>(conv), static_cast<const A*>(a.D), static_cast<A*>(g_rows),
        a.q ? static_cast<T*>(dq) : nullptr, static_cast<A*>(dD_partial), int(a.length), int(a.channels),
        int(a.fft_length));
  });
  cuda::check(cudaGetLastError(), "long_conv", "pack backward launch");
}

void long_conv_multiply_backward(const LongConvArgs& a, void* G, const void* Z, const void* H, void* dH) {
  auto run = [&](auto tag) {
    using A = decltype(tag);
    const dim3 grid(unsigned((frequencies(a) + kThreads - 1) / kThreads), unsigned(a.channels));
    multiply_backward_kernel<A><<<grid, kThreads, 0, stream_of(a)>>>(
        static_cast<Complex<A>*>(G), static_cast<const Complex<A>*>(Z), static_cast<const Complex<A>*>(H),
        static_cast<Complex<A>*>(dH), int(a.batch), int(a.channels), frequencies(a), A(1) / A(a.fft_length));
  };
  a.dtype == DType::Float64 ? run(double{}) : run(float{});
  cuda::check(cudaGetLastError(), "long_conv", "multiply backward launch");
}

void long_conv_unpack_backward(const LongConvArgs& a, const void* dy, const void* dz_rows, void* dk, void* dv) {
  by_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = typename Accumulate<T>::type;
    unpack_backward_kernel<T, A><<<tiles(a, a.length), kBlock, 0, stream_of(a)>>>(
        static_cast<const A*>(dz_rows), static_cast<const T*>(dy), static_cast<const T*>(a.q),
        static_cast<const T*>(a.k), static_cast<const T*>(a.v), static_cast<const A*>(a.D),
        a.k ? static_cast<T*>(dk) : nullptr, static_cast<T*>(dv), int(a.length), int(a.channels),
        int(a.fft_length), A(1) / A(a.fft_length));
  });
  cuda::check(cudaGetLastError(), "long_conv", "unpack backward launch");
}

}  // namespace starsynth::kernels
