// How the tensor-core convolution's backward pass (kernels/gated_conv_mma.cu) spreads over the
// device: its launches, the channel groups each covers and the tiles each block walks. A block
// walks consecutive tiles of one sequence (one batch row of one group of 32 channels), carrying the
// halo and the filter gradient from one tile to the next, so blocks are few and long: one wave of
// them. Plain arithmetic apart from the CUDA code, so that a CPU test (tests/test_conv_launch.cpp)
// checks it on every CI run.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace starsynth::kernels::gated_conv_mma::launch {

// Tiles a block walks when `sequences` sequences of `tiles` tiles share a wave of `wave` blocks:
// each sequence split into as many blocks as the wave has room for (more, shorter walks would
// restage more halos and filters), or into time_blocks when that is set.
inline int64_t tiles_per_block(int64_t tiles, int64_t sequences, int64_t wave, int64_t time_blocks) {
  const int64_t blocks = time_blocks > 0 ? time_blocks : wave / sequences;
  const int64_t along = std::clamp<int64_t>(blocks, 1, tiles);
  return (tiles + along - 1) / along;
}

// One launch: channel groups [first_group, first_group + groups) of every batch row, each
// sequence in blocks of tiles_per_block tiles (blocks: along × groups × batch).
struct BackwardLaunch {
  int64_t first_group, groups, tiles_per_block;
};

// One launch, unless the sequences (groups × batch) overfill a wave: its last few blocks would
// then queue alone for a whole second one (at B=8 D=1088, 272 sequences on an H100's 264 slots,
// the backward pass took 1.5× its time at D=1056). Then whole sequences for as many groups as one
// wave holds, launch after launch, and the rest, fewer sequences than a wave, split along time to
// fill the last. (A batch larger than a wave, or time_blocks set, keeps one launch.)
inline std::vector<BackwardLaunch> backward_launches(int64_t batch, int64_t groups, int64_t tiles, int64_t wave,
                                                     int64_t time_blocks) {
  const int64_t per_wave = wave / batch;  // groups whose sequences fit one wave
  if (time_blocks > 0 || groups * batch <= wave || per_wave == 0)
    return {{0, groups, tiles_per_block(tiles, groups * batch, wave, time_blocks)}};
  std::vector<BackwardLaunch> launches;
  for (int64_t first = 0; first < groups; first += per_wave) {
    const int64_t count = std::min(per_wave, groups - first);
    launches.push_back({first, count, tiles_per_block(tiles, count * batch, wave, 0)});
  }
  return launches;
}

}  // namespace starsynth::kernels::gated_conv_mma::launch
