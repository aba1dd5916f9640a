#include "genome/variation.h"

#include <algorithm>

namespace starsynth {

Genome random_genome(const SearchSpace& space, Rng& rng) {
  Genome g;
  g.livs.resize(size_t(space.num_livs));
  for (LivGene& liv : g.livs)
    for (int k = 0; k < kGenesPerLiv; ++k) gene(liv, k) = int(uniform_int(rng, 1, gene_max(space, liv, k)));
  return repair(space, g);
}

Genome mutate(const SearchSpace& space, const Genome& parent, double rate, Rng& rng) {
  Genome g = parent;
  for (LivGene& liv : g.livs) {
    for (int k = 0; k < kGenesPerLiv; ++k) {
      int* v = &gene(liv, k);
      const int hi = gene_max(space, liv, k);
      // A class change can leave gene 5 beyond the new class's strategies: draw it afresh.
      if (k == 4 && *v > hi) *v = int(uniform_int(rng, 1, hi));
      if (uniform01(rng) >= rate || hi < 2) continue;
      // A different legal value: draw from hi-1 values and skip over the current one.
      const int drawn = int(uniform_int(rng, 1, hi - 1));
      *v = drawn >= *v ? drawn + 1 : drawn;
    }
  }
  return repair(space, g);
}

std::pair<Genome, Genome> crossover(const SearchSpace& space, const Genome& a, const Genome& b, int points, Rng& rng) {
  const std::vector<int64_t> fa = encode(a), fb = encode(b);
  const int64_t n = int64_t(fa.size());
  // Distinct cut points in [1, n-1], chosen by a partial Fisher-Yates shuffle.
  std::vector<int64_t> candidates;
  for (int64_t i = 1; i < n; ++i) candidates.push_back(i);
  const size_t k = std::min(candidates.size(), size_t(std::max(points, 0)));
  for (size_t i = 0; i < k; ++i) std::swap(candidates[i], candidates[size_t(uniform_int(rng, int64_t(i), int64_t(candidates.size()) - 1))]);
  std::vector<int64_t> cuts(candidates.begin(), candidates.begin() + int64_t(k));
  std::sort(cuts.begin(), cuts.end());
  std::vector<int64_t> c1 = fa, c2 = fb;
  bool swapped = false;
  size_t next = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (next < cuts.size() && cuts[next] == i) swapped = !swapped, ++next;
    if (swapped) c1[size_t(i)] = fb[size_t(i)], c2[size_t(i)] = fa[size_t(i)];
  }
  return {repair(space, decode(space, c1)), repair(space, decode(space, c2))};
}

}  // namespace starsynth
