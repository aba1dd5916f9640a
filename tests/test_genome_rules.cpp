// The genome's rules case by case: what STAR's genes mean, which sharing is legal, what repair and
// the canonical form do to a particular genome, and what the variation operators draw.
#include <gtest/gtest.h>

#include "genome/genome.h"
#include "genome/presets.h"
#include "genome/variation.h"

namespace starsynth {
namespace {

SearchSpace four_attention_classes() { return make_space(4, 256, 256, {"SA-1", "SA-2", "SA-3", "SA-4"}); }

Genome from_string(const SearchSpace& space, const std::string& s) {
  std::vector<int64_t> flat;
  for (size_t at = 0; at < s.size();) {
    const size_t end = s.find_first_of(".-", at);
    flat.push_back(std::stoll(s.substr(at, end - at)));
    at = end == std::string::npos ? s.size() : end + 1;
  }
  return decode(space, flat);
}

TEST(GenomeRules, StarsIllustrativeBackboneCompilesToItsDescription) {
  // STAR.md §2.2: 21211-31112-21221-32112. LIVs 1 and 3 (0-based 0 and 2) tie featurizers; LIVs
  // 2 and 4 share their feature group (K/V of grouped-query attention).
  const SearchSpace s = four_attention_classes();
  const Genome g = from_string(s, "2.1.2.1.1-3.1.1.1.2-2.1.2.2.1-3.2.1.1.2");
  ASSERT_TRUE(is_valid(s, g));
  const ModelSpec m = compile(s, g);
  EXPECT_EQ(m.layers[0].cls, "SA-2");
  EXPECT_EQ(m.layers[1].cls, "SA-3");
  EXPECT_EQ(m.layers[2].tie_featurizer_to, 0);
  EXPECT_EQ(m.layers[3].reuse_from, 1);
  EXPECT_EQ(m.layers[3].reuse_role, "kv");
  EXPECT_EQ(m.layers[1].reuse_from, -1);
  EXPECT_EQ(m.layers[3].tie_featurizer_to, -1);
  EXPECT_EQ(to_string(canonical(s, g)), "2.1.2.1.1-3.1.1.1.2-2.1.2.1.1-3.1.1.1.2");
}

TEST(GenomeRules, ReuseBetweenIncompatibleGroupsIsRejectedWithItsField) {
  const SearchSpace s = make_space(3, 128, 64, {"SA-1", "Rec-1", "SA-3"});
  // LIV 1 (Rec-1, B/C) in the same feature group as LIV 0 (SA-1, K/V).
  const Genome g = from_string(s, "1.1.1.1.2-2.1.1.1.2-1.1.1.1.1");
  EXPECT_STREQ(find_violation(s, g)->what(),
               "livs[1].feature_strategy: incompatible sharing: LIV 1 (Rec-1, bc) cannot reuse the features of "
               "LIV 0 (SA-1, kv) in feature group 1");
  // K/V of different head counts (SA-3 groups 4 query heads per K/V head) do not mix either.
  EXPECT_FALSE(is_valid(s, from_string(s, "1.1.1.1.2-2.1.1.2.1-3.1.1.1.2")));
  // Repair splits the group by compatibility instead of dropping the sharing.
  const Genome r = repair(s, g);
  EXPECT_TRUE(is_valid(s, r));
  EXPECT_EQ(to_string(r), "1.1.1.1.2-2.1.1.2.2-1.1.1.1.1");
}

TEST(GenomeRules, AttentionVariantsWithEqualKeyValueShapesShareThem) {
  // SA-1 and SA-2 compute K/V of the same shape (SA-2 adds a short conv before): reuse is legal,
  // and the consumer keeps no K/V weights, convolutions or cache of its own.
  const SearchSpace s = make_space(2, 256, 256, {"SA-1", "SA-2"});
  const ModelSpec m = compile(s, from_string(s, "2.1.1.1.2-1.1.1.1.2"));
  EXPECT_EQ(m.layers[1].reuse_from, 0);
}

TEST(GenomeRules, TyingNeedsFeaturizersOfTheSameShape) {
  const SearchSpace s = make_space(3, 256, 256, {"SA-1", "SA-2", "SA-1-Diff"});
  // SA-1 and SA-2 differ by SA-2's short convolutions; SA-1 and its differential variant differ
  // by the second branch.
  EXPECT_STREQ(find_violation(s, from_string(s, "1.1.2.1.1-2.1.2.1.1-1.1.1.1.1"))->what(),
               "livs[1].featurizer_strategy: incompatible sharing: LIV 1 (SA-2) cannot tie featurizer weights with "
               "LIV 0 (SA-1): their featurizers have different shapes");
  EXPECT_FALSE(is_valid(s, from_string(s, "1.1.2.1.1-3.1.2.1.1-1.1.1.1.1")));
  EXPECT_TRUE(is_valid(s, from_string(s, "1.1.2.1.1-2.2.1.1.1-1.1.2.1.1")));
}

TEST(GenomeRules, AConsumerOfKeyValuesTiesOnlyWithAnotherConsumer) {
  // A layer that reuses K/V owns only its query featurizer, so it can tie with a layer that owns
  // the same (another consumer) but not with a full attention layer.
  const SearchSpace s = make_space(4, 256, 256, {"SA-1"});
  EXPECT_TRUE(is_valid(s, from_string(s, "1.1.1.1.2-1.2.2.1.2-1.1.1.2.1-1.2.2.1.2")));
  const Genome bad = from_string(s, "1.1.2.1.2-1.1.2.1.2-1.1.1.2.1-1.1.1.2.1");
  EXPECT_STREQ(find_violation(s, bad)->what(),
               "livs[1].featurizer_strategy: incompatible sharing: LIV 1 (SA-1) cannot tie featurizer weights with "
               "LIV 0 (SA-1): their featurizers have different shapes");
}

TEST(GenomeRules, GeneRangesFollowTheClass) {
  const SearchSpace s = make_space(2, 128, 64, {"SA-1", "MLP"});
  // MLP has no reusable group: gene 5 may only be 1 for it, though the bound allows 2.
  EXPECT_EQ(bounds(s).upper[4], 2);
  EXPECT_STREQ(find_violation(s, from_string(s, "1.1.1.1.1-2.1.1.1.2"))->what(),
               "livs[1].feature_strategy: expected 1..1 for class MLP (1 none), got 2");
  EXPECT_THROW(decode(s, std::vector<int64_t>{3, 1, 1, 1, 1, 1, 1, 1, 1, 1}), FieldError);
  try {
    decode(s, std::vector<int64_t>{1, 1, 1});
    FAIL();
  } catch (const FieldError& e) {
    EXPECT_STREQ(e.what(), "genes: expected 10 integers (2 LIVs × 5), got 3");
  }
}

TEST(GenomeRules, SharingSwitchedOffInTheSpaceFixesStrategiesToNone) {
  SearchSpace s = make_space(3, 128, 64, {"SA-1", "GMemless"});
  s.allow_featurizer_sharing = false;
  s.allow_feature_sharing = false;
  const Bounds b = bounds(s);
  EXPECT_EQ(b.upper[2], 1);
  EXPECT_EQ(b.upper[4], 1);
  Rng rng(3);
  for (int n = 0; n < 100; ++n) {
    const ModelSpec m = compile(s, random_genome(s, rng));
    for (const LayerSpec& l : m.layers) EXPECT_TRUE(l.tie_featurizer_to < 0 && l.reuse_from < 0);
  }
}

TEST(GenomeRules, CanonicalFormNormalisesNoOpsAndLabels) {
  const SearchSpace s = make_space(4, 256, 256, {"SA-1", "GMemless"});
  // Featurizer group 4 holds LIVs 0 and 2; group 3 holds LIV 1 alone (a no-op); LIV 3 shares
  // nothing but carries labels.
  const Genome g = from_string(s, "1.4.2.2.1-2.3.2.4.2-1.4.2.3.1-2.2.1.4.2");
  EXPECT_EQ(to_string(canonical(s, g)), "1.1.2.1.1-2.1.1.1.2-1.1.2.1.1-2.1.1.1.2");
  const ModelSpec m = compile(s, g);
  EXPECT_EQ(m.layers[2].tie_featurizer_to, 0);
  EXPECT_EQ(m.layers[3].reuse_from, 1);
  EXPECT_EQ(m.layers[3].reuse_role, "gate");
  EXPECT_EQ(m.layers[1].tie_featurizer_to, -1);
}

TEST(GenomeRules, MutationAtRateOneChangesEveryGeneWithAChoice) {
  const SearchSpace s = make_space(6, 128, 64, star_alphabet());
  Rng rng(5);
  const Genome g = random_genome(s, rng);
  // Before repair every gene differs; repair can only touch sharing genes, never the class.
  const Genome m = mutate(s, g, 1.0, rng);
  for (size_t i = 0; i < g.livs.size(); ++i) EXPECT_NE(m.livs[i].cls, g.livs[i].cls);
  EXPECT_EQ(mutate(s, g, 0.0, rng), g);
}

TEST(GenomeRules, CrossoverTakesEachGeneFromOneParent) {
  const SearchSpace s = make_space(10, 128, 64, {"SA-1", "Rec-1", "GConv-1", "GMemless"});
  Genome a, b;
  for (int i = 0; i < 10; ++i) {
    a.livs.push_back({1, 1, 1, 1, 1});
    b.livs.push_back({4, 1, 1, 1, 1});
  }
  Rng rng(9);
  for (int n = 0; n < 200; ++n) {
    auto [c1, c2] = crossover(s, a, b, 2, rng);
    // Classes switch parent at most twice along each child, and the children are complements.
    int switches = 0;
    for (size_t i = 0; i < 10; ++i) {
      EXPECT_NE(c1.livs[i].cls, c2.livs[i].cls);
      if (i) switches += c1.livs[i].cls != c1.livs[i - 1].cls;
    }
    EXPECT_LE(switches, 2);
  }
  auto [same1, same2] = crossover(s, a, a, 2, rng);
  EXPECT_EQ(same1, a);
  EXPECT_EQ(same2, a);
}

TEST(GenomeRules, TheSameSeedGivesTheSameGenomes) {
  const SearchSpace s = make_space(24, 768, 50304, star_alphabet());
  Rng r1(77), r2(77);
  for (int n = 0; n < 20; ++n) {
    const Genome a = random_genome(s, r1), b = random_genome(s, r2);
    ASSERT_EQ(a, b);
    ASSERT_EQ(mutate(s, a, 0.1, r1), mutate(s, b, 0.1, r2));
  }
}

TEST(GenomeRules, PresetsAreValidGenomesAtAnySize) {
  for (int livs : {2, 8, 24, 48})
    for (int64_t width : {64, 128, 768, 2048}) {
      const SearchSpace s = preset_space(livs, width, 256);
      for (const Preset& p : presets()) {
        const Genome g = preset_genome(s, p.name);
        ASSERT_TRUE(is_valid(s, g)) << p.name << " " << livs << "×" << width;
        EXPECT_EQ(compile(s, g).layers.size(), size_t(livs));
      }
    }
  const SearchSpace s = preset_space(8, 128, 256);
  const ModelSpec hyena = compile(s, preset_genome(s, "striped-hyena2"));
  std::vector<std::string> classes;
  for (const LayerSpec& l : hyena.layers) classes.push_back(l.cls);
  EXPECT_EQ(classes, (std::vector<std::string>{"Hyena-SE", "GMemless", "Hyena-MR", "GMemless", "Hyena-LI", "GMemless",
                                                "SA-1", "GMemless"}));
  EXPECT_THROW(preset_genome(make_space(4, 128, 64, {"SA-1"}), "transformer++"), FieldError);
}

}  // namespace
}  // namespace starsynth
