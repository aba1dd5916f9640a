// The gated convolution in bfloat16 on tensor cores, up to 128 taps (kernels/gated_conv.cu decides
// when it runs and keeps the CUDA-core kernels for everything else).
//
// Per channel the convolution is a Toeplitz matrix times the signal. Cut time into blocks of 16:
// the outputs of block n are A·w_n, where A[i][r] = h⁺[P + i − r] is the 16 × (P + 16) Toeplitz
// matrix of the filter zero-padded to P taps (a multiple of 16, with the skip D folded into tap 0)
// and w_n the P + 16 inputs that end with the block. Eight blocks side by side are the eight
// columns of an m16n8k16 MMA: P/16 + 1 MMAs per 128 outputs, so a 128-tap filter costs far less
// tensor-core time than memory time (its 128 FMAs per output would take about twice the memory
// floor at the CUDA cores' float32 rate).
// The backward pass is that product again (s, for dq), its adjoint A[i][r] = h⁺[r − i] over
// g = dy·q (dz), and the filter gradient dh[16a + b] = Σ_t g[t + b]·z[t − 16a]: an MMA with a
// Hankel matrix of g as A and z shifted by 16a in column a of B, whose 16 × 8 accumulator is dh
// itself for up to 128 taps and stays in registers while a block walks its tiles.
//
// Memory is [batch, time, channel]; the MMAs want time contiguous. A block owns 32 channels and 128
// time steps: it stages z = k·v (rounded to bf16, as LibTorch's bf16 composite rounds it) transposed
// into shared memory with a P-step halo, each warp computes four channels, and the results return
// through shared memory to be gated and stored with coalesced 16-byte accesses. From 32 taps a
// forward block takes two such tiles (256 steps), which halves the halo each output pays for. A
// backward block walks a stretch of the sequence tile by tile instead, staging its filter once and
// carrying each tile's halo over from the one before.
#include "kernels/gated_conv_mma.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kernels/conv_layout.h"
#include "kernels/cuda_util.cuh"

namespace starsynth::kernels::gated_conv_mma {
namespace {

using cuda::multiprocessors;
using bf16 = __nv_bfloat16;

void check(cudaError_t e, const char* what) { cuda::check(e, "gated_conv", what); }

using namespace layout;  // kChannels, kTile and where the shared rows put each element
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kPerWarp = kChannels / kWarps;

template <int S = 1> constexpr size_t result_bytes() { return sizeof(bf16) * S * kTile * kChannels; }

template <int P, int stride = filter_stride<P>()> constexpr size_t filter_bytes() { return sizeof(bf16) * kChannels * stride; }
template <int P, int S = 1, bool kPadded = false> constexpr size_t signal_bytes() {
  return sizeof(bf16) * kChannels * (kPadded ? padded_stride<P, S>() : signal_stride<P, S>());
}
// The 16-tap forward pass reads its A fragments as aligned words from two filter rows, as the
// backward pass does (Hyena-SE 165-169 us against 167-168 with one row: no worse, fewer shared
// loads); at 128 taps that cost 7-20 % (H200: 262 -> 279 and 321 us in two tries; H100, with the
// filter staged by quads: 258 -> 280).
template <int P> constexpr bool kForwardTwoRows = P == 16;
template <int P> constexpr bool kForwardPadded = P >= 32;
template <int P> __host__ __device__ constexpr int forward_filter_stride() {
  return kForwardTwoRows<P> ? two_row_stride<P>() : filter_stride<P>();
}
template <int P, int S> constexpr size_t forward_bytes() {
  return filter_bytes<P, forward_filter_stride<P>()>() +
         std::max(signal_bytes<P, S, kForwardPadded<P>>(), result_bytes<S>());
}
template <int P> constexpr size_t backward_bytes() {
  return filter_bytes<P, two_row_stride<P>()>() + 2 * signal_bytes<P>() + 2 * result_bytes();
}

__device__ __forceinline__ uint32_t pack(bf16 lo, bf16 hi) {
  return uint32_t(__bfloat16_as_ushort(lo)) | uint32_t(__bfloat16_as_ushort(hi)) << 16;
}
__device__ __forceinline__ uint32_t pair_at(const bf16* p) { return *reinterpret_cast<const uint32_t*>(p); }

// d += A·B for one m16n8k16 tile: bf16 operands, float accumulators.
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();  // the host side only dispatches here on sm_80 and later
#endif
}

// Raw elements of W consecutive channels, as fetched: global loads go out together, into
// registers, before any of them is used, so a tile costs one memory round trip, not one per row.
template <int W> using Raw = std::conditional_t<W == 8, uint4, bf16>;
template <int W> __device__ __forceinline__ Raw<W> fetch(const bf16* p) { return *reinterpret_cast<const Raw<W>*>(p); }
template <int W> __device__ __forceinline__ Raw<W> zeros() {
  if constexpr (W == 8) return make_uint4(0, 0, 0, 0);
  else return __float2bfloat16(0.f);
}
template <int W> __device__ __forceinline__ void widen_raw(const Raw<W>& r, float (&f)[W]) {
  if constexpr (W == 8) {
    const __nv_bfloat162* x = reinterpret_cast<const __nv_bfloat162*>(&r);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 v = __bfloat1622float2(x[i]);
      f[2 * i] = v.x, f[2 * i + 1] = v.y;
    }
  } else {
    f[0] = __bfloat162float(r);
  }
}

// W consecutive channels: one 16-byte access for W = 8 (channels a multiple of 8, aligned
// pointers), else one element.
template <int W> __device__ __forceinline__ void load(const bf16* p, float (&f)[W]) { widen_raw<W>(fetch<W>(p), f); }
template <int W> __device__ __forceinline__ void store(bf16* p, const float (&f)[W]) {
  if constexpr (W == 8) {
    auto word = [&f](int i) {
      const __nv_bfloat162 x = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
      return *reinterpret_cast<const uint32_t*>(&x);
    };
    // Through the intrinsic: with nvcc 13.0 a plain assignment to *reinterpret_cast<uint4*>(p)
    // compiled to four 32-bit stores, each warp's spread over 16 sectors (8 bytes used of each 32).
    __stwb(reinterpret_cast<uint4*>(p), make_uint4(word(0), word(1), word(2), word(3)));
  } else {
    *p = __float2bfloat16(f[0]);
  }
}

// dst[c][skew(r)] (padded(r) for kPadded) = a·b (b alone when a is null) at time t_first + r of
// channel c0 + c, for r in [r_begin, r_end), as bf16; 0 outside [0, L) and past the last channel;
// two consecutive times per 32-bit word. A plain loop: for the forward pass it measured faster than
// fetching the whole tile into registers first (SignalTile), which costs occupancy.
template <int W, bool kPadded>
__device__ __forceinline__ void stage_signal(bf16* dst, int stride, const bf16* a, const bf16* b, int64_t base,
                                             int64_t t_first, int r_begin, int r_end, int64_t c0, int64_t L,
                                             int64_t C) {
  constexpr int groups = kChannels / W;
  for (int item = threadIdx.x; item < (r_end - r_begin) / 2 * groups; item += kThreads) {
    const int r = r_begin + 2 * (item / groups), c = W * (item % groups);
    float f[2][W];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t t = t_first + r + half;
      if (t >= 0 && t < L && c0 + c < C) {
        const int64_t i = base + t * C + c0 + c;
        load<W>(b + i, f[half]);
        if (a) {
          float g[W];
          load<W>(a + i, g);
#pragma unroll
          for (int e = 0; e < W; ++e) f[half][e] *= g[e];
        }
      } else {
#pragma unroll
        for (int e = 0; e < W; ++e) f[half][e] = 0;
      }
    }
#pragma unroll
    for (int e = 0; e < W; ++e)
      *reinterpret_cast<uint32_t*>(dst + (c + e) * stride + (kPadded ? padded(r) : skew(r))) =
          pack(__float2bfloat16(f[0][e]), __float2bfloat16(f[1][e]));
  }
}

// A block's share of a·b (b alone when a is null) at times t_first + r, r ∈ [0, kRows), for its
// channels; 0 outside [0, L) and past the last channel. fetch() loads into registers; put()
// writes dst[c][skew(r0 + r)] as bf16, two consecutive times per 32-bit word.
template <int W, int kRows>
struct SignalTile {
  static constexpr int kGroups = kChannels / W;
  static constexpr int kItems = kRows / 2 * kGroups;
  static constexpr int kPerThread = (kItems + kThreads - 1) / kThreads;
  Raw<W> a[kPerThread][2], b[kPerThread][2];

  __device__ __forceinline__ void fetch_from(const bf16* pa, const bf16* pb, int64_t base, int64_t t_first,
                                             int64_t c0, int64_t L, int64_t C) {
#pragma unroll
    for (int n = 0; n < kPerThread; ++n) {
      const int item = threadIdx.x + n * kThreads;
      const int r = 2 * (item / kGroups), c = W * (item % kGroups);
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int64_t t = t_first + r + half, i = base + t * C + c0 + c;
        const bool inside = item < kItems && t >= 0 && t < L && c0 + c < C;
        b[n][half] = inside ? fetch<W>(pb + i) : zeros<W>();
        a[n][half] = inside && pa ? fetch<W>(pa + i) : zeros<W>();
      }
    }
  }

  __device__ __forceinline__ void put(bf16* dst, int stride, int r0, bool gated) const {
#pragma unroll
    for (int n = 0; n < kPerThread; ++n) {
      const int item = threadIdx.x + n * kThreads;
      if (item >= kItems) break;
      const int r = 2 * (item / kGroups), c = W * (item % kGroups);
      float f[2][W];
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        widen_raw<W>(b[n][half], f[half]);
        if (gated) {
          float g[W];
          widen_raw<W>(a[n][half], g);
#pragma unroll
          for (int e = 0; e < W; ++e) f[half][e] *= g[e];
        }
      }
#pragma unroll
      for (int e = 0; e < W; ++e)
        *reinterpret_cast<uint32_t*>(dst + (c + e) * stride + skew(r0 + r)) =
            pack(__float2bfloat16(f[0][e]), __float2bfloat16(f[1][e]));
    }
  }
};

// fs[c][m + 16] = h⁺[m]: channel c0 + c's taps as bf16, D added to tap 0, 0 outside [0, K); with
// kTwoRows (rows two_row_stride apart) also fs[c][odd_row + m + 15] = h⁺[m].
// Eight threads per channel, each a contiguous span: every block restages its filter, and with
// an index division per element this cost as much as the 128-tap MMAs.
template <int P, bool kTwoRows = false>
__device__ __forceinline__ void stage_filter(bf16* fs, const float* h, const float* D, int64_t c0, int64_t C, int K) {
  constexpr int stride = kTwoRows ? two_row_stride<P>() : filter_stride<P>();
  constexpr int parts = kThreads / kChannels, span = filter_stride<P>() / parts;
  static_assert(filter_stride<P>() % parts == 0, "the filter row splits evenly");
  const int c = threadIdx.x / parts, m0 = threadIdx.x % parts * span - 16;
  const int64_t channel = c0 + c;
  const bool live = channel < C;
  const float* hc = h + (live ? channel * K : 0);
  const float skip = live && D ? D[channel] : 0.f;
  bf16* row = fs + c * stride + 16;
#pragma unroll
  for (int j = 0; j < span; ++j) {
    const int m = m0 + j;
    float x = live && m >= 0 && m < K ? hc[m] : 0.f;
    if (m == 0) x += skip;
    row[m] = __float2bfloat16(x);
    if (kTwoRows && m > -16) row[odd_row<P>() - 1 + m] = __float2bfloat16(x);
  }
}

// The rows of stage_filter, four taps per access, for taps that start 16-byte aligned in every
// channel (K a multiple of 4, h aligned): consecutive threads take consecutive quads, so that a
// warp's loads of h are coalesced (a 128-tap channel is four 128-byte lines), and every load is
// issued before the first store.
template <int P, bool kTwoRows = false>
__device__ __forceinline__ void stage_filter_quads(bf16* fs, const float* h, const float* D, int64_t c0, int64_t C,
                                                   int K) {
  constexpr int stride = kTwoRows ? two_row_stride<P>() : filter_stride<P>();
  constexpr int quads = filter_stride<P>() / 4, items = kChannels * quads;  // m ∈ [−16, P + 16) by fours
  constexpr int rounds = (items + kThreads - 1) / kThreads;
  float4 x[rounds];
#pragma unroll
  for (int n = 0; n < rounds; ++n) {
    const int item = threadIdx.x + n * kThreads, c = item / quads, m = 4 * (item % quads) - 16;
    const int64_t channel = c0 + c;
    const bool live = item < items && channel < C && m >= 0 && m < K;
    x[n] = live ? __ldg(reinterpret_cast<const float4*>(h + channel * K + m)) : make_float4(0.f, 0.f, 0.f, 0.f);
    if (live && m == 0 && D) x[n].x += __ldg(D + channel);
  }
#pragma unroll
  for (int n = 0; n < rounds; ++n) {
    const int item = threadIdx.x + n * kThreads, c = item / quads, m = 4 * (item % quads) - 16;
    if (item >= items) break;
    const bf16 e[4] = {__float2bfloat16(x[n].x), __float2bfloat16(x[n].y), __float2bfloat16(x[n].z),
                       __float2bfloat16(x[n].w)};
    bf16* row = fs + c * stride + 16;
    *reinterpret_cast<uint2*>(row + m) = make_uint2(pack(e[0], e[1]), pack(e[2], e[3]));
    if constexpr (kTwoRows) {  // h⁺[m] at odd_row − 1 + m: an odd offset, so 16, 32 and 16 bits
      bf16* odd = row + odd_row<P>() - 1 + m;
      if (m > -16) odd[0] = e[0];
      *reinterpret_cast<uint32_t*>(odd + 1) = pack(e[1], e[2]);
      odd[3] = e[3];
    }
  }
}

// Rows i and i + 8 of k-slice s of A[i][r] = h⁺[P + i − r] (the causal convolution) or, kAdjoint,
// h⁺[r − i] (the correlation of its backward pass): the register pair of an A fragment in row
// `row` (gid or gid + 8); hc points at h⁺[0]. Either way A[i + 8][r + 8] = A[i][r], so the
// fragment of slice s is {lo(s), hi(s), hi(s + 1), lo(s)} with lo in row gid and hi in row gid + 8:
// two pairs to fetch per slice, not three.
// kTwoRows: hc points at h⁺[0] of the row holding the lane's pairs as aligned words (x even for
// the even row; the lane's x all have one parity, that of `row` or of row + 1).
template <int P, bool kAdjoint, bool kTwoRows = false>
__device__ __forceinline__ uint32_t toeplitz_pair(const bf16* hc, int s, int row, int tid) {
  const int r = 16 * s + 2 * tid;
  if constexpr (kTwoRows) {
    // (h⁺[x], h⁺[x + 1]) with x = r − row, or (h⁺[y + 1], h⁺[y]) with y = P + row − r − 1: halves swapped.
    if constexpr (kAdjoint) return pair_at(hc + r - row);
    else return __byte_perm(pair_at(hc + P + row - r - 1), 0, 0x1032);
  } else {
    auto at = [hc](int i, int r) { return kAdjoint ? hc[r - i] : hc[P + i - r]; };
    return pack(at(row, r), at(row, r + 1));
  }
}

// The MMA accumulators of channels 2p and 2p + 1 as bf16 pairs, and those staged as word p of the
// results (d[e] at time t_first + accumulator_index(e)).
struct PairWords {
  uint32_t w[4];
};
__device__ __forceinline__ PairWords pack_pairs(const float (&even)[4], const float (&odd)[4]) {
  PairWords r;
#pragma unroll
  for (int e = 0; e < 4; ++e) r.w[e] = pack(__float2bfloat16(even[e]), __float2bfloat16(odd[e]));
  return r;
}
__device__ __forceinline__ void stage_pairs(bf16* out, const PairWords& words, int p, int gid, int tid,
                                            int t_first = 0) {
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int t = t_first + accumulator_index(e, gid, tid);
    reinterpret_cast<uint32_t*>(out)[result_word(t, p)] = words.w[e];
  }
}

// W staged results at time t from channel c (a multiple of 8 for W = 8).
template <int W> __device__ __forceinline__ void load_result(const bf16* out, int t, int c, float (&r)[W]) {
  const int swizzle = pair_swizzle(t);
  if constexpr (W == 8) {
    uint4 u = reinterpret_cast<const uint4*>(out)[result_slot(t, c / 8)];
    if (swizzle & 2) u = make_uint4(u.z, u.w, u.x, u.y);
    if (swizzle & 1) u = make_uint4(u.y, u.x, u.w, u.z);
    widen_raw<8>(u, r);
  } else {
    r[0] = __bfloat162float(out[kChannels * t + 2 * (c / 2 ^ swizzle) + c % 2]);
  }
}

// Toeplitz products of channel c over S consecutive tiles of the staged signal, sharing each A
// fragment: C_u[i][n] = Σ_r A[i][r]·w[kTile u + 16 n + r].
// kTwoRows: hc points at h⁺[0] of the even of two filter rows (two_row_stride). kPadded: w is laid
// out padded(), where B[r'][n] = w[16 n + r'] for r' = 16 s + 2 tid sits 24 (gid + s) + 2 tid
// elements in, so a lane's addresses are one register plus constants.
template <int P, bool kAdjoint, int S, bool kTwoRows = false, bool kPadded = false>
__device__ __forceinline__ void toeplitz_product(float (&d)[S][4], const bf16* hc, const bf16* w, int gid, int tid) {
  if constexpr (kTwoRows) {
    // The lane's pairs start at x of gid's parity (adjoint) or of gid + 1's (causal).
    const bool odd = (gid & 1) != (kAdjoint ? 0 : 1);
    if (odd) hc += odd_row<P>() - 1;
  }
  uint32_t hi = toeplitz_pair<P, kAdjoint, kTwoRows>(hc, 0, gid + 8, tid);
#pragma unroll
  for (int s = 0; s <= P / 16; ++s) {
    const uint32_t lo = toeplitz_pair<P, kAdjoint, kTwoRows>(hc, s, gid, tid);
    const uint32_t next = toeplitz_pair<P, kAdjoint, kTwoRows>(hc, s + 1, gid + 8, tid);
    const uint32_t a[4] = {lo, hi, next, lo};
    const int r = 16 * gid + 16 * s + 2 * tid;  // B[r'][n] = w[16 n + r'], n = gid
#pragma unroll
    for (int u = 0; u < S; ++u) {
      if constexpr (kPadded) {
        const bf16* wu = w + 24 * gid + 2 * tid + padded(kTile * u) + 24 * s;  // padded(kTile u + r)
        mma_16x8x16(d[u], a, pair_at(wu), pair_at(wu + 8));
      } else {
        const bf16* wu = w + skew(kTile * u);  // skew(kTile u + x) = skew(kTile u) + skew(x)
        mma_16x8x16(d[u], a, pair_at(wu + skew(r)), pair_at(wu + skew(r + 8)));
      }
    }
    hi = next;
  }
}

// A block computes S tiles of kTile steps, sharing the filter's A fragments between them. (Walking
// several spans per block with the halo carried, as the backward pass does, measured slower here:
// Hyena-MR 252 -> 314 us on an H100, one wave of blocks whose staging and MMA phases coincide.)
template <int P, int W, int S, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    forward_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                   const float* __restrict__ h, const float* __restrict__ D, bf16* __restrict__ y, int64_t L,
                   int64_t C, int K, bool filter_quads) {
  constexpr int span = S * kTile, groups = kChannels / W, items = span * groups / kThreads;
  constexpr bool two_rows = kForwardTwoRows<P>, padded_rows = kForwardPadded<P>;
  constexpr int filter_row = forward_filter_stride<P>();
  constexpr int signal_row = padded_rows ? padded_stride<P, S>() : signal_stride<P, S>();
  static_assert(span * groups % kThreads == 0, "every thread stores the same number of items");
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* fs = reinterpret_cast<bf16*>(smem);
  bf16* zs = fs + kChannels * filter_row;  // z at time t0 − P + r
  bf16* out = zs;                          // once every warp has read zs
  // Channels vary fastest over the grid: blocks in flight together cover whole rows of memory.
  const int64_t t0 = int64_t(blockIdx.y) * span, c0 = int64_t(blockIdx.x) * kChannels;
  const int64_t base = int64_t(blockIdx.z) * L * C;
  if (filter_quads) stage_filter_quads<P, two_rows>(fs, h, D, c0, C, K);
  else stage_filter<P, two_rows>(fs, h, D, c0, C, K);
  stage_signal<W, padded_rows>(zs, signal_row, k, v, base, t0 - P, 0, signal_rows<P, S>(), c0, L, C);
  __syncthreads();
  const int warp = threadIdx.x / 32, gid = threadIdx.x % 32 / 4, tid = threadIdx.x % 4;
  // A warp's channels are consecutive, so that each pair's results are staged as bf16 pairs; a
  // pair's accumulators are packed as soon as both are done (fewer registers held).
  PairWords words[kPerWarp / 2][S];
#pragma unroll
  for (int j = 0; j < kPerWarp / 2; ++j) {
    float acc[2][S][4] = {};
#pragma unroll
    for (int m = 0; m < 2; ++m) {
      const int c = kPerWarp * warp + 2 * j + m;
      toeplitz_product<P, false, S, two_rows, padded_rows>(acc[m], fs + c * filter_row + 16, zs + c * signal_row,
                                                           gid, tid);
    }
#pragma unroll
    for (int u = 0; u < S; ++u) words[j][u] = pack_pairs(acc[0][u], acc[1][u]);
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < kPerWarp / 2; ++j)
#pragma unroll
    for (int u = 0; u < S; ++u) stage_pairs(out, words[j][u], kPerWarp / 2 * warp + j, gid, tid, kTile * u);
  __syncthreads();
#pragma unroll
  for (int n = 0; n < items; ++n) {
    const int item = threadIdx.x + n * kThreads, t = item / groups, c = W * (item % groups);
    if (t0 + t >= L || c0 + c >= C) continue;
    const int64_t i = base + (t0 + t) * C + c0 + c;
    float r[W];
    load_result<W>(out, t, c, r);
    if (q) {
      float g[W];
      load<W>(q + i, g);
#pragma unroll
      for (int e = 0; e < W; ++e) r[e] *= g[e];
    }
    store<W>(y + i, r);
  }
}

// dh[16 a + b] += Σ_t g[t + b]·z[t − 16 a] over a tile's times t: an MMA with a Hankel A and
// shifted columns of B, whose accumulator C[b][a] is dh itself (gc, zc: one channel's staged g and z).
template <int P>
__device__ __forceinline__ void hankel_product(float (&dh)[4], const bf16* gc, const bf16* zc, int gid, int tid) {
#pragma unroll
  for (int slice = 0; slice < kTile / 16; ++slice) {
    const int t = 16 * slice + 2 * tid;
    uint32_t a[4];
    a[0] = pack(gc[skew(t + gid)], gc[skew(t + gid + 1)]);
    a[1] = pack(gc[skew(t + gid + 8)], gc[skew(t + gid + 9)]);
    a[2] = a[1];  // A[b][t + 8] = A[b + 8][t]
    a[3] = pack(gc[skew(t + gid + 16)], gc[skew(t + gid + 17)]);
    const bool column = gid < P / 16;  // columns a past the padded filter stay 0
    const uint32_t b0 = column ? pair_at(zc + skew(P + t - 16 * gid)) : 0u;
    const uint32_t b1 = column ? pair_at(zc + skew(P + t + 8 - 16 * gid)) : 0u;
    mma_16x8x16(dh, a, b0, b1);
  }
}

// dh[b] += Σ_t g[t + b]·z[t] for the 16 taps b of a 16-tap filter, over times t ∈ [16 i, 16 i + 16)
// of a tile, on the CUDA cores (gc, zc: one channel's staged g and z). hankel_product's MMA
// yields eight columns of 16 taps, of which such a filter uses one, and its 16-bit gathers of g
// were most of the backward pass's shared loads (64 of 82 per channel and tile); here a lane reads
// its 16 steps of z and 32 of g once, as 24 words (runs of 16 from multiples of 16, contiguous
// under the skew; their bank pattern is checked in tests/test_conv_layout.cpp).
__device__ __forceinline__ void correlate_16(float (&dh)[16], const bf16* gc, const bf16* zc, int i) {
  constexpr int P = 16;
  const bf16* zp = zc + skew(P + 16 * i);
  const bf16* gp = gc + skew(16 * i);
  const bf16* gq = gc + skew(16 * i + 16);
  uint32_t zw[8], gw[16];
#pragma unroll
  for (int w = 0; w < 8; ++w) zw[w] = pair_at(zp + 2 * w), gw[w] = pair_at(gp + 2 * w), gw[8 + w] = pair_at(gq + 2 * w);
  auto half = [](uint32_t w, int odd) { return __uint_as_float(odd ? w & 0xffff0000u : w << 16); };
#pragma unroll
  for (int t = 0; t < 16; ++t) {
    const float z = half(zw[t / 2], t % 2);
#pragma unroll
    for (int b = 0; b < 16; ++b) dh[b] = fmaf(half(gw[(t + b) / 2], (t + b) % 2), z, dh[b]);
  }
}

// Two blocks per multiprocessor (128 registers): three spill and run at half the speed. The
// gated pass has no registers to spare for prefetching the next tile (it spilled: fetching each
// tile when it is needed measured 4-17 % faster); the ungated one (no q, no k) gains 5 % from it.
template <int P, int W, bool kPrefetch>
__global__ void __launch_bounds__(kThreads, 2)
    backward_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                    const float* __restrict__ h, const float* __restrict__ D, const bf16* __restrict__ dy,
                    bf16* __restrict__ dq, bf16* __restrict__ dk, bf16* __restrict__ dv, float* __restrict__ dh,
                    float* __restrict__ dD, int64_t L, int64_t C, int K, int tiles_per_block) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* fs = reinterpret_cast<bf16*>(smem);
  bf16* zs = fs + kChannels * two_row_stride<P>();  // z at time t0 − P + r
  bf16* gs = zs + kChannels * signal_stride<P>();  // g = dy·q at time t0 + r
  bf16* s_out = gs + kChannels * signal_stride<P>();
  bf16* dz_out = s_out + kTile * kChannels;
  const int64_t c0 = int64_t(blockIdx.y) * kChannels, base = int64_t(blockIdx.z) * L * C;
  const int warp = threadIdx.x / 32, gid = threadIdx.x % 32 / 4, tid = threadIdx.x % 4;
  stage_filter<P, true>(fs, h, D, c0, C, K);
  // A 16-tap filter's gradient on the CUDA cores (correlate_16), the others' by Hankel MMAs.
  constexpr bool correlate = P == 16;
  float dh_acc[kPerWarp][4] = {};  // the Hankel MMAs' accumulators, one per channel of the warp
  // correlate: lane l takes chunk l % 8 of channel kPerWarp warp + l / 8 and holds its share of
  // that channel's taps. (Both indices are derived where used: held across the tile loop, they
  // made the ungated pass spill 16 bytes.)
  static_assert(kPerWarp == 4, "a warp's 32 lanes: four channels of eight chunks");
  float dh_taps[16] = {};
  // A block walks consecutive tiles. z's rows hold times [t0 − P, t0 + kTile) and g's [t0, t0 +
  // kTile + P); the next tile's first P rows of each are this tile's last P, moved within shared
  // memory, so a tile fetches kTile new rows of each and only a block's first tile the P others.
  const int64_t first = int64_t(blockIdx.x) * tiles_per_block;
  const int64_t last = ::min(first + tiles_per_block, (L + kTile - 1) / kTile);
  stage_signal<W, false>(zs, signal_stride<P>(), k, v, base, first * kTile - P, 0, P, c0, L, C);
  stage_signal<W, false>(gs, signal_stride<P>(), q, dy, base, first * kTile, 0, P, c0, L, C);
  // kPrefetch: the next tile's z and g are fetched while this one is computed.
  SignalTile<W, kTile> z, g;
  if constexpr (kPrefetch) {
    z.fetch_from(k, v, base, first * kTile, c0, L, C);
    g.fetch_from(q, dy, base, first * kTile + P, c0, L, C);
  }
  for (int64_t tile = first; tile < last; ++tile) {
    const int64_t t0 = tile * kTile, next = tile + 1;
    __syncthreads();  // the previous tile's readers are done
    if constexpr (!kPrefetch) {
      z.fetch_from(k, v, base, t0, c0, L, C);
      g.fetch_from(q, dy, base, t0 + P, c0, L, C);
    }
    z.put(zs, signal_stride<P>(), P, k != nullptr);
    g.put(gs, signal_stride<P>(), P, q != nullptr);
    __syncthreads();
    if (kPrefetch && next < last) {
      z.fetch_from(k, v, base, next * kTile, c0, L, C);
      g.fetch_from(q, dy, base, next * kTile + P, c0, L, C);
    }
    // The warp's channels two at a time, so that s and dz are staged as bf16 pairs.
#pragma unroll
    for (int j = 0; j < kPerWarp / 2; ++j) {
      const int c = kPerWarp * warp + 2 * j;  // and c + 1
      const bf16* hc = fs + c * two_row_stride<P>() + 16;
      const bf16* zc = zs + c * signal_stride<P>();
      const bf16* gc = gs + c * signal_stride<P>();
      {
        float s[2][1][4] = {};
        toeplitz_product<P, false, 1, true>(s[0], hc, zc, gid, tid);
        toeplitz_product<P, false, 1, true>(s[1], hc + two_row_stride<P>(), zc + signal_stride<P>(), gid, tid);
        stage_pairs(s_out, pack_pairs(s[0][0], s[1][0]), c / 2, gid, tid);
      }
      {
        float dz[2][1][4] = {};
        toeplitz_product<P, true, 1, true>(dz[0], hc, gc, gid, tid);
        toeplitz_product<P, true, 1, true>(dz[1], hc + two_row_stride<P>(), gc + signal_stride<P>(), gid, tid);
        stage_pairs(dz_out, pack_pairs(dz[0][0], dz[1][0]), c / 2, gid, tid);
      }
      if constexpr (!correlate) {
#pragma unroll
        for (int m = 0; m < 2; ++m)
          hankel_product<P>(dh_acc[2 * j + m], gc + m * signal_stride<P>(), zc + m * signal_stride<P>(), gid, tid);
      }
    }
    if constexpr (correlate) {
      const int c = kPerWarp * warp + threadIdx.x % 32 / 8;
      correlate_16(dh_taps, gs + c * signal_stride<P>(), zs + c * signal_stride<P>(), threadIdx.x % 8);
    }
    __syncthreads();
    if (next < last) {  // rows [kTile, kTile + P) to [0, P): a shift by skew(kTile), kTile a multiple of 64
      constexpr int from = skew(kTile) / 2, words = skew(P) / 2, row = signal_stride<P>() / 2;
      static_assert(signal_stride<P>() % 2 == 0, "rows of whole words");
      uint32_t* zw = reinterpret_cast<uint32_t*>(zs);
      uint32_t* gw = reinterpret_cast<uint32_t*>(gs);
      for (int item = threadIdx.x; item < kChannels * words; item += kThreads) {
        const int i = item / words * row + item % words;
        zw[i] = zw[i + from];
        gw[i] = gw[i + from];
      }
    }
    constexpr int groups = kChannels / W;
    for (int item = threadIdx.x; item < kTile * groups; item += kThreads) {
      const int t = item / groups, c = W * (item % groups);
      if (t0 + t >= L || c0 + c >= C) continue;
      const int64_t i = base + (t0 + t) * C + c0 + c;
      float dz[W], x[W];
      load_result<W>(dz_out, t, c, dz);
      if (q) {
        float s[W];
        load_result<W>(s_out, t, c, s);
        load<W>(dy + i, x);
#pragma unroll
        for (int e = 0; e < W; ++e) x[e] *= s[e];
        store<W>(dq + i, x);
      }
      if (k) {
        load<W>(v + i, x);
#pragma unroll
        for (int e = 0; e < W; ++e) x[e] *= dz[e];
        store<W>(dk + i, x);
        load<W>(k + i, x);
#pragma unroll
        for (int e = 0; e < W; ++e) x[e] *= dz[e];
        store<W>(dv + i, x);
      } else {
        store<W>(dv + i, dz);
      }
    }
  }
  if constexpr (correlate) {
    // The eight lanes of a channel hold partial sums of its taps; lane i adds taps 2 i and 2 i + 1
    // (a test in a loop over all 16, so that dh_taps is indexed by constants: registers).
#pragma unroll
    for (int b = 0; b < 16; ++b)
#pragma unroll
      for (int o = 1; o < 8; o *= 2) dh_taps[b] += __shfl_xor_sync(0xffffffffu, dh_taps[b], o);
    const int64_t channel = c0 + kPerWarp * warp + threadIdx.x % 32 / 8;
    const int i = threadIdx.x % 8;
    if (channel < C) {
#pragma unroll
      for (int b = 0; b < 16; ++b) {
        if (b / 2 != i) continue;
        if (b < K) atomicAdd(dh + channel * K + b, dh_taps[b]);
        if (dD && b == 0) atomicAdd(dD + channel, dh_taps[b]);
      }
    }
  } else {
    // Accumulator C[b][a] holds dh[16 a + b]; dD = Σ_t g[t]·z[t] is its tap 0.
#pragma unroll
    for (int m = 0; m < kPerWarp; ++m) {
      const int64_t channel = c0 + kPerWarp * warp + m;
      if (channel >= C) continue;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int tap = accumulator_index(e, gid, tid);
        if (tap < K) atomicAdd(dh + channel * K + tap, dh_acc[m][e]);
        if (dD && tap == 0) atomicAdd(dD + channel, dh_acc[m][e]);
      }
    }
  }
}

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// 8 channels per access where every tensor allows it.
bool vectorized(const GatedConvArgs& a, std::initializer_list<const void*> tensors) {
  if (a.channels % 8 != 0) return false;
  for (const void* p : tensors)
    if (p && !aligned(p)) return false;
  return true;
}

// Tiles per block and the register budget (resident blocks per multiprocessor) of the forward
// pass, as measured on an H200 (BENCHMARKS.md, 2026-12-03): for 128 taps two tiles and four
// blocks (Hyena-MR 371 -> 294 us at B=8 L=8K D=1024); for 16 one tile and six (40 registers,
// Hyena-SE 192 -> 183 us; a second tile saves only a 16-step halo and costs occupancy; seven
// spill). 32 and 64 taps take two tiles too, unmeasured, at three blocks: four would spill at 64.
template <int P> constexpr int kForwardTiles = P >= 32 ? 2 : 1;
template <int P> constexpr int kForwardBlocks = P == 128 ? 4 : P >= 32 ? 3 : 6;

// Tiles per backward block: enough blocks for one wave of as many as fit (more, shorter walks
// would restage more halos and filters; more blocks than fit would queue a partial second wave),
// or a.time_blocks along the sequence.
int64_t tiles_per_block(const GatedConvArgs& a, int64_t tiles, int64_t channel_blocks, int resident) {
  const int64_t wave = int64_t(std::max(resident, 1)) * multiprocessors();
  const int64_t blocks = a.time_blocks > 0 ? a.time_blocks : wave / (channel_blocks * a.batch);
  const int64_t along = std::clamp<int64_t>(blocks, 1, tiles);
  return (tiles + along - 1) / along;
}

template <int P, int W>
void forward(const GatedConvArgs& a, void* y) {
  constexpr int S = kForwardTiles<P>;
  auto kernel = forward_kernel<P, W, S, kForwardBlocks<P>>;
  constexpr size_t smem = forward_bytes<P, S>();
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), "shared memory");
  const dim3 grid(unsigned((a.channels + kChannels - 1) / kChannels),
                  unsigned((a.length + S * kTile - 1) / (S * kTile)), unsigned(a.batch));
  kernel<<<grid, kThreads, smem, static_cast<cudaStream_t>(a.stream)>>>(
      static_cast<const bf16*>(a.q), static_cast<const bf16*>(a.k), static_cast<const bf16*>(a.v),
      static_cast<const float*>(a.h), static_cast<const float*>(a.D), static_cast<bf16*>(y), a.length, a.channels,
      int(a.taps), a.taps % 4 == 0 && aligned(a.h));
  check(cudaGetLastError(), "tensor-core forward launch");
}

template <int P, int W>
void backward(const GatedConvArgs& a, const void* dy, void* dq, void* dk, void* dv, void* dh, void* dD) {
  auto kernel = a.q ? backward_kernel<P, W, false> : backward_kernel<P, W, true>;
  constexpr size_t smem = backward_bytes<P>();
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), "shared memory");
  // Each block walks its tiles in order: the filter gradient leaves registers once per block.
  int resident = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, kThreads, smem), "occupancy");
  const int64_t channel_blocks = (a.channels + kChannels - 1) / kChannels, tiles = (a.length + kTile - 1) / kTile;
  const int64_t per_block = tiles_per_block(a, tiles, channel_blocks, resident);
  const dim3 grid(unsigned((tiles + per_block - 1) / per_block), unsigned(channel_blocks), unsigned(a.batch));
  kernel<<<grid, kThreads, smem, static_cast<cudaStream_t>(a.stream)>>>(
      static_cast<const bf16*>(a.q), static_cast<const bf16*>(a.k), static_cast<const bf16*>(a.v),
      static_cast<const float*>(a.h), static_cast<const float*>(a.D), static_cast<const bf16*>(dy),
      static_cast<bf16*>(dq), static_cast<bf16*>(dk), static_cast<bf16*>(dv), static_cast<float*>(dh),
      static_cast<float*>(dD), a.length, a.channels, int(a.taps), int(per_block));
  check(cudaGetLastError(), "tensor-core backward launch");
}

template <int W>
void forward_padded(const GatedConvArgs& a, void* y) {
  if (a.taps <= 16) return forward<16, W>(a, y);
  if (a.taps <= 32) return forward<32, W>(a, y);
  if (a.taps <= 64) return forward<64, W>(a, y);
  return forward<128, W>(a, y);
}

template <int W>
void backward_padded(const GatedConvArgs& a, const void* dy, void* dq, void* dk, void* dv, void* dh, void* dD) {
  if (a.taps <= 16) return backward<16, W>(a, dy, dq, dk, dv, dh, dD);
  if (a.taps <= 32) return backward<32, W>(a, dy, dq, dk, dv, dh, dD);
  if (a.taps <= 64) return backward<64, W>(a, dy, dq, dk, dv, dh, dD);
  return backward<128, W>(a, dy, dq, dk, dv, dh, dD);
}

}  // namespace

constexpr int kMaxTaps = 128;

bool applies(const GatedConvArgs& a) {
  if (a.dtype != DType::BFloat16 || a.taps > kMaxTaps || (a.length + kTile - 1) / kTile > 65535) return false;
  int device = 0, major = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "compute capability");
  return major >= 8;
}

void run_forward(const GatedConvArgs& a, void* y) {
  if (vectorized(a, {a.q, a.k, a.v, y})) return forward_padded<8>(a, y);
  forward_padded<1>(a, y);
}

void run_backward(const GatedConvArgs& a, const void* dy, void* dq, void* dk, void* dv, void* dh, void* dD) {
  if (vectorized(a, {a.q, a.k, a.v, dy, dq, dk, dv})) return backward_padded<8>(a, dy, dq, dk, dv, dh, dD);
  backward_padded<1>(a, dy, dq, dk, dv, dh, dD);
}

}  // namespace starsynth::kernels::gated_conv_mma
