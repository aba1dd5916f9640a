// LivModel against the genome layer: the parameters it allocates are the analytic count, tied
// layers share storage, every parameter gets a gradient, every class is causal, and step-by-step
// decoding reproduces the parallel forward while keeping exactly the analytic cache.
#include <gtest/gtest.h>

#include <cmath>

#include "evaluator/model.h"
#include "genome/genome.h"
#include "genome/metrics.h"
#include "genome/presets.h"
#include "genome/tensors.h"
#include "genome/variation.h"

namespace starsynth {
namespace {

constexpr int64_t kWidth = 32, kVocab = 24;

std::vector<std::string> all_classes() {
  std::vector<std::string> names;
  for (const LivClass& c : catalog()) names.push_back(c.name);
  return names;
}

// Narrow models: 8 heads of 4 so that SA-3's groups of 4 fit; short explicit filters.
SearchSpace small_space(int livs, std::vector<std::string> alphabet) {
  LivHyper heads;
  heads.head_dim = 4;
  LivHyper mr;
  mr.filter_length = 12;
  std::map<std::string, LivHyper> overrides;
  for (const auto& c : alphabet)
    if (class_by_name(c).family == Family::Attention) overrides[c] = heads;
  overrides["Hyena-MR"] = mr;
  return make_space(livs, kWidth, kVocab, std::move(alphabet), overrides);
}

// [class, GMemless, class]: the class twice so that sharing between them can be exercised.
ModelSpec three_layers(const std::string& cls, int tie, int reuse) {
  const SearchSpace s = small_space(3, {cls, "GMemless"});
  Genome g;
  g.livs = {{1, 1, tie ? 2 : 1, 1, reuse ? 2 : 1}, {2, 2, 1, 2, 1}, {1, 1, tie ? 2 : 1, 1, reuse ? 2 : 1}};
  return compile(s, repair(s, g));
}

// Genomes with much sharing: group labels from {1, 2}; every other one over a small alphabet, where
// compatible partners are common.
std::vector<ModelSpec> shared_genomes(int count, uint64_t seed) {
  const SearchSpace wide = small_space(6, all_classes());
  const SearchSpace narrow = small_space(6, {"SA-1", "SA-2", "Rec-1", "GConv-1", "Hyena-LI", "GMemless"});
  Rng rng(seed);
  std::vector<ModelSpec> out;
  while (int(out.size()) < count) {
    const SearchSpace& s = out.size() % 2 ? narrow : wide;
    Genome g = random_genome(s, rng);
    for (LivGene& liv : g.livs) {
      liv.feat_group = int(uniform_int(rng, 1, 2));
      liv.fg_group = int(uniform_int(rng, 1, 2));
      liv.feat_strategy = int(uniform_int(rng, 1, 2));
      liv.fg_strategy = int(uniform_int(rng, 1, gene_max(s, liv, 4)));
    }
    out.push_back(compile(s, repair(s, g)));
  }
  return out;
}

at::Tensor tokens(int64_t batch, int64_t length, uint64_t seed) {
  torch::manual_seed(seed);
  return at::randint(kVocab, {batch, length}, at::kLong);
}

TEST(LivModel, ParameterCountEqualsTheAnalyticCountForEveryClass) {
  for (const std::string& cls : all_classes())
    for (int tie : {0, 1})
      for (int reuse : {0, 1}) {
        const ModelSpec spec = three_layers(cls, tie, reuse);
        LivModel m(spec);
        EXPECT_EQ(m->parameter_count(), count_parameters(spec).total) << cls << " tie " << tie << " reuse " << reuse;
      }
}

TEST(LivModel, RandomGenomesWithSharingAllocateTheAnalyticCountAndShareStorage) {
  int tied = 0, reused = 0;
  for (const ModelSpec& spec : shared_genomes(200, 31)) {
    LivModel m(spec);
    ASSERT_EQ(m->parameter_count(), count_parameters(spec).total) << summary(spec);
    for (size_t i = 0; i < spec.layers.size(); ++i) {
      const LayerSpec& l = spec.layers[i];
      if (l.tie_featurizer_to >= 0) {
        ++tied;
        const auto& owner = m->layer_tensors(size_t(l.tie_featurizer_to));
        for (const TensorSpec& t : full_tensors(spec, i)) {
          if (t.role != TensorRole::Featurizer || (l.reuse_from >= 0 && t.group == l.reuse_role)) continue;
          EXPECT_TRUE(m->layer_tensors(i).at(t.name).is_same(owner.at(t.name))) << t.name;
        }
      }
      if (l.reuse_from >= 0) {
        ++reused;
        for (const TensorSpec& t : full_tensors(spec, i))
          if (t.group == l.reuse_role) {
            EXPECT_EQ(m->layer_tensors(i).count(t.name), 0u) << t.name;
          }
      }
    }
  }
  EXPECT_GT(tied, 25);  // tied layers over the 200 genomes (39 with this seed)
  EXPECT_GT(reused, 25);
}

TEST(LivModel, TiedLayersHoldTheOwnersTensors) {
  const ModelSpec spec = three_layers("SA-2", 1, 0);
  LivModel m(spec);
  ASSERT_EQ(spec.layers[2].tie_featurizer_to, 0);
  int shared = 0;
  for (const auto& [name, t] : m->layer_tensors(2)) {
    const bool featurizer = name.rfind("q.", 0) == 0 || name.rfind("k.", 0) == 0 || name.rfind("v.", 0) == 0;
    EXPECT_EQ(t.is_same(m->layer_tensors(0).at(name)), featurizer) << name;
    shared += featurizer;
  }
  EXPECT_EQ(shared, 6);  // q, k, v weights and their short convolutions
}

TEST(LivModel, GradientsReachEveryParameter) {
  std::vector<ModelSpec> specs;
  for (const std::string& cls : all_classes()) specs.push_back(three_layers(cls, 1, 1));
  for (const ModelSpec& s : shared_genomes(40, 32)) specs.push_back(s);
  for (const ModelSpec& spec : specs) {
    LivModel m(spec);
    const at::Tensor x = tokens(2, 20, 1);
    at::cross_entropy_loss(m->forward(x).reshape({-1, kVocab}), x.reshape({-1})).backward();
    for (const auto& p : m->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << summary(spec) << ": " << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << summary(spec) << ": " << p.key();
    }
  }
}

TEST(LivModel, EveryClassIsCausal) {
  for (const std::string& cls : all_classes()) {
    LivModel m(three_layers(cls, 0, 1));
    m->to(at::kDouble);
    torch::NoGradGuard no_grad;
    const at::Tensor a = tokens(2, 24, 2);
    at::Tensor b = a.clone();
    b.slice(1, 11).copy_(tokens(2, 13, 3));
    const at::Tensor ya = m->forward(a), yb = m->forward(b);
    EXPECT_TRUE(at::allclose(ya.slice(1, 0, 11), yb.slice(1, 0, 11), 1e-9, 1e-10)) << cls;
    EXPECT_FALSE(at::allclose(ya.slice(1, 11), yb.slice(1, 11))) << cls;
  }
}

void expect_decode_matches(const ModelSpec& spec, const std::string& what) {
  LivModel m(spec);
  m->to(at::kDouble);
  torch::NoGradGuard no_grad;
  const int64_t T = 14;
  const at::Tensor x = tokens(3, T, 4);
  const at::Tensor parallel = m->forward(x);
  DecodeState state = m->start_decode(3);
  for (int64_t t = 0; t < T; ++t) {
    const at::Tensor y = m->step(x.select(1, t), state);
    ASSERT_TRUE(at::allclose(y, parallel.select(1, t), 1e-7, 1e-9))
        << what << " at step " << t << ": max difference " << (y - parallel.select(1, t)).abs().max().item<double>();
  }
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    int64_t analytic = 0;
    for (const CacheEntry& c : cache_entries(spec, i, T)) analytic += c.elements;
    EXPECT_EQ(state.layer_elements(i), analytic) << what << " layer " << i << " (" << spec.layers[i].cls << ")";
  }
}

TEST(LivModel, DecodingStepByStepEqualsTheParallelForwardForEveryClass) {
  for (const std::string& cls : all_classes())
    for (int reuse : {0, 1}) expect_decode_matches(three_layers(cls, 1, reuse), cls + (reuse ? " with reuse" : ""));
}

TEST(LivModel, DecodingEqualsForwardOnGenomesWithSharing) {
  for (const ModelSpec& spec : shared_genomes(30, 33)) expect_decode_matches(spec, summary(spec));
}

TEST(LivModel, PublishedStylesBuild) {
  // GPT-style (learned positions, LayerNorm, biases, tied head) and Llama-style blocks at toy size.
  ModelSpec gpt;
  gpt.vocab_size = kVocab;
  gpt.width = kWidth;
  gpt.norm = NormType::LayerNorm;
  gpt.position = PositionEncoding::Learned;
  gpt.max_positions = 32;
  gpt.bias = true;
  LayerSpec attn;
  attn.cls = "SA-1";
  attn.hyper.head_dim = 8;
  attn.hyper.kv_repeat = 1;
  LayerSpec mlp;
  mlp.cls = "MLP";
  mlp.hyper.ffn_hidden = 4 * kWidth;
  gpt.layers = {attn, mlp, attn, mlp};
  LivModel m(gpt);
  EXPECT_EQ(m->parameter_count(), count_parameters(gpt).total);
  expect_decode_matches(gpt, "gpt-style");
}

// The gated convolution behind Hyena-SE/-MR, GConv-1 and the short featurizer convolutions, by its
// definition term by term: y[t] = q[t]·(D·z[t] + Σ_j h[j]·z[t−j]), z = k·v, tap j at lag j (so
// Hyena-MR's decay over taps is a decay over lags). Checked at hand-picked numbers, then at random.
TEST(GatedCausalConv, TapJWeighsTheInputJStepsBack) {
  const auto o = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor v = at::tensor({1.0, 2.0, 3.0, 4.0}, o).reshape({1, 4, 1});
  const at::Tensor h = at::tensor({10.0, 1.0, 0.1}, o).reshape({1, 1, 3});
  // y = 10 z[t] + z[t-1] + 0.1 z[t-2]: 10, 21, 32.1, 43.2; with D = 2 add 2 z[t]; q = 3 triples it.
  EXPECT_TRUE(at::allclose(gated_causal_conv({}, {}, v, h, {}).flatten(), at::tensor({10.0, 21.0, 32.1, 43.2}, o)));
  const at::Tensor q = at::full({1, 4, 1}, 3.0, o), D = at::full({1}, 2.0, o);
  EXPECT_TRUE(at::allclose(gated_causal_conv(q, {}, v, h, D).flatten(), at::tensor({36.0, 75.0, 114.3, 153.6}, o)));

  torch::manual_seed(5);
  const int64_t B = 2, L = 9, C = 5, K = 4;
  const at::Tensor qr = at::randn({B, L, C}, o), kr = at::randn({B, L, C}, o), vr = at::randn({B, L, C}, o);
  const at::Tensor hr = at::randn({C, 1, K}, o), Dr = at::randn({C}, o);
  const at::Tensor z = kr * vr;
  at::Tensor want = Dr * z;
  for (int64_t j = 0; j < K; ++j)
    want = want + at::constant_pad_nd(z.slice(1, 0, L - j), {0, 0, j, 0}) * hr.select(1, 0).select(1, j);
  EXPECT_LT((gated_causal_conv(qr, kr, vr, hr, Dr) - qr * want).abs().max().item<double>(), 1e-12);
}

// The long convolution of Hyena-LI and GConv-2 (by FFT) is the same operator with a filter as long
// as the sequence; a longer filter's taps past L never count. Against the sum written out.
TEST(GatedLongConv, IsTheCausalConvolutionWithTheFirstLTaps) {
  const auto o = at::TensorOptions().dtype(at::kDouble);
  torch::manual_seed(6);
  const int64_t B = 2, L = 9, C = 5;
  const at::Tensor q = at::randn({B, L, C}, o), k = at::randn({B, L, C}, o), v = at::randn({B, L, C}, o);
  const at::Tensor h = at::randn({C, L + 3}, o), D = at::randn({C}, o);
  const at::Tensor z = k * v;
  at::Tensor conv = at::zeros_like(z);
  for (int64_t t = 0; t < L; ++t)
    for (int64_t j = 0; j <= t; ++j) conv.select(1, t) += h.select(1, j) * z.select(1, t - j);
  EXPECT_LT((gated_long_conv(q, k, v, h, D) - q * (conv + D * z)).abs().max().item<double>(), 1e-12);
  EXPECT_LT((gated_long_conv({}, {}, v, h, {}) - gated_causal_conv({}, {}, v, h.slice(1, 0, L), {}))
                .abs().max().item<double>(),
            1e-12);
  // Changing taps past L changes nothing.
  EXPECT_LT((gated_long_conv(q, k, v, h, D) - gated_long_conv(q, k, v, h.slice(1, 0, L), D)).abs().max().item<double>(),
            1e-12);
}

}  // namespace
}  // namespace starsynth

namespace starsynth {
namespace {

// The pointwise forms the CPU runs (and the GPU kernels replace) against their definitions in
// float64: the rotary embedding as a complex rotation of each pair (x_i, x_{i+hd/2}) by
// position · θ0^(−2i/hd), an odd head size's last element passing through; SwiGLU as g σ(g) u;
// RMSNorm as x / √(mean(x²) + eps) · w.
TEST(PointwiseForms, MatchTheirDefinitionsOnTheCpu) {
  torch::manual_seed(12);
  const auto o = at::TensorOptions().dtype(at::kDouble);
  for (const int64_t hd : {int64_t(2), int64_t(7), int64_t(16)}) {
    SCOPED_TRACE("head size " + std::to_string(hd));
    const int64_t L = 9, half = hd / 2, offset = 3;
    const at::Tensor x = at::randn({2, 3, L, hd}, o);
    const at::Tensor angle = at::outer(at::arange(offset, offset + L, o), at::pow(1e4, -at::arange(0, half, o) * 2.0 / double(hd)));
    const at::Tensor z = at::complex(x.slice(-1, 0, half), x.slice(-1, half, 2 * half)) * at::polar(at::ones_like(angle), angle);
    std::vector<at::Tensor> parts = {at::real(z), at::imag(z)};
    if (hd % 2) parts.push_back(x.slice(-1, 2 * half));
    EXPECT_LT((rotary_embedding(x, offset, 1e4) - at::cat(parts, -1)).abs().max().item<double>(), 1e-13);
  }
  const at::Tensor g = 3 * at::randn({4, 5}, o), u = at::randn({4, 5}, o);
  EXPECT_LT((swiglu(g, u) - g / (1 + at::exp(-g)) * u).abs().max().item<double>(), 1e-14);
  const at::Tensor x = 2 * at::randn({4, 33}, o), w = at::randn({33}, o);
  EXPECT_LT((rms_norm(x, w, 1e-5) - x / at::sqrt((x * x).mean(-1, true) + 1e-5) * w).abs().max().item<double>(), 1e-13);
}

// The training loss the CPU runs (the GPU kernel's reference) against its definition: the mean of
// logsumexp(x_r) − x_r[t_r] over the rows not ignored; bfloat16 logits give a float32 loss (no
// cast of the logits first); no row scored is NaN.
TEST(CrossEntropy, IsTheMeanOverScoredRowsOfLogSumExpMinusTheTargetLogit) {
  torch::manual_seed(13);
  const at::Tensor x = 3 * at::randn({6, 11}, at::kDouble);
  const at::Tensor t = at::tensor(std::vector<int64_t>{4, -100, 0, 10, -100, 7});
  double sum = 0;
  for (const int64_t r : {0, 2, 3, 5}) {
    const at::Tensor row = x[r];
    const double m = row.max().item<double>();
    sum += m + std::log((row - m).exp().sum().item<double>()) - row[t[r].item<int64_t>()].item<double>();
  }
  EXPECT_NEAR(cross_entropy(x, t, -100).item<double>(), sum / 4, 1e-13);
  const at::Tensor l16 = cross_entropy(x.to(at::kBFloat16), t, -100);
  EXPECT_EQ(l16.scalar_type(), at::kFloat);
  EXPECT_NEAR(l16.item<double>(), cross_entropy(x.to(at::kBFloat16).to(at::kDouble), t, -100).item<double>(), 1e-5);
  EXPECT_TRUE(std::isnan(cross_entropy(x, at::full({6}, -100, at::kLong), -100).item<double>()));
}

// On a GPU the token embedding's gradient is a scatter-add: the same gradient as LibTorch's own
// embedding backward, repeated tokens summed (float64, so only the order of the sums differs).
TEST(EmbedTokens, OnTheGpuTheWeightGradientEqualsLibTorchs) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(4);
  const auto o = at::TensorOptions().dtype(at::kDouble).device(at::kCUDA);
  const at::Tensor weight = at::randn({50, 24}, o).requires_grad_();
  const at::Tensor tokens = at::randint(0, 50, {7, 300}, o.dtype(at::kLong));  // most tokens repeat
  const at::Tensor y = embed_tokens(weight, tokens), ref = at::embedding(weight, tokens);
  EXPECT_TRUE(at::equal(y, ref));
  const at::Tensor dy = at::randn_like(ref);
  const at::Tensor g = torch::autograd::grad({y}, {weight}, {dy})[0], gr = torch::autograd::grad({ref}, {weight}, {dy})[0];
  EXPECT_LT((g - gr).abs().max().item<double>(), 1e-12 * gr.abs().max().item<double>());
}

}  // namespace
}  // namespace starsynth
