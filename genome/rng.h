// The one random generator type of the project, and the draws made from it. The distributions are
// written out here rather than taken from <random>, whose algorithms differ between standard
// libraries: the same seed must give the same genomes everywhere a checkpoint may be resumed.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace starsynth {

using Rng = std::mt19937_64;

// Uniform integer in [lo, hi], unbiased (rejection sampling).
inline int64_t uniform_int(Rng& rng, int64_t lo, int64_t hi) {
  const uint64_t span = uint64_t(hi - lo) + 1;
  if (span == 0) return int64_t(rng());  // the full 64-bit range
  const uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t x;
  do x = rng();
  while (x >= limit);
  return lo + int64_t(x % span);
}

// Uniform double in [0, 1) with 53 random bits.
inline double uniform01(Rng& rng) { return double(rng() >> 11) * 0x1.0p-53; }

// Uniform random permutation in place (Fisher-Yates, from the back).
template <typename T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(uniform_int(rng, 0, int64_t(i) - 1))]);
}

}  // namespace starsynth
