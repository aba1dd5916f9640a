// The shared-memory layouts of the tensor-core convolution (kernels/conv_layout.h), checked on the
// CPU from the lane addresses its kernels compute (kernels/gated_conv_mma.cu): what each layout
// must give (aligned pairs, results that read back in order) and the bank pattern it was chosen
// for. Shared memory has 32 banks of 4-byte words; one warp access takes as many wavefronts as the
// most distinct words any bank is asked for, counted per phase (all 32 lanes for 32-bit accesses,
// 8 lanes at a time for 16-byte ones).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "kernels/conv_layout.h"

namespace {

using namespace starsynth::kernels::gated_conv_mma::layout;

// lane_words[lane]: the words lane `lane` accesses; lanes_per_phase: 32 for 32-bit accesses, 8 for
// 16-byte ones.
int wavefronts(const std::vector<std::vector<int>>& lane_words, int lanes_per_phase = 32) {
  int total = 0;
  for (size_t first = 0; first < lane_words.size(); first += lanes_per_phase) {
    std::map<int, std::set<int>> by_bank;
    for (size_t lane = first; lane < std::min(lane_words.size(), first + lanes_per_phase); ++lane)
      for (int w : lane_words[lane]) by_bank[w % 32].insert(w);
    int most = 0;
    for (const auto& [bank, words] : by_bank) most = std::max(most, int(words.size()));
    total += most;
  }
  return total;
}

// The layouts of staged signal rows, by name for the tests that check several.
enum class Rows { Skewed, Padded, Swizzled };
int at(Rows rows, int i) {
  return rows == Rows::Padded ? row_at<kPaddedRows>(i) : rows == Rows::Swizzled ? row_at<kSwizzledRows>(i) : row_at<kSkewedRows>(i);
}

// The B fragment of toeplitz_product: lane (gid, tid) reads the pairs at 16 (gid + s) + 2 tid and
// 8 later, of tile u, in one row of staged signal.
int b_fragment_wavefronts(Rows rows, int P, int S) {
  int total = 0;
  for (int u = 0; u < S; ++u)
    for (int s = 0; s <= P / 16; ++s)
      for (int half : {0, 8}) {
        std::vector<std::vector<int>> lanes;
        for (int gid = 0; gid < 8; ++gid)
          for (int tid = 0; tid < 4; ++tid) lanes.push_back({at(rows, kTile * u + 16 * (gid + s) + 2 * tid + half) / 2});
        total += wavefronts(lanes);
      }
  return total;
}

TEST(ConvLayout, PaddedRowsGiveEveryBFragmentOneWavefrontAtConstantSteps) {
  for (int P : {16, 32, 64, 128})
    for (int S : {1, 2}) {
      SCOPED_TRACE(testing::Message() << P << " taps, " << S << " tiles");
      EXPECT_EQ(b_fragment_wavefronts(Rows::Padded, P, S), 2 * S * (P / 16 + 1));
      // toeplitz_product's kPadded address: a lane constant plus 24 a slice.
      for (int u = 0; u < S; ++u)
        for (int s = 0; s <= P / 16; ++s)
          for (int gid = 0; gid < 8; ++gid)
            for (int tid = 0; tid < 4; ++tid)
              EXPECT_EQ(24 * gid + 2 * tid + padded(kTile * u) + 24 * s, padded(kTile * u + 16 * (gid + s) + 2 * tid));
    }
}

TEST(ConvLayout, TheAdditiveSkewConflictsWhereAFragmentStraddlesThreeBlocks) {
  // The figure in conv_layout.h's comment: at 128 taps and two tiles, the 36 B-fragment loads of a
  // channel (2 tiles × 9 slices × 2 halves) take 60 wavefronts where 36 would do: 67 % more.
  EXPECT_EQ(b_fragment_wavefronts(Rows::Skewed, 128, 2), 60);
  EXPECT_EQ(b_fragment_wavefronts(Rows::Padded, 128, 2), 36);
  // At offsets that are multiples of 64 (slice 0, 4, 8 of the first half) it is conflict-free.
  std::vector<std::vector<int>> lanes;
  for (int gid = 0; gid < 8; ++gid)
    for (int tid = 0; tid < 4; ++tid) lanes.push_back({skew(64 + 16 * gid + 2 * tid) / 2});
  EXPECT_EQ(wavefronts(lanes), 1);
}

// The 128-tap backward pass's swizzled rows: every B fragment in one wavefront, as the padding gives,
// without padding.
TEST(ConvLayout, SwizzledRowsGiveEveryBFragmentOneWavefrontWithoutPadding) {
  EXPECT_EQ(b_fragment_wavefronts(Rows::Swizzled, 128, 1), 2 * 9);
  EXPECT_EQ(b_fragment_wavefronts(Rows::Skewed, 128, 1), 30) << "the skew it replaces";
  std::set<int> at_positions;
  for (int i = 0; i < signal_rows<128>(); ++i) at_positions.insert(swizzled(i));
  EXPECT_EQ(int(at_positions.size()), signal_rows<128>()) << "a permutation";
  EXPECT_EQ(*at_positions.rbegin(), signal_rows<128>() - 1) << "of the rows themselves";
  EXPECT_LT(signal_rows<128>() - 1, swizzled_stride<128>());
  EXPECT_EQ(swizzled_stride<128>() % 2, 0);
  EXPECT_EQ(swizzled_stride<128>() / 2 % 2, 1) << "odd in words";
}

// swizzle_flip: the swizzle of a B fragment's rows as one flip a block (toeplitz_adjoint_hankel_product).
TEST(ConvLayout, SwizzledBRowsAreOneFlipABlock) {
  for (int n = 0; n < (signal_rows<128>() - 16) / 16 + 1; ++n)
    for (int x = 0; x < 8; x += 2) {
      EXPECT_EQ(swizzled(16 * n + x), 16 * n + x + swizzle_flip(n)) << n << ", " << x;
      EXPECT_EQ(swizzled(16 * n + x + 8), 16 * n + x + 8 - swizzle_flip(n)) << n << ", " << x;
    }
}

TEST(ConvLayout, StagedRowsKeepPairsTogetherAndTilesApart) {
  for (Rows rows : {Rows::Skewed, Rows::Padded, Rows::Swizzled}) {
    for (int i = 0; i < 1024; i += 2) EXPECT_EQ(at(rows, i + 1), at(rows, i) + 1) << i;
    for (int u = 0; u < 4; ++u)
      for (int x = 0; x < kTile; ++x) EXPECT_EQ(at(rows, kTile * u + x), at(rows, kTile * u) + at(rows, x));
  }
  // The last step fits its row, with room to spare for the odd stride.
  EXPECT_LT(padded(signal_rows<128, 2>() - 1), (padded_stride<128, 2>()));
  EXPECT_LT(skew(signal_rows<128>() - 1), signal_stride<128>());
}

// The backward pass's walk (backward_kernel): the next tile's z rows begin P steps before the end
// of this tile's and its g rows P steps before the end of the lookahead, so both move rows
// [kTile, kTile + P) to [0, P), as whole words by one constant shift, apart from the rows that the
// next kTile are staged into.
TEST(ConvLayout, TheBackwardHaloMovesByOneShiftOfWholeWords) {
  // Skewed rows below 128 taps, swizzled at 128 (kBackwardRows in gated_conv_mma.cu).
  for (auto [rows, P] : {std::pair{Rows::Skewed, 16}, {Rows::Skewed, 32}, {Rows::Skewed, 64}, {Rows::Swizzled, 128}}) {
    const int shift = at(rows, kTile);
    EXPECT_EQ(shift % 2, 0);
    for (int j = 0; j < P; ++j) EXPECT_EQ(at(rows, kTile + j), at(rows, j) + shift) << P << " taps, step " << j;
    EXPECT_LE(at(rows, P), shift) << "source and destination apart";
    EXPECT_EQ(at(rows, P) % 2, 0) << "whole words, ending where the next tile's rows begin";
  }
  for (int stride : {signal_stride<16>(), signal_stride<32>(), signal_stride<64>(), swizzled_stride<128>()})
    EXPECT_EQ(stride % 2, 0) << "rows of whole words";
}

// SignalItems::put (stage_signal, the backward pass's tiles) with 8 channels per access: item →
// time pair r, channel group c; each of the 8 channels e is one 32-bit store of the two times.
void expect_transposing_stores_take_one_wavefront(Rows layout, int stride, int rows) {
  EXPECT_EQ(stride % 2, 0);
  EXPECT_EQ(stride / 2 % 2, 1) << "the row stride is odd in words";
  const int items = rows / 2 * (kChannels / 8);
  for (int first = 0; first < items; first += 32)
    for (int e = 0; e < 8; ++e) {
      std::vector<std::vector<int>> lanes;
      for (int item = first; item < std::min(items, first + 32); ++item) {
        const int r = 2 * (item / 4), c = 8 * (item % 4);
        lanes.push_back({((c + e) * stride + at(layout, r)) / 2});
      }
      EXPECT_EQ(wavefronts(lanes), 1) << "items from " << first << ", channel " << e;
    }
}

TEST(ConvLayout, TransposingStoresTakeOneWavefront) {
  // The forward pass's rows (16 taps one tile, skewed; from 32 taps two tiles, padded) and the
  // backward pass's (one tile, skewed).
  expect_transposing_stores_take_one_wavefront(Rows::Skewed, signal_stride<16, 1>(), signal_rows<16, 1>());
  expect_transposing_stores_take_one_wavefront(Rows::Padded, padded_stride<32, 2>(), signal_rows<32, 2>());
  expect_transposing_stores_take_one_wavefront(Rows::Padded, padded_stride<64, 2>(), signal_rows<64, 2>());
  expect_transposing_stores_take_one_wavefront(Rows::Padded, padded_stride<128, 2>(), signal_rows<128, 2>());
  expect_transposing_stores_take_one_wavefront(Rows::Skewed, signal_stride<32>(), signal_rows<32>());
  expect_transposing_stores_take_one_wavefront(Rows::Skewed, signal_stride<64>(), signal_rows<64>());
  expect_transposing_stores_take_one_wavefront(Rows::Skewed, signal_stride<128>(), signal_rows<128>());
  expect_transposing_stores_take_one_wavefront(Rows::Swizzled, swizzled_stride<128>(), signal_rows<128>());
}

// stage_pairs: accumulator element e of lane (gid, tid) is time t_first + accumulator_index(e);
// channel pair p goes to result_word(t, p).
TEST(ConvLayout, ResultPairStoresTakeOneWavefront) {
  for (int t_first : {0, kTile})
    for (int p = 0; p < kChannels / 2; ++p)
      for (int e = 0; e < 4; ++e) {
        std::vector<std::vector<int>> lanes;
        for (int gid = 0; gid < 8; ++gid)
          for (int tid = 0; tid < 4; ++tid) {
            const int t = t_first + accumulator_index(e, gid, tid);
            lanes.push_back({result_word(t, p)});
          }
        EXPECT_EQ(wavefronts(lanes), 1) << "pair " << p << ", element " << e;
      }
}

TEST(ConvLayout, ResultsReadBackInOrderEightChannelsPerLoad) {
  // load_result<8>: item → time t, group j of eight channels (four pairs); one 16-byte load of
  // words 4 result_slot(t, j) + 0..3, then halves swapped if swizzle & 2 and the words of each half
  // if swizzle & 1, as the kernel does.
  const int items = 2 * kTile * (kChannels / 8);
  std::vector<std::vector<int>> lanes;
  for (int item = 0; item < items; ++item) {
    const int t = item / 4, j = item % 4, swizzle = pair_swizzle(t);
    std::array<int, 4> u;
    for (int k = 0; k < 4; ++k) u[k] = 4 * result_slot(t, j) + k;
    lanes.push_back({u.begin(), u.end()});
    if (swizzle & 2) u = {u[2], u[3], u[0], u[1]};
    if (swizzle & 1) u = {u[1], u[0], u[3], u[2]};
    for (int k = 0; k < 4; ++k) EXPECT_EQ(u[k], result_word(t, 4 * j + k)) << "time " << t << ", pair " << 4 * j + k;
  }
  EXPECT_EQ(wavefronts(lanes, 8), items / 8) << "one wavefront per 8 lanes of 16-byte loads";
  // Every word of every row is some pair's: the swizzle is a permutation within the row.
  for (int t = 0; t < 2 * kTile; ++t) {
    std::set<int> words;
    for (int p = 0; p < kChannels / 2; ++p) words.insert(result_word(t, p));
    EXPECT_EQ(words.size(), size_t(kChannels / 2));
    EXPECT_EQ(*words.begin(), kChannels / 2 * t);
  }
}

// The filter staged twice (stage_filter<P, true>): h⁺[m] at m + 16 of the even row and at
// odd_row + m + 15 of the odd one; the tap an element offset of the pair of rows holds.
template <int P> int tap_at(int offset) { return offset < odd_row<P>() ? offset - 16 : offset - odd_row<P>() - 15; }

// toeplitz_pair<P, kAdjoint, true>: lane (gid, tid) of slice s fetches, for row = gid (lo, slices
// 0 to P/16) or gid + 8 (hi, one slice more), the pair (h⁺[x], h⁺[x + 1]) at x = r − row (adjoint)
// or y = P + row − r − 1 (causal, then swapped), r = 16 s + 2 tid, from the row of x's parity.
template <int P, bool kAdjoint> void expect_filter_pairs_aligned_in_distinct_banks() {
  static_assert(two_row_stride<P>() == 2 * odd_row<P>());
  for (int high : {0, 8})
    for (int s = 0; s <= P / 16 + (high ? 1 : 0); ++s) {
      std::vector<std::vector<int>> lanes;
      for (int gid = 0; gid < 8; ++gid)
        for (int tid = 0; tid < 4; ++tid) {
          const bool odd = (gid & 1) != (kAdjoint ? 0 : 1);
          const int hc = 16 + (odd ? odd_row<P>() - 1 : 0), row = gid + high, r = 16 * s + 2 * tid;
          const int offset = kAdjoint ? hc + r - row : hc + P + row - r - 1;
          const int x = kAdjoint ? r - row : P + row - r - 1;
          ASSERT_EQ(offset % 2, 0) << "an aligned word, gid " << gid << ", tid " << tid << ", slice " << s;
          // Inside what stage_filter writes: the even row's [0, P + 32), the odd row's from h⁺[−15].
          EXPECT_TRUE(offset < P + 31 || (offset >= odd_row<P>() && offset + 1 < odd_row<P>() + P + 31)) << offset;
          EXPECT_EQ(tap_at<P>(offset), x);
          EXPECT_EQ(tap_at<P>(offset + 1), x + 1);
          lanes.push_back({offset / 2});
        }
      EXPECT_EQ(wavefronts(lanes), 1) << P << " taps, slice " << s << (high ? ", row gid + 8" : ", row gid");
    }
}

// correlate_16, the 16-tap filter gradient on the CUDA cores: lane (c, i) of a warp, c = lane / 8
// of the warp's four channels, takes the tile's times [16 i, 16 i + 16) and reads them as runs of
// 16 elements, eight words each: z from skew(16 + 16 i) (its row begins P = 16 steps early), g
// from skew(16 i) and skew(16 i + 16).
TEST(ConvLayout, TheCudaCoreFilterGradientReadsContiguousRuns) {
  constexpr int P = 16, stride = signal_stride<P>();
  for (int i = 0; i < 8; ++i)
    for (int start : {P + 16 * i, 16 * i, 16 * i + 16}) {
      EXPECT_EQ(start % 16, 0);
      EXPECT_LE(start + 16, signal_rows<P>()) << "inside the staged rows";
      for (int j = 0; j < 16; ++j) EXPECT_EQ(skew(start + j), skew(start) + j) << "run from " << start;
    }
  // Bank pattern: chunks 0 and 7 of a channel meet in one bank in the runs that start 16 steps in
  // (z, and g's second run), 64 words apart; g's first run is conflict-free: 40 wavefronts a warp
  // and tile where 24 would do, against 256 loads (64 a channel) for hankel_product's MMAs.
  int total = 0;
  for (int run = 0; run < 3; ++run)
    for (int k = 0; k < 8; ++k) {
      std::vector<std::vector<int>> lanes;
      for (int lane = 0; lane < 32; ++lane) {
        const int c = lane / 8, i = lane % 8, start = run == 0 ? P + 16 * i : 16 * i + (run == 2 ? 16 : 0);
        lanes.push_back({(c * stride + skew(start)) / 2 + k});
      }
      const int taken = wavefronts(lanes);
      EXPECT_EQ(taken, run == 1 ? 1 : 2) << "run " << run << ", word " << k;
      total += taken;
    }
  EXPECT_EQ(total, 40);
}

// The 128-tap backward pass's g, staged time-reversed (reversed_row): SignalItems::put writes the
// rows (r, r + 1) of an item, r even, as one word at reversed_row(r + 1) (its halves as
// swapped_pairs says); the halo, this tile's rows [kTile, kTile + P), is the next tile's rows [0,
// P): a shift up by whole words, clear of the rows [P, P + kTile) staged next.
TEST(ConvLayout, ReversedRowsKeepPairsAlignedAndTheHaloMovesUpByWholeWords) {
  constexpr int P = 128;
  for (int r = 0; r < kTile + P; r += 2) {
    EXPECT_EQ(swizzled(reversed_row<P>(r + 1)) % 2, 0) << r;
    EXPECT_EQ(swizzled(reversed_row<P>(r)), swizzled(reversed_row<P>(r + 1)) + 1) << r;
  }
  for (int r = 0; r < kTile + P; ++r) EXPECT_EQ(reversed_row<P>(reversed_row<P>(r)), r);
  for (int j = 0; j < P; ++j) {
    const int now = swizzled(reversed_row<P>(kTile + j)), next = swizzled(reversed_row<P>(j));
    EXPECT_EQ(next, now + swizzled(kTile)) << j;
    EXPECT_LT(now, swizzled(P)) << "the moved words are those of rows [0, P)";
  }
  for (int r = P; r < P + kTile; ++r) EXPECT_LT(reversed_row<P>(r), kTile) << "new rows below the halo's";
  // The transposing stores (as TransposingStoresTakeOneWavefront) at the reversed positions.
  constexpr int stride = swizzled_stride<P>(), items = (kTile + P) / 2 * (kChannels / 8);
  for (int first = 0; first < items; first += 32)
    for (int e = 0; e < 8; ++e) {
      std::vector<std::vector<int>> lanes;
      for (int item = first; item < first + 32; ++item) {
        const int r = 2 * (item / 4), c = 8 * (item % 4);
        lanes.push_back({((c + e) * stride + swizzled(reversed_row<P>(r + 1))) / 2});
      }
      EXPECT_EQ(wavefronts(lanes), 1) << "items from " << first << ", channel " << e;
    }
}

// What the reversal is for (toeplitz_adjoint_hankel_product): the causal Toeplitz product, A[i][r]
// = h+[P + i - r], over the reversed rows of g is the adjoint product over g, dz[t] = Σ_j h+[j]
// g[t + j], with accumulator index 16 n + i holding time kTile - 1 - (16 n + i). Integers, so exact.
TEST(ConvLayout, TheCausalProductOverReversedRowsIsTheAdjointProduct) {
  constexpr int P = 128;
  std::vector<long> h(P), g(kTile + P);
  for (int j = 0; j < P; ++j) h[j] = (7 * j + 3) % 29 - 14;
  for (int r = 0; r < kTile + P; ++r) g[r] = (11 * r + 5) % 31 - 15;
  auto tap = [&](int m) { return m >= 0 && m < P ? h[m] : 0L; };
  for (int n = 0; n < kTile / 16; ++n)
    for (int i = 0; i < 16; ++i) {
      long causal = 0, adjoint = 0;
      for (int r = 0; r < P + 16; ++r) causal += tap(P + i - r) * g[reversed_row<P>(16 * n + r)];
      const int t = kTile - 1 - (16 * n + i);
      for (int j = 0; j < P; ++j) adjoint += h[j] * g[t + j];
      EXPECT_EQ(causal, adjoint) << "block " << n << ", row " << i;
    }
  // stage_pairs(..., reversed): the reversed times' stores still take one wavefront.
  for (int p = 0; p < kChannels / 2; ++p)
    for (int e = 0; e < 4; ++e) {
      std::vector<std::vector<int>> lanes;
      for (int gid = 0; gid < 8; ++gid)
        for (int tid = 0; tid < 4; ++tid) lanes.push_back({result_word(kTile - 1 - accumulator_index(e, gid, tid), p)});
      EXPECT_EQ(wavefronts(lanes), 1) << "pair " << p << ", element " << e;
    }
}

// The Hankel A from the reversed rows without 16-bit gathers (ReversedHankelSlices): a warp
// emulated lane by lane (lane = 4 gid + tid, as the MMA fragments number them), with __byte_perm
// as PTX defines it, must give every lane the pair of g[x] and g[x + 1], its halves as z's B pairs
// have theirs, for x = 2 tid + gid + 8 m, the rows of its fragment registers; each load of an own
// or a partner word m takes one wavefront.
uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t selector) {
  const uint64_t bytes = uint64_t(y) << 32 | x;
  uint32_t out = 0;
  for (int i = 0; i < 4; ++i) out |= uint32_t(bytes >> 8 * (selector >> 4 * i & 7) & 0xff) << 8 * i;
  return out;
}

constexpr int kHankelWords = 2 * kTile / 16 + 1;  // pairs 0 .. 16: slices 0 to 7

TEST(ConvLayout, TheLoadedHankelPairsAreTheGatheredOnes) {
  constexpr int P = 128;
  std::vector<uint16_t> staged(swizzled_stride<P>(), 0);
  auto g = [](int row) { return uint16_t(1000 + row); };  // distinct, so a wrong row shows
  // SignalItems::put's words: rows (r, r + 1) at reversed_row(r + 1), swapped_pairs: r in the low half.
  for (int r = 0; r < kTile + P; r += 2) {
    const int at = swizzled(reversed_row<P>(r + 1));
    staged[at + (swapped_pairs ? 0 : 1)] = g(r);
    staged[at + (swapped_pairs ? 1 : 0)] = g(r + 1);
  }
  auto element = [](int row) { return swizzled(reversed_row<P>(row + 1)); };  // of the word of rows (row, row + 1)
  auto word = [&](int row) {
    const int at = element(row);
    EXPECT_EQ(at % 2, 0) << "row " << row << ": not an aligned 32-bit load";
    return uint32_t(staged[at]) | uint32_t(staged[at + 1]) << 16;
  };
  for (int m = 0; m < kHankelWords; ++m) {
    std::vector<std::vector<int>> own, partner;
    for (int lane = 0; lane < 32; ++lane) {
      own.push_back({element(hankel_word_row(lane / 4, lane % 4, m)) / 2});
      partner.push_back({element(hankel_partner_row(lane / 4, lane % 4, m)) / 2});
    }
    EXPECT_EQ(wavefronts(own), 1) << "own word " << m;
    EXPECT_EQ(wavefronts(partner), 1) << "partner word " << m;
    for (int lane = 0; lane < 32; ++lane) {
      const int gid = lane / 4, tid = lane % 4;
      const uint32_t pair = byte_perm(word(hankel_word_row(gid, tid, m)), word(hankel_partner_row(gid, tid, m)),
                                      hankel_selector(gid));
      const int x = 2 * tid + gid + 8 * m;
      // As z's B pairs (swapped_pairs): g[x + 1] in the low half.
      EXPECT_EQ(pair & 0xffff, g(swapped_pairs ? x + 1 : x)) << "lane " << lane << ", word " << m;
      EXPECT_EQ(pair >> 16, g(swapped_pairs ? x : x + 1)) << "lane " << lane << ", word " << m;
    }
  }
}

// hankel_word_offset: every lane's own and partner word m, at swizzled(reversed_row(x_m + 1)), is
// its word 0's element plus one of two constants.
TEST(ConvLayout, HankelWordsAreOnePointerAndOneOfTwoConstants) {
  constexpr int P = 128;
  for (int gid = 0; gid < 8; ++gid)
    for (int tid = 0; tid < 4; ++tid)
      for (auto row : {hankel_word_row, hankel_partner_row}) {
        const int u = reversed_row<P>(row(gid, tid, 0) + 1), run = u >> 3;
        ASSERT_TRUE(run == hankel_upper_run<P>() || run == hankel_upper_run<P>() - 1) << gid << ", " << tid;
        for (int m = 0; m < kHankelWords; ++m)
          EXPECT_EQ(u + hankel_word_offset<P>(run == hankel_upper_run<P>(), m), swizzled(reversed_row<P>(row(gid, tid, m) + 1)))
              << "lane " << 4 * gid + tid << ", word " << m;
      }
}

TEST(ConvLayout, TwoFilterRowsGiveAlignedPairsInDistinctBanks) {
  expect_filter_pairs_aligned_in_distinct_banks<16, false>();
  expect_filter_pairs_aligned_in_distinct_banks<16, true>();
  expect_filter_pairs_aligned_in_distinct_banks<32, false>();
  expect_filter_pairs_aligned_in_distinct_banks<32, true>();
  expect_filter_pairs_aligned_in_distinct_banks<64, false>();
  expect_filter_pairs_aligned_in_distinct_banks<64, true>();
  expect_filter_pairs_aligned_in_distinct_banks<128, false>();
  expect_filter_pairs_aligned_in_distinct_banks<128, true>();
}

}  // namespace
