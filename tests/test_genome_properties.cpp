// Property tests over 10,000 random genomes in each of two search spaces: the encoding round
// trips, repair and the canonical form behave as specified, variation keeps genomes valid.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "genome/genome.h"
#include "genome/metrics.h"
#include "genome/presets.h"
#include "genome/variation.h"

namespace starsynth {
namespace {

constexpr int kGenomes = 10000;

SearchSpace star_space() { return make_space(24, 768, 50304, star_alphabet()); }

SearchSpace hybrid_space() {
  LivHyper narrow_heads;
  narrow_heads.head_dim = 16;
  return make_space(8, 128, 256,
                    {"SA-1", "SA-2", "SA-3", "Rec-1", "Rec-2", "GConv-1", "GConv-2", "GMemless", "SA-1-Diff",
                     "Rec-1-Diff", "GConv-1-Diff", "Hyena-SE", "Hyena-MR", "Hyena-LI"},
                    {{"SA-1", narrow_heads}, {"SA-2", narrow_heads}});
}

// Any in-bounds gene vector, most of them invalid: group labels are drawn from a few values so
// that sharing groups collide often, and the class-specific limits of gene 5 are ignored.
std::vector<int64_t> raw_genes(const SearchSpace& space, Rng& rng) {
  const Bounds b = bounds(space);
  std::vector<int64_t> v(b.lower.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const bool label = i % kGenesPerLiv == 1 || i % kGenesPerLiv == 3;
    const int64_t hi = label ? std::min<int64_t>(b.upper[i], 3) : b.upper[i];
    v[i] = uniform_int(rng, b.lower[i], hi);
  }
  return v;
}

// Applies a random permutation to the labels of both sharing-group kinds.
Genome permute_labels(const SearchSpace& space, Genome g, Rng& rng) {
  for (int LivGene::*label : {&LivGene::feat_group, &LivGene::fg_group}) {
    std::vector<int> perm(size_t(space.num_livs));
    std::iota(perm.begin(), perm.end(), 1);
    shuffle(perm, rng);
    for (LivGene& liv : g.livs) liv.*label = perm[size_t(liv.*label - 1)];
  }
  return g;
}

class GenomeProperties : public ::testing::TestWithParam<int> {
 protected:
  SearchSpace space() const { return GetParam() == 0 ? star_space() : hybrid_space(); }
};

TEST_P(GenomeProperties, EncodeDecodeRoundTripIsExact) {
  const SearchSpace s = space();
  Rng rng(11);
  for (int n = 0; n < kGenomes; ++n) {
    const std::vector<int64_t> flat = raw_genes(s, rng);
    const Genome g = decode(s, flat);
    ASSERT_EQ(encode(g), flat);
    ASSERT_EQ(decode(s, encode(g)), g);
  }
}

TEST_P(GenomeProperties, RepairYieldsValidGenomesAndIsIdempotent) {
  const SearchSpace s = space();
  Rng rng(12);
  int invalid_before = 0, with_sharing = 0;
  for (int n = 0; n < kGenomes; ++n) {
    const Genome raw = decode(s, raw_genes(s, rng));
    invalid_before += !is_valid(s, raw);
    const Genome r = repair(s, raw);
    ASSERT_TRUE(is_valid(s, r)) << to_string(raw) << " repaired to " << to_string(r) << ": "
                                << find_violation(s, r)->what();
    ASSERT_EQ(repair(s, r), r) << to_string(raw);
    const ModelSpec m = compile(s, r);
    with_sharing += std::any_of(m.layers.begin(), m.layers.end(),
                                [](const LayerSpec& l) { return l.reuse_from >= 0 || l.tie_featurizer_to >= 0; });
  }
  // The property is only worth something if repair had work to do and left sharing in place.
  EXPECT_GT(invalid_before, kGenomes / 10);
  EXPECT_GT(with_sharing, kGenomes / 5);
}

TEST_P(GenomeProperties, MutationAndCrossoverChildrenAreValid) {
  const SearchSpace s = space();
  Rng rng(13);
  Genome a = random_genome(s, rng), b = random_genome(s, rng);
  int changed = 0;
  for (int n = 0; n < kGenomes; ++n) {
    const Genome m = mutate(s, a, 0.1, rng);
    ASSERT_TRUE(is_valid(s, m)) << find_violation(s, m)->what();
    changed += !(m == a);
    auto [c1, c2] = crossover(s, m, b, 2, rng);
    ASSERT_TRUE(is_valid(s, c1)) << find_violation(s, c1)->what();
    ASSERT_TRUE(is_valid(s, c2)) << find_violation(s, c2)->what();
    // Walk the space: the next round varies the children.
    a = c1;
    b = n % 7 == 0 ? repair(s, decode(s, raw_genes(s, rng))) : c2;
  }
  EXPECT_GT(changed, kGenomes * 9 / 10);  // at rate 0.1 over 40-120 genes, nearly always
}

TEST_P(GenomeProperties, CanonicalFormIsStableAndInvariantUnderRelabelling) {
  const SearchSpace s = space();
  Rng rng(14);
  for (int n = 0; n < kGenomes; ++n) {
    const Genome g = repair(s, decode(s, raw_genes(s, rng)));
    const Genome c = canonical(s, g);
    ASSERT_TRUE(is_valid(s, c));
    ASSERT_EQ(canonical(s, c), c);
    // Same network: relabelling and normalising no-ops changes nothing that compiles.
    ASSERT_EQ(compile(s, c), compile(s, g)) << to_string(g);
    const Genome relabelled = permute_labels(s, g, rng);
    ASSERT_EQ(canonical(s, relabelled), c) << to_string(g) << " vs " << to_string(relabelled);
    ASSERT_EQ(genome_hash(s, relabelled), genome_hash(s, g));
  }
}

INSTANTIATE_TEST_SUITE_P(TwoSpaces, GenomeProperties, ::testing::Values(0, 1),
                         [](const auto& info) { return info.param == 0 ? "Star125M" : "MadHybrid"; });

TEST(GenomeHash, DistinguishesDifferentNetworks) {
  const SearchSpace s = hybrid_space();
  Rng rng(15);
  std::map<uint64_t, Genome> seen;
  int collisions = 0;
  for (int n = 0; n < 2000; ++n) {
    const Genome c = canonical(s, random_genome(s, rng));
    auto [it, inserted] = seen.emplace(genome_hash(s, c), c);
    collisions += !inserted && !(it->second == c);
  }
  EXPECT_EQ(collisions, 0);
}

}  // namespace
}  // namespace starsynth
