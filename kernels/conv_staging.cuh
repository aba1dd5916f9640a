// How the tensor-core convolution (kernels/gated_conv_mma.cu) moves data between global and
// shared memory: its inputs fetched a block's share at a time and staged transposed (time
// contiguous) in the layouts of kernels/conv_layout.h, its filter staged as bf16 rows, its
// results staged as bf16 pairs and read back eight channels at a time. For that file only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/conv_layout.h"

namespace starsynth::kernels::gated_conv_mma {

using bf16 = __nv_bfloat16;
using namespace layout;  // kChannels, kTile and where the shared rows put each element

// A block: eight warps of four channels each.
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kPerWarp = kChannels / kWarps;

__device__ __forceinline__ uint32_t pack(bf16 lo, bf16 hi) {
  return uint32_t(__bfloat16_as_ushort(lo)) | uint32_t(__bfloat16_as_ushort(hi)) << 16;
}
__device__ __forceinline__ uint32_t pair_at(const bf16* p) { return *reinterpret_cast<const uint32_t*>(p); }

// Products of bf16 operands (the gates: z = k·v, g = dy·q, y, dq, dk, dv) two per instruction. The
// float product of two bf16 values is exact, so mul.rn.bf16x2 rounds it once, as LibTorch's bf16
// composite (and widening, multiplying in float and rounding) does: the same bits, a fraction of
// the instructions (Hyena-MR forward 226 -> 219 us on an H100).
__device__ __forceinline__ uint32_t mul_bf16x2(uint32_t a, uint32_t b) {
  const __nv_bfloat162 r =
      __hmul2_rn(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b));
  return *reinterpret_cast<const uint32_t*>(&r);
}
__device__ __forceinline__ uint4 mul_bf16x8(const uint4& a, const uint4& b) {
  return make_uint4(mul_bf16x2(a.x, b.x), mul_bf16x2(a.y, b.y), mul_bf16x2(a.z, b.z), mul_bf16x2(a.w, b.w));
}

// Special registers read afresh (volatile: never hoisted, never shared between uses), so that what a
// tile loop derives from them (global offsets, shared addresses, the block's channels) is recomputed
// where used, a few integer instructions, instead of held across the loop: at 128 registers the
// 128-tap backward pass spilled such values and reloaded them every tile (a local load whose wait
// drew 4-12 % of its stall samples).
__device__ __forceinline__ int fresh_thread() {
  int r;
  asm volatile("mov.u32 %0, %%tid.x;" : "=r"(r));
  return r;
}
__device__ __forceinline__ int fresh_block_y() {
  int r;
  asm volatile("mov.u32 %0, %%ctaid.y;" : "=r"(r));
  return r;
}
__device__ __forceinline__ int fresh_block_z() {
  int r;
  asm volatile("mov.u32 %0, %%ctaid.z;" : "=r"(r));
  return r;
}

// Raw elements of W consecutive channels, as fetched: global loads go out together, into
// registers, before any of them is used, so a tile costs one memory round trip, not one per row.
template <int W> using Raw = std::conditional_t<W == 8, uint4, bf16>;
template <int W> __device__ __forceinline__ Raw<W> fetch(const bf16* p) { return *reinterpret_cast<const Raw<W>*>(p); }
template <int W> __device__ __forceinline__ Raw<W> zeros() {
  if constexpr (W == 8) return make_uint4(0, 0, 0, 0);
  else return __float2bfloat16(0.f);
}
// Eight channels (16 bytes) as stored: through the intrinsic, because with nvcc 13.0 a plain
// assignment to *reinterpret_cast<uint4*>(p) compiled to four 32-bit stores, each warp's spread
// over 16 sectors (8 bytes used of each 32).
__device__ __forceinline__ void store_words(bf16* p, const uint4& words) { __stwb(reinterpret_cast<uint4*>(p), words); }

// 16 bytes from global to shared memory without passing through registers (sm_80 and later):
// issued together and waited for once, they cost one memory round trip and hold no registers.
__device__ __forceinline__ void copy_async_16(void* shared, const void* global) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned to = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(to), "l"(global));
#else
  __trap();
#endif
}
__device__ __forceinline__ void copy_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

// Items of a·b (b alone when a is null) for signal rows, `items` in all: item i is times t_first +
// 2 (i / kGroups) and the one after, of W channels from c0 + W (i % kGroups); 0 outside [0, L) and
// past the last channel. A thread's kBatch items first, first + kThreads, ... are fetched into
// registers (fetch_from) before any is stored (put): one memory round trip for them, not one each
// (the backward pass fetches a tile's while the tile before is computed). put writes item i to
// rows r = r_first + 2 (i / kGroups) and r + 1 of dst[c][row_at<kRows>(r)] as
// bf16, two consecutive times per 32-bit word.
template <int W, int kRows, int kBatch = 1>
struct SignalItems {
  static constexpr int kGroups = kChannels / W;
  Raw<W> a[kBatch][2], b[kBatch][2];

  __device__ __forceinline__ void fetch_from(const bf16* pa, const bf16* pb, int64_t base, int64_t t_first, int items,
                                             int first, int64_t c0, int64_t L, int64_t C) {
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int item = first + j * kThreads, r = 2 * (item / kGroups), c = W * (item % kGroups);
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int64_t t = t_first + r + half, i = base + t * C + c0 + c;
        const bool inside = item < items && t >= 0 && t < L && c0 + c < C;
        b[j][half] = inside ? fetch<W>(pb + i) : zeros<W>();
        a[j][half] = inside && pa ? fetch<W>(pa + i) : zeros<W>();
      }
    }
  }

  // fetch_from for all kBatch·kThreads items of rows at or after the sequence's start, addressed
  // as one block-uniform pointer (row0 = base + t_first·C + c0) plus a thread's 32-bit offset and
  // bounded by two 32-bit tests against block-uniform counts: the rows left in the sequence from
  // t_first and the block's channels below C. Where every item is inside (all but a sequence's
  // last tile) the loads are unconditional, without the zero fill. (The 128-tap backward pass's
  // per-tile fetch, in 64-bit arithmetic with 64-bit bounds: 8 % of its instructions.) Needs
  // 2·kBatch·kThreads / kGroups rows of C channels to fit in an int.
  __device__ __forceinline__ void fetch_rows(const bf16* pa, const bf16* pb, int64_t row0, int rows_left,
                                             int cols_left, int first, int C) {
    constexpr int kRowsSpanned = 2 * kBatch * kThreads / kGroups;
    static_assert(kBatch * kThreads % kGroups == 0, "the items fill whole rows");
    if (rows_left >= kRowsSpanned && cols_left >= kChannels)
      load_rows<true>(pa, pb, row0, rows_left, cols_left, first, C);
    else
      load_rows<false>(pa, pb, row0, rows_left, cols_left, first, C);
  }
  // fetch_rows' loads; kWhole: every item is inside, so no tests and no zero fill. (A member
  // template, not a generic lambda: with the lambda nvcc 13 compiled the 32- and 64-tap kernels'
  // put differently.)
  template <bool kWhole>
  __device__ __forceinline__ void load_rows(const bf16* pa, const bf16* pb, int64_t row0, int rows_left,
                                            int cols_left, int first, int C) {
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int item = first + j * kThreads, r = 2 * (item / kGroups), c = W * (item % kGroups);
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int offset = (r + half) * C + c;
        const bool inside = kWhole || (r + half < rows_left && c < cols_left);
        b[j][half] = inside ? fetch<W>(pb + row0 + offset) : zeros<W>();
        a[j][half] = inside && pa ? fetch<W>(pa + row0 + offset) : zeros<W>();
      }
    }
  }

  // kReversedP > 0: the rows are g's of the 128-tap backward pass, stored time-reversed (row r at
  // reversed_row<kReversedP>(r)), time r + 1 in a word's low half. kSwappedPairs: each word's halves
  // the other way round (the 128-tap backward pass's swapped_pairs).
  template <int kReversedP = 0, bool kSwappedPairs = false>
  __device__ __forceinline__ void put(bf16* dst, int stride, bool gated, int r_first, int items, int first) const {
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int item = first + j * kThreads;
      if (item >= items) break;
      const int r = r_first + 2 * (item / kGroups), c = W * (item % kGroups);
      const int at = kReversedP > 0 ? reversed_row<kReversedP>(r + 1) : r;
      uint32_t* word = reinterpret_cast<uint32_t*>(dst + c * stride + row_at<kRows>(at));
      constexpr int later = (kReversedP > 0) == kSwappedPairs ? 1 : 0;  // the half that holds time r + 1
      if constexpr (W == 8) {
        // Per time, the channel pairs (2p, 2p + 1) as words; then per channel its two times as one.
        uint32_t w[2][4];
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const uint32_t* bw = reinterpret_cast<const uint32_t*>(&b[j][half]);
          const uint32_t* aw = reinterpret_cast<const uint32_t*>(&a[j][half]);
#pragma unroll
          for (int p = 0; p < 4; ++p) w[half][p] = gated ? mul_bf16x2(aw[p], bw[p]) : bw[p];
        }
#pragma unroll
        for (int e = 0; e < W; ++e)
          word[e * stride / 2] = __byte_perm(w[1 - later][e / 2], w[later][e / 2], e % 2 ? 0x7632 : 0x5410);
      } else {
        float f[2];
#pragma unroll
        for (int half = 0; half < 2; ++half)
          f[half] = __bfloat162float(b[j][half]) * (gated ? __bfloat162float(a[j][half]) : 1.f);
        *word = pack(__float2bfloat16(f[1 - later]), __float2bfloat16(f[later]));
      }
    }
  }
};

// The signal rows r ∈ [r_begin, r_end) of a block's channels, as SignalItems describes, kBatch
// items a thread at a time. A plain loop: for the forward pass it measured faster than fetching
// the whole tile into registers first, which costs occupancy.
template <int W, int kRows, int kBatch = 1, int kReversedP = 0, bool kSwappedPairs = false>
__device__ __forceinline__ void stage_signal(bf16* dst, int stride, const bf16* a, const bf16* b, int64_t base,
                                             int64_t t_first, int r_begin, int r_end, int64_t c0, int64_t L,
                                             int64_t C) {
  const int items = (r_end - r_begin) / 2 * (kChannels / W);
  for (int first = threadIdx.x; first < items; first += kBatch * kThreads) {
    SignalItems<W, kRows, kBatch> batch;
    batch.fetch_from(a, b, base, t_first + r_begin, items, first, c0, L, C);
    batch.template put<kReversedP, kSwappedPairs>(dst, stride, a != nullptr, r_begin, items, first);
  }
}

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
// warp's loads of h are coalesced (a 128-tap channel is four 128-byte lines). fetch_from() issues
// every load before put() stores any (and other fetches may share that round trip).
template <int P, bool kTwoRows = false>
struct FilterQuads {
  static constexpr int kStride = kTwoRows ? two_row_stride<P>() : filter_stride<P>();
  static constexpr int kQuads = filter_stride<P>() / 4, kItems = kChannels * kQuads;  // m ∈ [−16, P + 16) by fours
  static constexpr int kRounds = (kItems + kThreads - 1) / kThreads;
  float4 x[kRounds];

  __device__ __forceinline__ void fetch_from(const float* h, const float* D, int64_t c0, int64_t C, int K) {
#pragma unroll
    for (int n = 0; n < kRounds; ++n) {
      const int item = threadIdx.x + n * kThreads, c = item / kQuads, m = 4 * (item % kQuads) - 16;
      const int64_t channel = c0 + c;
      const bool live = item < kItems && channel < C && m >= 0 && m < K;
      x[n] = live ? __ldg(reinterpret_cast<const float4*>(h + channel * K + m)) : make_float4(0.f, 0.f, 0.f, 0.f);
      if (live && m == 0 && D) x[n].x += __ldg(D + channel);
    }
  }

  __device__ __forceinline__ void put(bf16* fs) const {
#pragma unroll
    for (int n = 0; n < kRounds; ++n) {
      const int item = threadIdx.x + n * kThreads, c = item / kQuads, m = 4 * (item % kQuads) - 16;
      if (item >= kItems) break;
      const bf16 e[4] = {__float2bfloat16(x[n].x), __float2bfloat16(x[n].y), __float2bfloat16(x[n].z),
                         __float2bfloat16(x[n].w)};
      bf16* row = fs + c * kStride + 16;
      *reinterpret_cast<uint2*>(row + m) = make_uint2(pack(e[0], e[1]), pack(e[2], e[3]));
      if constexpr (kTwoRows) {  // h⁺[m] at odd_row − 1 + m: an odd offset, so 16, 32 and 16 bits
        bf16* odd = row + odd_row<P>() - 1 + m;
        if (m > -16) odd[0] = e[0];
        *reinterpret_cast<uint32_t*>(odd + 1) = pack(e[1], e[2]);
        odd[3] = e[3];
      }
    }
  }
};
template <int P, bool kTwoRows = false>
__device__ __forceinline__ void stage_filter_quads(bf16* fs, const float* h, const float* D, int64_t c0, int64_t C,
                                                   int K) {
  FilterQuads<P, kTwoRows> filter;
  filter.fetch_from(h, D, c0, C, K);
  filter.put(fs);
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
// (reversed: the accumulators of a product over reversed rows, d[e] at time kTile - 1 - index.)
__device__ __forceinline__ void stage_pairs(bf16* out, const PairWords& words, int p, int gid, int tid,
                                            int t_first = 0, bool reversed = false) {
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int index = accumulator_index(e, gid, tid);
    const int t = reversed ? kTile - 1 - index : t_first + index;
    reinterpret_cast<uint32_t*>(out)[result_word(t, p)] = words.w[e];
  }
}

// The staged results at time t of channels c to c + 7 (c a multiple of 8), as bf16 pairs in order.
__device__ __forceinline__ uint4 result_words(const bf16* out, int t, int c) {
  const int swizzle = pair_swizzle(t);
  uint4 u = reinterpret_cast<const uint4*>(out)[result_slot(t, c / 8)];
  if (swizzle & 2) u = make_uint4(u.z, u.w, u.x, u.y);
  if (swizzle & 1) u = make_uint4(u.y, u.x, u.w, u.z);
  return u;
}
// The staged result at time t of channel c.
__device__ __forceinline__ float result_at(const bf16* out, int t, int c) {
  return __bfloat162float(out[kChannels * t + 2 * (c / 2 ^ pair_swizzle(t)) + c % 2]);
}

}  // namespace starsynth::kernels::gated_conv_mma
