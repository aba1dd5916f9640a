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
// itself for up to 128 taps and stays in registers while a block walks its tiles. At 128 taps g is
// staged time-reversed, which makes the adjoint product the causal one, so that s and dz share the
// filter's A fragments, and the three products run in one pass over the slices.
//
// Memory is [batch, time, channel]; the MMAs want time contiguous. A block owns 32 channels and 128
// time steps: it stages z = k·v (rounded to bf16, as LibTorch's bf16 composite rounds it) transposed
// into shared memory with a P-step halo, each warp computes four channels, and the results return
// through shared memory to be gated and stored with coalesced 16-byte accesses. From 32 taps a
// forward block takes two such tiles (256 steps), which halves the halo each output pays for. A
// backward block walks a stretch of the sequence tile by tile instead, staging its filter once and
// carrying each tile's halo over from the one before.
//
// Here: the two kernels, the shared memory they take and their launch. Their building blocks are
// kernels/conv_staging.cuh (global and shared memory) and kernels/conv_products.cuh (the MMAs).
#include "kernels/gated_conv_mma.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "kernels/conv_launch.h"
#include "kernels/conv_layout.h"
#include "kernels/conv_products.cuh"
#include "kernels/conv_staging.cuh"
#include "kernels/cuda_util.cuh"

namespace starsynth::kernels::gated_conv_mma {
namespace {

using cuda::multiprocessors;

void check(cudaError_t e, const char* what) { cuda::check(e, "gated_conv", what); }

template <int S = 1> constexpr size_t result_bytes() { return sizeof(bf16) * S * kTile * kChannels; }

template <int P, int stride = filter_stride<P>()> constexpr size_t filter_bytes() { return sizeof(bf16) * kChannels * stride; }
template <int P, int S, int kRows> constexpr size_t signal_bytes() {
  return sizeof(bf16) * kChannels * row_stride<kRows, P, S>();
}
// The 16-tap forward pass reads its A fragments as aligned words from two filter rows, as the
// backward pass does (Hyena-SE 165-169 us against 167-168 with one row: no worse, fewer shared
// loads); at 128 taps that cost 7-20 % (H200: 262 -> 279 and 321 us in two tries; H100, with the
// filter staged by quads: 258 -> 280).
template <int P> constexpr bool kForwardTwoRows = P == 16;
template <int P> constexpr int kForwardRows = P >= 32 ? kPaddedRows : kSkewedRows;
template <int P> __host__ __device__ constexpr int forward_filter_stride() {
  return kForwardTwoRows<P> ? two_row_stride<P>() : filter_stride<P>();
}
// The signal rows, once read, hold the results and then the gates q of the same outputs.
template <int P, int S> constexpr size_t forward_bytes() {
  return filter_bytes<P, forward_filter_stride<P>()>() +
         std::max(signal_bytes<P, S, kForwardRows<P>>(), 2 * result_bytes<S>());
}
// The forward pass's 128-tap staging with 16-byte accesses in two memory round trips (its 384
// rows are three items a thread; all three fetched at once spill 60 bytes): the first fetches the
// filter with each thread's first item, the second two items a thread before storing either.
// Hyena-MR forward on an H100: 244 -> 233 us with three round trips instead of four (and the
// gates by cp.async), 234 -> 226 with two.
template <int P, int W> constexpr bool kForwardMergedStaging = P == 128 && W == 8;
template <int P, int W> constexpr int kForwardStageBatch = P == 128 && W == 8 ? 2 : 1;
// With 16-byte accesses (W = 8) the forward pass copies its gates q to shared memory
// asynchronously (copy_async_16), as does the gated backward pass its epilogue's dy, v and k.
template <int W> constexpr bool kAsyncInputs = W == 8;
// The backward pass's rows: swizzled at 128 taps (where the shared loads bind), skewed below.
template <int P> constexpr int kBackwardRows = P == kTile ? kSwizzledRows : kSkewedRows;
// async: room for a tile's dy, v and k.
template <int P> constexpr size_t backward_bytes(bool async) {
  return filter_bytes<P, two_row_stride<P>()>() + 2 * signal_bytes<P, 1, kBackwardRows<P>>() + 2 * result_bytes() +
         (async ? 3 * result_bytes() : 0);
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
  constexpr bool two_rows = kForwardTwoRows<P>;
  constexpr int rows = kForwardRows<P>, filter_row = forward_filter_stride<P>(), signal_row = row_stride<rows, P, S>();
  static_assert(span * groups % kThreads == 0, "every thread stores the same number of items");
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* fs = reinterpret_cast<bf16*>(smem);
  bf16* zs = fs + kChannels * filter_row;  // z at time t0 − P + r
  bf16* out = zs;                          // once every warp has read zs
  // Channels vary fastest over the grid: blocks in flight together cover whole rows of memory.
  const int64_t t0 = int64_t(blockIdx.y) * span, c0 = int64_t(blockIdx.x) * kChannels;
  const int64_t base = int64_t(blockIdx.z) * L * C;
  if (filter_quads && kForwardMergedStaging<P, W>) {
    // The filter and each thread's first signal item share a memory round trip; the rest of the
    // rows take one more (kForwardStageBatch items a thread).
    constexpr int head_rows = 2 * kThreads / groups;
    FilterQuads<P, two_rows> filter;
    SignalItems<W, rows> head;
    filter.fetch_from(h, D, c0, C, K);
    head.fetch_from(k, v, base, t0 - P, kThreads, threadIdx.x, c0, L, C);
    filter.put(fs);
    head.put(zs, signal_row, k != nullptr, 0, kThreads, threadIdx.x);
    stage_signal<W, rows, kForwardStageBatch<P, W>>(zs, signal_row, k, v, base, t0 - P, head_rows,
                                                    signal_rows<P, S>(), c0, L, C);
  } else {
    if (filter_quads) stage_filter_quads<P, two_rows>(fs, h, D, c0, C, K);
    else stage_filter<P, two_rows>(fs, h, D, c0, C, K);
    stage_signal<W, rows, kForwardStageBatch<P, W>>(zs, signal_row, k, v, base, t0 - P, 0,
                                                    signal_rows<P, S>(), c0, L, C);
  }
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
      toeplitz_product<P, false, S, two_rows, rows == kPaddedRows>(acc[m], fs + c * filter_row + 16,
                                                                    zs + c * signal_row, gid, tid);
    }
#pragma unroll
    for (int u = 0; u < S; ++u) words[j][u] = pack_pairs(acc[0][u], acc[1][u]);
  }
  __syncthreads();
  // The gates of the block's outputs go to the signal rows past the results, [t][c], copied while
  // the results are staged: one memory round trip, where loading each beside its store took one
  // per item (the bounds checks between them keep the compiler from hoisting the loads).
  bf16* gates = out + S * kTile * kChannels;
  constexpr bool async_gates = kAsyncInputs<W>;
  if (async_gates && q) {
#pragma unroll
    for (int n = 0; n < items; ++n) {
      const int item = threadIdx.x + n * kThreads, t = item / groups, c = W * (item % groups);
      if (t0 + t < L && c0 + c < C) copy_async_16(gates + kChannels * t + c, q + base + (t0 + t) * C + c0 + c);
    }
  }
#pragma unroll
  for (int j = 0; j < kPerWarp / 2; ++j)
#pragma unroll
    for (int u = 0; u < S; ++u) stage_pairs(out, words[j][u], kPerWarp / 2 * warp + j, gid, tid, kTile * u);
  if (async_gates && q) copy_async_wait();
  __syncthreads();
#pragma unroll
  for (int n = 0; n < items; ++n) {
    const int item = threadIdx.x + n * kThreads, t = item / groups, c = W * (item % groups);
    if (t0 + t >= L || c0 + c >= C) continue;
    const int64_t i = base + (t0 + t) * C + c0 + c;
    if constexpr (W == 8) {
      uint4 r = result_words(out, t, c);
      if (q) r = mul_bf16x8(r, fetch<8>(async_gates ? gates + kChannels * t + c : q + i));
      store_words(y + i, r);
    } else {
      const float r = result_at(out, t, c);
      y[i] = __float2bfloat16(q ? r * __bfloat162float(q[i]) : r);
    }
  }
}

// Two blocks per multiprocessor (128 registers): three spill and run at half the speed.
// kPrefetch: the next tile's z and g are fetched into registers while this one is computed. The
// ungated pass (no q) gains 5 % from it. The gated pass loading its epilogue's inputs from global
// memory has no registers to spare for it (fetching each tile when needed measured 4-17 %
// faster); copying them to shared memory instead (kAsync) frees enough at 128 taps (Hyena-MR
// backward 687 -> 649 us on an H100) but not at 16 (Hyena-SE 422 -> 477).
// kAsync: the tile's dy, v and k are copied to shared memory as it begins, so that the epilogue
// reads no global memory (Hyena-SE 484 -> 422 us). The ungated pass (the short convolution: no
// q, no k, so it reads none of them) measured slower with that shared memory reserved (220 -> 242).
template <int P, int W, bool kPrefetch, bool kAsync>
__global__ void __launch_bounds__(kThreads, 2)
    backward_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                    const float* __restrict__ h, const float* __restrict__ D, const bf16* __restrict__ dy,
                    bf16* __restrict__ dq, bf16* __restrict__ dk, bf16* __restrict__ dv, float* __restrict__ dh,
                    float* __restrict__ dD, int64_t L, int64_t C, int K, int tiles_per_block,
                    int channel_block0) {
  extern __shared__ __align__(16) unsigned char smem[];
  bf16* fs = reinterpret_cast<bf16*>(smem);
  bf16* zs = fs + kChannels * two_row_stride<P>();  // z at time t0 − P + r
  constexpr int signal_row = row_stride<kBackwardRows<P>, P>();
  bf16* gs = zs + kChannels * signal_row;  // g = dy·q at time t0 + r
  bf16* s_out = gs + kChannels * signal_row;
  bf16* dz_out = s_out + kTile * kChannels;
  // kAsync: the tile's dy, v and k, [t][c], for the epilogue.
  static_assert(!kAsync || W == 8, "16-byte copies");
  bf16* dy_in = dz_out + kTile * kChannels;
  bf16* v_in = dy_in + kTile * kChannels;
  bf16* k_in = v_in + kTile * kChannels;
  const int64_t c0 = int64_t(channel_block0 + blockIdx.y) * kChannels, base = int64_t(blockIdx.z) * L * C;
  const int warp = threadIdx.x / 32, gid = threadIdx.x % 32 / 4, tid = threadIdx.x % 4;
  stage_filter<P, true>(fs, h, D, c0, C, K);
  // A 16-tap filter's gradient on the CUDA cores (correlate_16), a 128-tap one's in the pass that
  // computes s and dz (toeplitz_adjoint_hankel_product: g staged time-reversed), the others' by
  // Hankel MMAs.
  constexpr bool correlate = P == 16, fused_hankel = P == kTile;
  constexpr int reversed_g = fused_hankel ? P : 0;  // stage_signal's and put's kReversedP for g
  constexpr bool swapped = fused_hankel && swapped_pairs;  // z's and g's words (conv_layout.h)
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
  stage_signal<W, kBackwardRows<P>, 1, 0, swapped>(zs, signal_row, k, v, base, first * kTile - P, 0, P, c0, L, C);
  stage_signal<W, kBackwardRows<P>, 1, reversed_g, swapped>(gs, signal_row, q, dy, base, first * kTile, 0, P,
                                                           c0, L, C);
  // A tile's kTile new rows of z and g, rows [P, P + kTile) of each, fetched whole into registers
  // (with kPrefetch while the tile before is computed).
  constexpr int tile_items = kTile / 2 * (kChannels / W);
  static_assert(tile_items % kThreads == 0, "every thread fetches the same number of items");
  SignalItems<W, kBackwardRows<P>, tile_items / kThreads> z, g;
  // Per tile, global addresses are a block-uniform pointer to the tile's first element plus a
  // thread's 32-bit offset (t·C + c: applies() bounds C), and bounds are 32-bit tests against the
  // rows left in the sequence and the block's channels. (In 64-bit arithmetic, with 64-bit bounds,
  // they cost the 128-tap kernel 5.8 M of its 238 M warp instructions at B=8 L=8K D=1024, and the
  // short convolution's backward pass ran 208 -> 193 us without them on an H100.)
  // At 128 taps, within the tile loop, they come from fresh_* reads of the thread's and block's
  // indices: held across the loop, they spilled (nvcc 13: 16 B, reloaded every tile) and Hyena-MR's
  // backward pass ran 546 -> 582 us; fresh, 0 B. At 16 taps, which has registers to spare, the
  // ungated pass measured 196 -> 215 us with them, so there they are read once.
  constexpr bool fresh = fused_hankel;
  auto thread = [] { return fresh ? fresh_thread() : int(threadIdx.x); };
  auto block_c0 = [&] { return int64_t(channel_block0 + (fresh ? fresh_block_y() : int(blockIdx.y))) * kChannels; };
  auto origin = [&](int64_t t) { return (fresh ? int64_t(fresh_block_z()) * L * C : base) + t * C + block_c0(); };
  auto cols_left = [&] { return int(::min(C - block_c0(), int64_t(kChannels))); };
  const int C32 = int(C);
  auto rows_left = [&](int64_t t) { return int(::max(::min(L - t, int64_t(kTile)), int64_t(-1))); };
  auto fetch_tile = [&](int64_t tile) {
    const int64_t tz = tile * kTile, tg = tz + P;
    z.fetch_rows(k, v, origin(tz), rows_left(tz), cols_left(), thread(), C32);
    g.fetch_rows(q, dy, origin(tg), rows_left(tg), cols_left(), thread(), C32);
  };
  // The async copy's and the epilogue's items of the tile at t0: W channels at time t0 + t, those
  // inside the sequence and below C, each as (t, c, the tile's first element, its offset from it).
  constexpr int groups = kChannels / W;
  static_assert(kTile * groups % kThreads == 0, "every thread copies and stores the same number of items");
  auto for_tile_items = [&](int64_t t0, auto&& body) {
    const int64_t at0 = origin(t0);
    const int rows = rows_left(t0), cols = cols_left(), lane_thread = thread();
#pragma unroll
    for (int n = 0; n < kTile * groups / kThreads; ++n) {
      const int item = lane_thread + n * kThreads, t = item / groups, c = W * (item % groups);
      if (t >= rows || c >= cols) continue;
      body(t, c, at0, t * C32 + c);
    }
  };
  if constexpr (kPrefetch) fetch_tile(first);
  for (int64_t tile = first; tile < last; ++tile) {
    const int64_t t0 = tile * kTile, next = tile + 1;
    __syncthreads();  // the previous tile's readers are done
    if constexpr (kAsync) {
      for_tile_items(t0, [&](int t, int c, int64_t at0, int offset) {
        const int at = kChannels * t + c;
        if (q) copy_async_16(dy_in + at, dy + at0 + offset);
        if (k) {
          copy_async_16(v_in + at, v + at0 + offset);
          copy_async_16(k_in + at, k + at0 + offset);
        }
      });
    }
    if constexpr (!kPrefetch) fetch_tile(tile);
    z.template put<0, swapped>(zs, signal_row, k != nullptr, P, tile_items, thread());
    g.template put<reversed_g, swapped>(gs, signal_row, q != nullptr, P, tile_items, thread());
    __syncthreads();
    if (kPrefetch && next < last) fetch_tile(next);
    // The warp's channels two at a time, so that s and dz are staged as bf16 pairs.
#pragma unroll
    for (int j = 0; j < kPerWarp / 2; ++j) {
      const int c = kPerWarp * warp + 2 * j;  // and c + 1
      const bf16* hc = fs + c * two_row_stride<P>() + 16;
      const bf16* zc = zs + c * signal_row;
      const bf16* gc = gs + c * signal_row;
      if constexpr (fused_hankel) {
        float s[2][4] = {}, dz[2][4] = {};
        toeplitz_adjoint_hankel_product<P>(s[0], dz[0], dh_acc[2 * j], hc, zc, gc, gid, tid);
        toeplitz_adjoint_hankel_product<P>(s[1], dz[1], dh_acc[2 * j + 1], hc + two_row_stride<P>(),
                                           zc + signal_row, gc + signal_row, gid, tid);
        stage_pairs(s_out, pack_pairs(s[0], s[1]), c / 2, gid, tid);
        stage_pairs(dz_out, pack_pairs(dz[0], dz[1]), c / 2, gid, tid, 0, true);
      } else {
        float s[2][1][4] = {}, dz[2][1][4] = {};
        toeplitz_product<P, false, 1, true>(s[0], hc, zc, gid, tid);
        toeplitz_product<P, false, 1, true>(s[1], hc + two_row_stride<P>(), zc + signal_row, gid, tid);
        stage_pairs(s_out, pack_pairs(s[0][0], s[1][0]), c / 2, gid, tid);
        toeplitz_product<P, true, 1, true>(dz[0], hc, gc, gid, tid);
        toeplitz_product<P, true, 1, true>(dz[1], hc + two_row_stride<P>(), gc + signal_row, gid, tid);
        stage_pairs(dz_out, pack_pairs(dz[0][0], dz[1][0]), c / 2, gid, tid);
        if constexpr (!correlate) {
#pragma unroll
          for (int m = 0; m < 2; ++m)
            hankel_product<P>(dh_acc[2 * j + m], gc + m * signal_row, zc + m * signal_row, gid, tid);
        }
      }
    }
    if constexpr (correlate) {
      const int c = kPerWarp * warp + threadIdx.x % 32 / 8;
      correlate_16(dh_taps, gs + c * signal_row, zs + c * signal_row, threadIdx.x % 8);
    }
    if constexpr (kAsync) copy_async_wait();
    __syncthreads();
    if (next < last) {  // rows [kTile, kTile + P) to [0, P): a shift by row_at(kTile), kTile a multiple of 128
      constexpr int from = row_at<kBackwardRows<P>>(kTile) / 2, words = row_at<kBackwardRows<P>>(P) / 2;
      constexpr int row = signal_row / 2;
      static_assert(signal_row % 2 == 0, "rows of whole words");
      uint32_t* zw = reinterpret_cast<uint32_t*>(zs);
      uint32_t* gw = reinterpret_cast<uint32_t*>(gs);
      auto move = [&](int i) {
        zw[i] = zw[i + from];
        if constexpr (reversed_g > 0) gw[i + from] = gw[i];  // reversed, g's halo moves up
        else gw[i] = gw[i + from];
      };
      // Not unrolled: unrolled (2 or 4 words a step, when each word's address took a division), the
      // 128-tap gated kernel spilled 16-24 bytes instead of 8-16 and ran 3 % slower.
      if constexpr (kThreads % words == 0 && kChannels * words % kThreads == 0) {
        // A thread's words are one column of its rows, kThreads / words rows apart: one address
        // and a constant step, not a division per word (14 -> 8 instructions a word at 128 taps).
        constexpr int step = kThreads / words * row;
        const int i0 = thread() / words * row + thread() % words;
#pragma unroll 1
        for (int i = i0; i < i0 + kChannels * words / kThreads * step; i += step) move(i);
      } else {
#pragma unroll 1
        for (int item = threadIdx.x; item < kChannels * words; item += kThreads) move(item / words * row + item % words);
      }
    }
    for_tile_items(t0, [&](int t, int c, int64_t at0, int offset) {
      if constexpr (W == 8) {
        const uint4 dz = result_words(dz_out, t, c);
        const int at = kChannels * t + c;
        if (q)
          store_words(dq + at0 + offset,
                      mul_bf16x8(result_words(s_out, t, c), fetch<8>(kAsync ? dy_in + at : dy + at0 + offset)));
        if (k) {
          store_words(dk + at0 + offset, mul_bf16x8(fetch<8>(kAsync ? v_in + at : v + at0 + offset), dz));
          store_words(dv + at0 + offset, mul_bf16x8(fetch<8>(kAsync ? k_in + at : k + at0 + offset), dz));
        } else {
          store_words(dv + at0 + offset, dz);
        }
      } else {
        const int64_t i = at0 + offset;
        const float dz = result_at(dz_out, t, c);
        if (q) dq[i] = __float2bfloat16(__bfloat162float(dy[i]) * result_at(s_out, t, c));
        if (k) {
          dk[i] = __float2bfloat16(__bfloat162float(v[i]) * dz);
          dv[i] = __float2bfloat16(__bfloat162float(k[i]) * dz);
        } else {
          dv[i] = __float2bfloat16(dz);
        }
      }
    });
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
    // Accumulator C[b][a] holds dh[16 a + b] (fused_hankel: columns reversed); dD = Σ_t g[t]·z[t] is its tap 0.
#pragma unroll
    for (int m = 0; m < kPerWarp; ++m) {
      const int64_t channel = c0 + kPerWarp * warp + m;
      if (channel >= C) continue;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int index = accumulator_index(e, gid, tid);
        const int tap = fused_hankel ? fused_hankel_tap<P>(index) : index;
        if (tap < K) atomicAdd(dh + channel * K + tap, dh_acc[m][e]);
        if (dD && tap == 0) atomicAdd(dD + channel, dh_acc[m][e]);
      }
    }
  }
}

// An H100's or H200's shared memory per multiprocessor and what the driver reserves per block: the
// resident blocks that the times in BENCHMARKS.md were measured at must still fit.
constexpr size_t kSm90SharedBytes = 233472, kReservedBytes = 1024;
constexpr bool fits_sm90(size_t bytes, int blocks) { return blocks * (bytes + kReservedBytes) <= kSm90SharedBytes; }

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

template <int P, int W>
void forward(const GatedConvArgs& a, void* y) {
  constexpr int S = kForwardTiles<P>;
  auto kernel = forward_kernel<P, W, S, kForwardBlocks<P>>;
  constexpr size_t smem = forward_bytes<P, S>();
  static_assert(fits_sm90(smem, kForwardBlocks<P>), "the forward pass's blocks a multiprocessor fit on sm_90");
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
  constexpr bool async = kAsyncInputs<W>;
  auto kernel = a.q ? backward_kernel<P, W, async && P == 128, async> : backward_kernel<P, W, true, false>;
  static_assert(fits_sm90(backward_bytes<P>(async), 2), "two backward blocks a multiprocessor fit on sm_90");
  const size_t smem = backward_bytes<P>(a.q && async);
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), "shared memory");
  // Each block walks its tiles in order: the filter gradient leaves registers once per block.
  int resident = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, kThreads, smem), "occupancy");
  const int64_t wave = a.wave_blocks > 0 ? a.wave_blocks : int64_t(std::max(resident, 1)) * multiprocessors();
  const int64_t channel_blocks = (a.channels + kChannels - 1) / kChannels, tiles = (a.length + kTile - 1) / kTile;
  for (const launch::BackwardLaunch& l : launch::backward_launches(a.batch, channel_blocks, tiles, wave, a.time_blocks)) {
    const int64_t per_block = l.tiles_per_block;
    const dim3 grid(unsigned((tiles + per_block - 1) / per_block), unsigned(l.groups), unsigned(a.batch));
    kernel<<<grid, kThreads, smem, static_cast<cudaStream_t>(a.stream)>>>(
        static_cast<const bf16*>(a.q), static_cast<const bf16*>(a.k), static_cast<const bf16*>(a.v),
        static_cast<const float*>(a.h), static_cast<const float*>(a.D), static_cast<const bf16*>(dy),
        static_cast<bf16*>(dq), static_cast<bf16*>(dk), static_cast<bf16*>(dv), static_cast<float*>(dh),
        static_cast<float*>(dD), a.length, a.channels, int(a.taps), int(per_block), int(l.first_group));
    check(cudaGetLastError(), "tensor-core backward launch");
  }
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
// The backward pass addresses a tile's elements as 32-bit offsets from its first: kTile rows of C.
constexpr int64_t kMaxChannels = INT32_MAX / kTile;

bool applies(const GatedConvArgs& a) {
  if (a.dtype != DType::BFloat16 || a.taps > kMaxTaps || (a.length + kTile - 1) / kTile > 65535 ||
      a.channels > kMaxChannels)
    return false;
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
