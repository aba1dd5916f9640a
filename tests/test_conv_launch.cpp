// The tensor-core convolution's backward launches (kernels/conv_launch.h), checked on the CPU: at
// the shapes measured on an H100 (264 blocks a wave: two on each of 132 multiprocessors), and over
// a sweep, that every sequence's tiles are walked once and no launch overfills a wave.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/conv_launch.h"

namespace {

using namespace starsynth::kernels::gated_conv_mma::launch;

constexpr int64_t kH100Wave = 264;

int64_t blocks(const BackwardLaunch& l, int64_t batch, int64_t tiles) {
  return (tiles + l.tiles_per_block - 1) / l.tiles_per_block * l.groups * batch;
}

void expect_launch(const BackwardLaunch& l, int64_t first_group, int64_t groups, int64_t tiles_per_block) {
  EXPECT_EQ(l.first_group, first_group);
  EXPECT_EQ(l.groups, groups);
  EXPECT_EQ(l.tiles_per_block, tiles_per_block);
}

TEST(ConvLaunch, SequencesThatFitOneWaveTakeOneLaunch) {
  // B=8 L=8192 D=1024: 32 groups of 32 channels, 64 tiles, 256 sequences of one block each.
  const std::vector<BackwardLaunch> b8 = backward_launches(8, 32, 64, kH100Wave, 0);
  ASSERT_EQ(b8.size(), 1u);
  expect_launch(b8[0], 0, 32, 64);
  // B=1 L=8192 D=4096: 128 sequences, each split in two to fill the wave.
  const std::vector<BackwardLaunch> b1 = backward_launches(1, 128, 64, kH100Wave, 0);
  ASSERT_EQ(b1.size(), 1u);
  EXPECT_EQ(b1[0].tiles_per_block, 32);
  EXPECT_EQ(blocks(b1[0], 1, 64), 256);
}

TEST(ConvLaunch, APartialSecondWaveBecomesALaunchSplitAlongTime) {
  // B=8 D=1088: 34 groups, 272 sequences. Before: 272 blocks of 64 tiles, 8 of them in a second
  // wave alone. Now 33 groups whole (264 blocks), then the last group's 8 sequences in 32 blocks
  // of 2 tiles each (256 blocks).
  const std::vector<BackwardLaunch> l = backward_launches(8, 34, 64, kH100Wave, 0);
  ASSERT_EQ(l.size(), 2u);
  expect_launch(l[0], 0, 33, 64);
  EXPECT_EQ(blocks(l[0], 8, 64), 264);
  expect_launch(l[1], 33, 1, 2);
  EXPECT_EQ(blocks(l[1], 8, 64), 256);
}

TEST(ConvLaunch, TimeBlocksAndBatchesLargerThanAWaveKeepOneLaunch) {
  const std::vector<BackwardLaunch> walk = backward_launches(8, 34, 64, kH100Wave, 1);
  ASSERT_EQ(walk.size(), 1u);
  expect_launch(walk[0], 0, 34, 64);  // time_blocks = 1: one block walks each sequence
  const std::vector<BackwardLaunch> wide = backward_launches(300, 2, 16, kH100Wave, 0);
  ASSERT_EQ(wide.size(), 1u);
  EXPECT_EQ(wide[0].tiles_per_block, 16);
}

TEST(ConvLaunch, EverySequenceIsWalkedOnceAndNoLaunchOverfillsAWave) {
  for (int64_t wave : {4, 132, 264, 528})
    for (int64_t batch : {1, 2, 3, 8, 16})
      for (int64_t groups : {1, 2, 7, 32, 33, 34, 100, 129})
        for (int64_t tiles : {1, 3, 64, 65}) {
          SCOPED_TRACE(testing::Message() << "wave " << wave << ", batch " << batch << ", groups " << groups
                                          << ", tiles " << tiles);
          const std::vector<BackwardLaunch> launches = backward_launches(batch, groups, tiles, wave, 0);
          int64_t next_group = 0;
          for (const BackwardLaunch& l : launches) {
            EXPECT_EQ(l.first_group, next_group) << "groups in order, none twice, none left out";
            next_group += l.groups;
            const int64_t along = (tiles + l.tiles_per_block - 1) / l.tiles_per_block;
            EXPECT_GE(along * l.tiles_per_block, tiles);
            EXPECT_LT((along - 1) * l.tiles_per_block, tiles) << "no block without tiles";
            if (batch <= wave) {
              EXPECT_LE(blocks(l, batch, tiles), wave);
            }
          }
          EXPECT_EQ(next_group, groups);
          if (groups * batch <= wave) {
            EXPECT_EQ(launches.size(), 1u);
          }
        }
}

}  // namespace
