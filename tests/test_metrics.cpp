// Analytic metrics against numbers derived independently: published parameter counts of open
// models, STAR's published cache figure, and per-class counts worked out by hand below.
#include <gtest/gtest.h>

#include "genome/genome.h"
#include "genome/metrics.h"
#include "genome/presets.h"
#include "genome/tensors.h"
#include "proto/formats.h"

namespace starsynth {
namespace {

const std::string kModels = std::string(STARSYNTH_SOURCE_DIR) + "/examples/models/";

TEST(PublishedModels, ParameterCountsMatchThePublishedOnes) {
  // Sizes as their authors report them (Hugging Face model cards / num_parameters()).
  const std::vector<std::pair<std::string, int64_t>> published = {
      {"gpt2-124m.textproto", 124'439'808},        {"gpt2-medium.textproto", 354'823'168},
      {"tinyllama-1.1b.textproto", 1'100'048'384}, {"llama2-7b.textproto", 6'738'415'616},
      {"mistral-7b.textproto", 7'241'732'096},
  };
  for (const auto& [file, count] : published) {
    const ModelSpec m = load_model_config(kModels + file);
    EXPECT_EQ(count_parameters(m).total, count) << file;
  }
}

TEST(PublishedModels, KeyValueCacheOfLlamaStyleModels) {
  // Llama 2 7B at 4096 tokens in fp16: 32 layers × 2 × 4096 × 4096 × 2 B = 2 GiB exactly; Mistral's
  // 8 K/V heads cut it by 4. TinyLlama: 22 × 2 × 2048 ctx × 256 × 2 B.
  EXPECT_EQ(analyze(load_model_config(kModels + "llama2-7b.textproto"), 4096, 2).cache_bytes, 2147483648);
  EXPECT_EQ(analyze(load_model_config(kModels + "mistral-7b.textproto"), 4096, 2).cache_bytes, 536870912);
  EXPECT_EQ(analyze(load_model_config(kModels + "tinyllama-1.1b.textproto"), 2048, 2).cache_bytes, 46137344);
}

TEST(StarFigures, TransformerPlusPlus1BCacheIs805MB) {
  // STAR reports 805 MB of cache for its 1B Transformer++ (48 LIVs, width 2048) at 4096 tokens.
  const SearchSpace s = preset_space(48, 2048, 50304);
  const ModelSpec m = compile(s, preset_genome(s, "transformer++"));
  EXPECT_EQ(analyze(m, 4096, 2).cache_bytes, 805'306'368);
}

TEST(StarFigures, TransformerPlusPlus125MNonEmbeddingParameters) {
  // 12 × (4 + 8) × 768² = 84,934,656 in the matmuls (STAR.md §1.7), plus 24 + 1 RMSNorm gains.
  const SearchSpace s = preset_space(24, 768, 50304);
  const ModelSpec m = compile(s, preset_genome(s, "transformer++"));
  const ParamCount p = count_parameters(m);
  EXPECT_EQ(p.non_embedding, 84'934'656 + 25 * 768);
  EXPECT_EQ(p.embedding, 50304 * 768);
}

// One LIV of `cls` at width 768 with catalogue defaults (RMSNorm, no biases).
ModelSpec single(const std::string& cls) {
  const SearchSpace s = make_space(1, 768, 256, {cls});
  return compile(s, Genome{{LivGene{}}});
}

struct ClassExpectation {
  const char* cls;
  int64_t params;       // layer parameters, norm included
  int64_t cache_bytes;  // at 4096 tokens, 2 bytes per element
};

TEST(PerClass, ParametersAndCacheMatchHandDerivations) {
  // d = 768, L = 4096, b = 2. Parameters include the layer's RMSNorm gain (d).
  const int64_t d = 768, L = 4096, b = 2;
  const std::vector<ClassExpectation> expected = {
      {"SA-1", 4 * d * d + d, 2 * L * d * b},                                   // q k v o; K and V
      {"SA-2", 4 * d * d + 9 * d + d, 2 * L * d * b + 2 * 3 * d * b},           // + length-3 convs on q k v
      {"SA-3", 2 * d * d + 2 * d * d / 4 + d, 2 * L * (d / 4) * b},             // 12 heads, 3 K/V heads
      {"SA-4", 3 * d * d + d, 2 * L * (d / 2) * b},                             // 6 K/V heads
      {"Rec-1", 3 * d * d + 136 * d, (16 + 3) * d * b},                         // see below; state 16 + conv 4
      {"Rec-2", 3 * d * d + 108 * d, (2 + 3) * d * b},
      {"GConv-1", 4 * d * d + 3 * d + d, 2 * d * b},                            // STAR.md: 4d² + 3d
      {"GConv-2", 4 * d * d + 9 * d + 53'632 + d + d, L * d * b + 2 * 3 * d * b},
      {"GMemless", 8 * d * d + d, 0},                                           // hidden 2048 = 8/3 d
      {"SA-1-Diff", 7 * d * d + 1 + d, 2 * 2 * L * d * b},                      // two q k v, one o, λ
      {"GConv-1-Diff", 7 * d * d + 6 * d + 1 + d, 2 * 2 * d * b},
      {"Hyena-SE", 4 * d * d + 9 * d + (d / 16) * 7 + d, (3 * 2 + 6) * d * b},  // STAR.md §6.5 caches
      {"Hyena-MR", 4 * d * d + 9 * d + (d / 16) * 128 + d + d, (3 * 2 + 127) * d * b},
      {"Hyena-LI", 4 * d * d + 9 * d + 2 * 16 * d + d + d, (3 * 2 + 16) * d * b},
      {"MLP", 8 * d * d + d, 0},                                                // hidden 4d
  };
  // Rec-1: u, gate, out (3d²); conv 4d; B, C 2·16d; Δ rank 48: 2·48d + bias d; A_log d; D d;
  // norm d → 136d. Rec-2 with state 2: 4 + 4 + 96 + 1 + 1 + 1 + 1 = 108d.
  // GConv-2's filter MLP: 3→64 (+bias), 64→64 (+bias), sine frequencies 64, 64→768: 53,632.
  for (const auto& e : expected) {
    const AnalyticMetrics m = analyze(single(e.cls), L, b);
    EXPECT_EQ(m.layers[0].params, e.params) << e.cls;
    EXPECT_EQ(m.cache_bytes, e.cache_bytes) << e.cls;
  }
}

TEST(Sharing, ReusedKeysAndValuesCostNeitherParametersNorCache) {
  const int64_t d = 768, L = 4096;
  const SearchSpace s = make_space(3, d, 256, {"SA-1", "GMemless"});
  Genome g;
  g.livs = {{1, 1, 1, 1, 2}, {2, 1, 1, 2, 1}, {1, 1, 1, 1, 2}};  // LIV 2 reads LIV 0's K/V
  const AnalyticMetrics m = analyze(compile(s, g), L, 2);
  EXPECT_EQ(m.layers[2].params, 2 * d * d + d);  // q and o only
  EXPECT_EQ(m.layers[2].cache_elements, 0);
  EXPECT_EQ(m.cache_bytes, 2 * L * d * 2);
}

TEST(Sharing, TiedFeaturizersCountOnceAndKeepTheirCache) {
  const int64_t d = 768, L = 4096;
  const SearchSpace s = make_space(3, d, 256, {"SA-1", "GMemless"});
  Genome g;
  g.livs = {{1, 1, 2, 1, 1}, {2, 1, 1, 1, 1}, {1, 1, 2, 1, 1}};  // LIV 2 ties q/k/v to LIV 0
  const AnalyticMetrics m = analyze(compile(s, g), L, 2);
  EXPECT_EQ(m.layers[2].params, d * d + d);  // own output projection and norm
  EXPECT_EQ(m.cache_bytes, 2 * (2 * L * d * 2));
  // Tying saves parameters, not compute.
  EXPECT_DOUBLE_EQ(m.layers[2].flops, m.layers[0].flops);
}

TEST(Flops, TransformerPlusPlusMatchesTheClosedForm) {
  // Per token: 2 FLOPs per weight of every matmul, 4·d·(L+1)/2 for attention scores and mixing at
  // the causal average, and the 2·V·d head.
  const int64_t d = 768, L = 4096, V = 50304;
  const SearchSpace s = preset_space(24, d, V);
  const AnalyticMetrics m = analyze(compile(s, preset_genome(s, "transformer++")), L, 2);
  const double attention = 2.0 * 4 * d * d + 4.0 * d * (L + 1) / 2;
  const double swiglu = 2.0 * 3 * d * 2048;
  EXPECT_DOUBLE_EQ(m.flops_per_token, 12 * attention + 12 * swiglu + 2.0 * V * d);
  EXPECT_DOUBLE_EQ(m.flops_per_token, 322'652'160.0);
}

TEST(Flops, ReusedFeaturesAreNotRecomputed) {
  const int64_t d = 256;
  const SearchSpace s = make_space(2, d, 256, {"SA-1"});
  Genome g;
  g.livs = {{1, 1, 1, 1, 2}, {1, 1, 1, 1, 2}};
  const AnalyticMetrics m = analyze(compile(s, g), 1024, 2);
  EXPECT_DOUBLE_EQ(m.layers[0].flops - m.layers[1].flops, 2.0 * 2 * d * d);  // the K and V projections
}

TEST(Tensors, OwnedTensorNamesAreUniqueWithinALayer) {
  const SearchSpace s = preset_space(1, 256, 256);
  for (const std::string& cls : s.alphabet) {
    const ModelSpec m = single(cls);
    std::set<std::string> names;
    for (const TensorSpec& t : full_tensors(m, 0)) EXPECT_TRUE(names.insert(t.name).second) << cls << " " << t.name;
  }
}

}  // namespace
}  // namespace starsynth
