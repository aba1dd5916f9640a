// The tensor-core products of the convolution (kernels/gated_conv_mma.cu) on its staged rows: the
// Toeplitz products of the forward pass and of s and dz in the backward pass, and the filter
// gradient's Hankel product (or, for 16 taps, its correlation on the CUDA cores). Why these
// products compute the convolution is in gated_conv_mma.cu's opening comment. For that file only.
#pragma once

#include "kernels/conv_staging.cuh"

namespace starsynth::kernels::gated_conv_mma {

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

// Rows i and i + 8 of k-slice s of A[i][r] = h⁺[P + i − r] (the causal convolution) or, kAdjoint,
// h⁺[r − i] (the correlation of its backward pass): the register pair of an A fragment in row
// `row` (gid or gid + 8); hc points at h⁺[0]. Either way A[i + 8][r + 8] = A[i][r], so the
// fragment of slice s is {lo(s), hi(s), hi(s + 1), lo(s)} with lo in row gid and hi in row gid + 8:
// two pairs to fetch per slice, not three.
// kTwoRows: hc points at h⁺[0] of the row holding the lane's pairs as aligned words (x even for
// the even row; the lane's x all have one parity, that of `row` or of row + 1).
// kSwapped: the pair with its halves the other way round (swapped_pairs), for the causal product
// the aligned word as loaded.
template <int P, bool kAdjoint, bool kTwoRows = false, bool kSwapped = false>
__device__ __forceinline__ uint32_t toeplitz_pair(const bf16* hc, int s, int row, int tid) {
  static_assert(!kSwapped || (kTwoRows && !kAdjoint), "swapped pairs only where they cost nothing");
  const int r = 16 * s + 2 * tid;
  if constexpr (kTwoRows) {
    // (h⁺[x], h⁺[x + 1]) with x = r − row, or (h⁺[y + 1], h⁺[y]) with y = P + row − r − 1: halves swapped.
    if constexpr (kAdjoint) return pair_at(hc + r - row);
    else if constexpr (kSwapped) return pair_at(hc + P + row - r - 1);
    else return __byte_perm(pair_at(hc + P + row - r - 1), 0, 0x1032);
  } else {
    auto at = [hc](int i, int r) { return kAdjoint ? hc[r - i] : hc[P + i - r]; };
    return pack(at(row, r), at(row, r + 1));
  }
}

// The A fragments of a Toeplitz product's slices, walked in order (slice(0), slice(1), ...): each
// fetches its lo and the next slice's hi, and carries that hi over. kTwoRows: hc points at h⁺[0] of
// the even of two filter rows (two_row_stride). kSwapped: as toeplitz_pair.
template <int P, bool kAdjoint, bool kTwoRows, bool kSwapped = false>
struct ToeplitzSlices {
  const bf16* hc;
  int gid, tid;
  uint32_t hi;

  __device__ __forceinline__ ToeplitzSlices(const bf16* h, int gid_, int tid_) : hc(h), gid(gid_), tid(tid_) {
    if constexpr (kTwoRows) {
      // The lane's pairs start at x of gid's parity (adjoint) or of gid + 1's (causal).
      const bool odd = (gid & 1) != (kAdjoint ? 0 : 1);
      if (odd) hc += odd_row<P>() - 1;
    }
    hi = toeplitz_pair<P, kAdjoint, kTwoRows, kSwapped>(hc, 0, gid + 8, tid);
  }

  __device__ __forceinline__ void slice(int s, uint32_t (&a)[4]) {
    const uint32_t lo = toeplitz_pair<P, kAdjoint, kTwoRows, kSwapped>(hc, s, gid, tid);
    const uint32_t next = toeplitz_pair<P, kAdjoint, kTwoRows, kSwapped>(hc, s + 1, gid + 8, tid);
    a[0] = lo, a[1] = hi, a[2] = next, a[3] = lo;
    hi = next;
  }
};

// Toeplitz products of channel c over S consecutive tiles of the staged signal, sharing each A
// fragment: C_u[i][n] = Σ_r A[i][r]·w[kTile u + 16 n + r].
// kTwoRows: as ToeplitzSlices. kPadded: w is laid
// out padded(), where B[r'][n] = w[16 n + r'] for r' = 16 s + 2 tid sits 24 (gid + s) + 2 tid
// elements in, so a lane's addresses are one register plus constants.
template <int P, bool kAdjoint, int S, bool kTwoRows = false, bool kPadded = false>
__device__ __forceinline__ void toeplitz_product(float (&d)[S][4], const bf16* hc, const bf16* w, int gid, int tid) {
  ToeplitzSlices<P, kAdjoint, kTwoRows> slices(hc, gid, tid);
#pragma unroll
  for (int s = 0; s <= P / 16; ++s) {
    uint32_t a[4];
    slices.slice(s, a);
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
  }
}

// The Hankel A of hankel_product's slice at time t = 16 slice + 2 tid: A[b][t'] = g[t' + b].
__device__ __forceinline__ void hankel_a(uint32_t (&a)[4], const bf16* gc, int t, int gid) {
  a[0] = pack(gc[skew(t + gid)], gc[skew(t + gid + 1)]);
  a[1] = pack(gc[skew(t + gid + 8)], gc[skew(t + gid + 9)]);
  a[2] = a[1];  // A[b][t + 8] = A[b + 8][t]
  a[3] = pack(gc[skew(t + gid + 16)], gc[skew(t + gid + 17)]);
}

// dh[16 a + b] += Σ_t g[t + b]·z[t − 16 a] over a tile's times t: an MMA with a Hankel A and
// shifted columns of B, whose accumulator C[b][a] is dh itself (gc, zc: one channel's staged g and z).
template <int P>
__device__ __forceinline__ void hankel_product(float (&dh)[4], const bf16* gc, const bf16* zc, int gid, int tid) {
#pragma unroll
  for (int slice = 0; slice < kTile / 16; ++slice) {
    const int t = 16 * slice + 2 * tid;
    uint32_t a[4];
    hankel_a(a, gc, t, gid);
    const bool column = gid < P / 16;  // columns a past the padded filter stay 0
    const uint32_t b0 = column ? pair_at(zc + skew(P + t - 16 * gid)) : 0u;
    const uint32_t b1 = column ? pair_at(zc + skew(P + t + 8 - 16 * gid)) : 0u;
    mma_16x8x16(dh, a, b0, b1);
  }
}

// The Hankel A fragments (A[b][t'] = g[t' + b]) of slices j = 0, 1, ... of a tile, from g staged
// time-reversed in swizzled rows, without 16-bit gathers: a lane's fragment of slice j holds the
// pairs (g[x + 1], g[x]) (swapped_pairs) for x = 16 j + 2 tid + gid + {0, 8, 16}, which for even gid
// are g_rev's aligned words with their halves swapped, and for odd gid straddle two words. So each
// lane loads the aligned word m holding g's rows x_m and x_m + 1 (hankel_word_row: its own pair's
// word for even gid) and a partner word (hankel_partner_row): for odd lanes the next pair's, whose
// low half (g[x_m + 2]) completes the pair with the own word's high half (g[x_m + 1]); even lanes
// load their own word again. Two aligned loads and a permute a pair, each load one wavefront. (The
// partner word was a shuffle from lane + 4 before, 600 -> 547 us with the reversed, swizzled rows:
// a shuffle behind a select behind the load, a longer chain to the MMA than a second load. The
// second load measured 547 -> 537 us for Hyena-MR's backward pass at B=8 on an H100, and 541 -> 526
// with the backward pass's 32-bit tile offsets.)
template <int P>
struct ReversedHankelSlices {
  // Word 0 (element u of g_rev) of the lane's own and partner words; word m is at
  // hankel_word_offset(upper, m) from it.
  const bf16* own;
  const bf16* partner;
  bool own_upper, partner_upper;
  uint32_t selector;
  uint32_t current;  // the pair at x_m (m = 2 j)

  __device__ __forceinline__ ReversedHankelSlices(const bf16* g_rev, int gid, int tid)
      : own(g_rev + reversed_row<P>(hankel_word_row(gid, tid, 0) + 1)),
        partner(g_rev + reversed_row<P>(hankel_partner_row(gid, tid, 0) + 1)),
        own_upper(reversed_row<P>(hankel_word_row(gid, tid, 0) + 1) >> 3 == hankel_upper_run<P>()),
        partner_upper(reversed_row<P>(hankel_partner_row(gid, tid, 0) + 1) >> 3 == hankel_upper_run<P>()),
        selector(hankel_selector(gid)) {
    current = pair(0);
  }
  __device__ __forceinline__ static uint32_t word(const bf16* first, bool upper, int m) {
    return pair_at(first + (upper ? hankel_word_offset<P>(true, m) : hankel_word_offset<P>(false, m)));
  }
  // (g[x + 1], g[x]) for x = x_m + (gid & 1).
  __device__ __forceinline__ uint32_t pair(int m) const {
    return __byte_perm(word(own, own_upper, m), word(partner, partner_upper, m), selector);
  }
  // Slice j's fragment, called for j = 0, 1, ... in order: pairs 2j, 2j + 1 and 2j + 2.
  __device__ __forceinline__ void slice(int j, uint32_t (&a)[4]) {
    const uint32_t middle = pair(2 * j + 1), last = pair(2 * j + 2);
    a[0] = current, a[1] = middle, a[2] = middle, a[3] = last;  // A[b][t + 8] = A[b + 8][t]
    current = last;
  }
};

// The 128-tap backward pass's three products in one pass over the slices (P = kTile): s, the causal
// product over z; dz, the adjoint product over g, as the causal product over g staged time-reversed
// (reversed_row), so that both take the same A fragments, one load of the filter a slice instead of
// two (shared loads 417 -> 341 a warp and tile); and the filter gradient's Hankel product, whose B
// is the s product's B of the same z (one load of z instead of two: Hyena-MR backward 664 -> 608 us
// on an H100). Hankel slice j's B, z at P + 16 j + 2 tid - 16 a in column a, is the s product's B of
// k-slice j + 1, z at 16 n + 16 (j + 1) + 2 tid in column n, when n = P/16 - 1 - a: the accumulator's
// column n holds taps 16 (P/16 - 1 - n) + b (fused_hankel_tap). Its A is ReversedHankelSlices.
// zc, grc: one channel's staged z and reversed g, in swizzled rows.
template <int P>
__device__ __forceinline__ void toeplitz_adjoint_hankel_product(float (&s)[4], float (&dz)[4], float (&dh)[4],
                                                                const bf16* hc, const bf16* zc, const bf16* grc,
                                                                int gid, int tid) {
  static_assert(P == kTile, "the Hankel product's slices are the Toeplitz product's k-slices 1 to P/16");
  ToeplitzSlices<P, false, true, swapped_pairs> slices(hc, gid, tid);
  ReversedHankelSlices<P> hankel(grc, gid, tid);
  const bf16* zb = zc + 16 * gid + 2 * tid;  // B[r][n] = w[16 n + 16 k + r], n = gid, r = 2 tid
  const bf16* gb = grc + 16 * gid + 2 * tid;
#pragma unroll
  for (int k = 0; k <= P / 16; ++k) {
    uint32_t a[4];
    slices.slice(k, a);
    const int flip = swizzle_flip(gid + k);  // swizzled(r) = r + flip, swizzled(r + 8) = r + 8 − flip
    const uint32_t b0 = pair_at(zb + 16 * k + flip), b1 = pair_at(zb + 16 * k + 8 - flip);
    mma_16x8x16(s, a, b0, b1);
    mma_16x8x16(dz, a, pair_at(gb + 16 * k + flip), pair_at(gb + 16 * k + 8 - flip));
    if (k >= 1) {  // hankel_product's slice k - 1
      uint32_t g[4];
      hankel.slice(k - 1, g);
      mma_16x8x16(dh, g, b0, b1);
    }
  }
}

// The tap that toeplitz_adjoint_hankel_product's dh accumulator element at `index` (accumulator_index: 16
// column + row) holds.
template <int P> __host__ __device__ constexpr int fused_hankel_tap(int index) {
  return 16 * (P / 16 - 1 - index / 16) + index % 16;
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

}  // namespace starsynth::kernels::gated_conv_mma
