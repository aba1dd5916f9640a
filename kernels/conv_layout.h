// The shared-memory layouts of the tensor-core convolution (kernels/gated_conv_mma.cu): where a
// block stages its signal rows, its filter rows and its results. They decide the bank pattern of
// every shared access the kernels make, so they live apart from the CUDA code, where a CPU test
// (tests/test_conv_layout.cpp) checks those patterns on every CI run.
#pragma once

#if defined(__CUDACC__)
#define STARSYNTH_LAYOUT_FN __host__ __device__ constexpr
#else
#define STARSYNTH_LAYOUT_FN constexpr
#endif

namespace starsynth::kernels::gated_conv_mma::layout {

constexpr int kChannels = 32;  // per block
constexpr int kTile = 128;     // time steps per block: 8 blocks of 16, one MMA's columns

// Staged signal rows (time contiguous) hold element i at skew(i), so that a warp's B fragment (eight
// time blocks 16 apart) meets distinct banks; the row stride is odd in words so that the
// transposing stores do too. Skewed by 8 elements every 64, the fragments that straddle three
// 64-element blocks are 2-way conflicted (at 128 taps 67 % more wavefronts than needed for B). The
// 128-tap backward pass, bound by its shared loads, swizzles its rows instead (below). The forward
// pass from 32 taps stages its rows padded: 8 elements of padding after every 16 steps, so that a
// fragment's eight blocks lie 12 words apart (distinct banks from any start) and a lane's addresses
// advance by a constant 24 elements a slice (immediate offsets). That measured 254 -> 247 us for
// Hyena-MR's forward pass on an H100, where an XOR swizzle (conflict-free too, but with addresses to
// compute) had given 262 -> 249 on an H200. Both keep pairs together, and a tile's layout is the
// first tile's shifted: skew(128 u + x) = skew(128 u) + skew(x), likewise padded.
STARSYNTH_LAYOUT_FN int skew(int i) { return i + 8 * (i / 64); }
STARSYNTH_LAYOUT_FN int padded(int i) { return i + 8 * (i / 16); }
// The 128-tap backward pass's rows: element i at i ^ 8 (i / 64 % 2), the two 8-element halves of
// every 16 swapped in odd 64-element blocks. Conflict-free like the padding, with no padding (so
// its halo moves 64 words a row, not 96) and no spill-prone lane constants (padded rows there ran
// 603 -> 688 us), at the price of a few address operations a slice.
STARSYNTH_LAYOUT_FN int swizzled(int i) { return i ^ (i >> 6 & 1) << 3; }
// What swizzled() does to a B fragment's rows: for r = 16 n + x with x < 8 (n the fragment's
// block, x = 2 tid), swizzled(r) = r + swizzle_flip(n) and swizzled(r + 8) = r + 8 − swizzle_flip(n)
// (bit 6 of r is bit 2 of n; bit 3 is clear). So a lane's B addresses are one pointer plus
// constants and an 8-element flip a slice, not a swizzle computed for every load.
STARSYNTH_LAYOUT_FN int swizzle_flip(int n) { return 2 * (n & 4); }
// The three layouts of staged rows, as SignalItems and the tests name them.
enum RowLayout : int { kSkewedRows = 0, kPaddedRows = 1, kSwizzledRows = 2 };
template <int kRows> STARSYNTH_LAYOUT_FN int row_at(int i) {
  return kRows == kPaddedRows ? padded(i) : kRows == kSwizzledRows ? swizzled(i) : skew(i);
}
// S tiles of kTile steps side by side (the forward pass takes two from 32 taps: half the halo per
// output, and each A fragment serves both).
template <int P, int S = 1> STARSYNTH_LAYOUT_FN int signal_rows() { return P + S * kTile; }
template <int P, int S = 1> STARSYNTH_LAYOUT_FN int signal_stride() { return skew(signal_rows<P, S>()) + 2; }
// The padded stride drops most of the last block's padding (the last step sits at padded(rows) − 9)
// and stays odd in words.
template <int P, int S = 1> STARSYNTH_LAYOUT_FN int padded_stride() { return padded(signal_rows<P, S>()) - 6; }
// Swizzled rows (one tile) need only 2 elements past the last step to be odd in words.
template <int P> STARSYNTH_LAYOUT_FN int swizzled_stride() { return signal_rows<P>() + 2; }
// The row stride of a layout, for S tiles of a P-tap filter.
template <int kRows, int P, int S = 1> STARSYNTH_LAYOUT_FN int row_stride() {
  static_assert(kRows != kSwizzledRows || S == 1, "swizzled rows hold one tile");
  return kRows == kPaddedRows ? padded_stride<P, S>() : kRows == kSwizzledRows ? swizzled_stride<P>() : signal_stride<P, S>();
}
template <int P> STARSYNTH_LAYOUT_FN int filter_stride() { return P + 32; }  // h⁺[m] at m + 16, m ∈ [−16, P + 16)
// The backward pass, which reads the filter's A fragments for every tile, stages each channel's
// filter twice: h⁺[m] at m + 16 of an even row and at m + 15 of an odd row odd_row<P>() elements later,
// so that every pair (h⁺[x], h⁺[x + 1]) is one aligned 32-bit load (even x: the even row) instead
// of two 16-bit ones. The odd row starts 16 to 24 words (mod 32) after the even one, so that the
// words a warp reads of the two meet distinct banks.
template <int P> STARSYNTH_LAYOUT_FN int odd_row() {
  return (P + 32) / 2 % 32 >= 8 && (P + 32) / 2 % 32 <= 24 ? P + 32 : P + 64;
}
template <int P> STARSYNTH_LAYOUT_FN int two_row_stride() { return 2 * odd_row<P>(); }
// The backward pass at 128 taps stages g time-reversed (kernels/gated_conv_mma.cu says why): g's
// row r, time t0 + r for r in [0, kTile + P), at row reversed_row<P>(r). A pair of rows (r, r + 1),
// r even, is then the aligned word at reversed_row(r + 1); the next tile's halo, g's rows [kTile,
// kTile + P), is rows [0, P) reversed, and moves up to [kTile, kTile + P); its s and dz
// accumulators' index i is time kTile - 1 - i.
template <int P> STARSYNTH_LAYOUT_FN int reversed_row(int r) { return kTile + P - 1 - r; }
// swapped_pairs: at 128 taps the backward pass stores every word of z and of g with its halves
// the other way round: z's rows (r, r + 1), r even, as (r + 1, r), and g's reversed word at
// reversed_row(r + 1) as (r, r + 1), the earlier time in the low half. An MMA's sum over k is the
// same when A and B swap the two elements of every k-pair alike, so the filter's causal A pairs,
// (h⁺[y + 1], h⁺[y]), are its aligned words as loaded, without a permute each.
constexpr bool swapped_pairs = true;
// Its Hankel A (ReversedHankelSlices in kernels/conv_products.cuh) comes without 16-bit gathers:
// lane (gid, tid) loads, for m = 0, 1, ..., the aligned word of g's rows hankel_word_row(gid, tid,
// m) and the one after (the pair its fragment needs, for even gid), and the word of rows
// hankel_partner_row(gid, tid, m) and the one after: for odd gid the next pair's, whose low half
// completes its pair; for even gid its own again. hankel_selector: the __byte_perm selector that
// takes (own word, partner word) to the lane's pair, swapped as z's B pairs are (swapped_pairs):
// g[x + 1] in the low half. Even lanes swap their word's halves, odd lanes take the partner's low
// half and their own high half.
STARSYNTH_LAYOUT_FN int hankel_word_row(int gid, int tid, int m) { return 2 * tid + (gid & ~1) + 8 * m; }
STARSYNTH_LAYOUT_FN int hankel_partner_row(int gid, int tid, int m) { return hankel_word_row(gid, tid, m) + 2 * (gid & 1); }
STARSYNTH_LAYOUT_FN unsigned hankel_selector(int gid) { return gid & 1 ? 0x3254u : 0x1032u; }
// Where those words sit: word m of a lane whose word 0 is at element u = reversed_row(x_0 + 1) of
// g_rev is at swizzled(u − 8 m) = u − 8 m + swizzle_shift((u >> 3) − m), the swizzle depending on
// bits 0 and 3 of (u − 8 m) >> 3 = (u >> 3) − m. The lanes' u, own and partner words alike, lie in
// two runs of 8 (x_0 ∈ [0, 14]), so a lane's addresses are two pointers plus, a word, one of two
// constants (hankel_word_offset): not a swizzle computed per load.
STARSYNTH_LAYOUT_FN int swizzle_shift(int block8) { return block8 >> 3 & 1 ? (block8 & 1 ? -8 : 8) : 0; }
template <int P> STARSYNTH_LAYOUT_FN int hankel_upper_run() { return reversed_row<P>(1) >> 3; }
// upper: whether the lane's u >> 3 is hankel_upper_run (else one less).
template <int P> STARSYNTH_LAYOUT_FN int hankel_word_offset(bool upper, int m) {
  return -8 * m + swizzle_shift(hankel_upper_run<P>() - (upper ? 0 : 1) - m);
}
// Results (the convolution, and the backward pass's s and dz) are staged as bf16, as the composite
// rounds them too, [time][channel] in rows of 16 words: word p of row t, the channel pair (2p, 2p + 1),
// sits at p ^ pair_swizzle(t), so that a warp's 32 stores of one pair (times gid + 32 tid, from the
// MMA accumulators) meet 32 distinct banks, and a reader takes eight channels with one 16-byte
// load (the swizzle keeps groups of four words together, permuted within).
STARSYNTH_LAYOUT_FN int pair_swizzle(int t) { return (t >> 1 & 3) | (t >> 3 & 12); }
// The word of the staged results that holds channels 2p and 2p + 1 at time t, and the 16-byte slot
// that holds channels 8j to 8j + 7 (its four words permuted by pair_swizzle(t) & 3).
STARSYNTH_LAYOUT_FN int result_word(int t, int p) { return kChannels / 2 * t + (p ^ pair_swizzle(t)); }
STARSYNTH_LAYOUT_FN int result_slot(int t, int j) { return kChannels / 8 * t + (j ^ pair_swizzle(t) >> 2); }
// Element e of a lane's m16n8 MMA accumulator, C[i][n] with i = gid (+ 8 for e ≥ 2) and n = 2 tid
// (+ 1 for odd e), as 16 n + i: the time within its tile of a Toeplitz product's output, the tap of
// the filter gradient's Hankel product.
STARSYNTH_LAYOUT_FN int accumulator_index(int e, int gid, int tid) {
  return 32 * tid + gid + (e & 1 ? 16 : 0) + (e & 2 ? 8 : 0);
}

}  // namespace starsynth::kernels::gated_conv_mma::layout

#undef STARSYNTH_LAYOUT_FN
