// Training end to end on the CPU: architectures that can do in-context recall learn it and ones
// that cannot do not, every class learns byte-level language modelling, a seed fixes the result,
// failures become statuses, and the measured cache agrees with the analytic one.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <filesystem>

#include "evaluator/evaluate.h"
#include "genome/catalog.h"
#include "genome/genome.h"
#include "genome/presets.h"

namespace starsynth {
namespace {

const std::string kKjv = std::string(STARSYNTH_SOURCE_DIR) + "/data/kjv.txt";

class Training : public ::testing::Test {
 protected:
  // ctest runs two suites at once on two cores: one thread each.
  void SetUp() override { at::set_num_threads(1); }
};

ModelSpec four_livs(const std::vector<std::string>& classes, int64_t width, int64_t vocab) {
  std::vector<std::string> alphabet;
  for (const auto& c : classes)
    if (std::find(alphabet.begin(), alphabet.end(), c) == alphabet.end()) alphabet.push_back(c);
  LivHyper heads;
  heads.head_dim = width / 4;  // four heads, so that SA-3 can group them
  std::map<std::string, LivHyper> overrides;
  for (const auto& c : alphabet)
    if (class_by_name(c).family == Family::Attention) overrides[c] = heads;
  const SearchSpace s = make_space(int(classes.size()), width, vocab, alphabet, overrides);
  Genome g;
  for (const auto& c : classes) {
    LivGene gene;
    gene.cls = int(std::find(alphabet.begin(), alphabet.end(), c) - alphabet.begin()) + 1;
    g.livs.push_back(gene);
  }
  return compile(s, g);
}

SyntheticTask small_recall() {
  MadSettings s;
  s.vocab_size = 8;  // 4 keys, 4 values
  s.seq_len = 16;
  s.train_examples = 4000;
  s.test_examples = 200;
  return make_task("in-context-recall", s, 12345);
}

TrainSettings recall_training() {
  TrainSettings t;
  t.steps = 1500;
  t.batch = 128;
  t.lr = 3e-3;
  return t;
}

TEST_F(Training, AttentionLearnsInContextRecallAndAGatedConvolutionDoesNot) {
  const SyntheticTask task = small_recall();
  const Metrics transformer =
      evaluate_synthetic(four_livs({"SA-1", "GMemless", "SA-1", "GMemless"}, 64, 8), task, recall_training());
  ASSERT_EQ(transformer.status, EvalStatus::Ok) << transformer.message;
  EXPECT_GE(transformer.quality, 0.90);
  const Metrics conv =
      evaluate_synthetic(four_livs({"GConv-1", "GMemless", "GConv-1", "GMemless"}, 64, 8), task, recall_training());
  ASSERT_EQ(conv.status, EvalStatus::Ok) << conv.message;
  // Short convolutions recall a fraction of these short sequences by position; attention all of them.
  EXPECT_LT(conv.quality, 0.85);
  EXPECT_LT(conv.quality, transformer.quality - 0.15);
  std::printf("in-context recall (V=8, L=16): Transformer++ %.1f %%, GConv-1 + SwiGLU %.1f %%\n",
              100 * transformer.quality, 100 * conv.quality);
}

TEST_F(Training, EveryClassLowersTheByteLevelLossOnKjv) {
  ASSERT_TRUE(std::filesystem::exists(kKjv)) << kKjv << " is missing: run scripts/setup.sh";
  TaskSpec task;
  task.kind = "lm:" + kKjv;
  task.lm_seq_len = 64;
  task.lm_eval_tokens = 8192;
  TrainSettings t;
  t.batch = 16;
  t.lr = 3e-3;
  for (const LivClass& c : catalog()) {
    const ModelSpec spec = four_livs({c.name, "GMemless"}, 32, 256);
    t.steps = 0;
    const Metrics before = evaluate(spec, task, t);
    t.steps = 300;
    const Metrics after = evaluate(spec, task, t);
    ASSERT_EQ(after.status, EvalStatus::Ok) << c.name << ": " << after.message;
    // From ln 256 ≈ 5.55 nats to below the bytes' unigram entropy of 3.05 nats.
    EXPECT_LT(after.quality, before.quality - 2.0) << c.name;
    EXPECT_LT(after.quality, 3.05) << c.name;
    std::printf("%-13s %.3f → %.3f nats/byte\n", c.name.c_str(), before.quality, after.quality);
  }
}

TEST_F(Training, TheSameSeedGivesTheSameResult) {
  MadSettings s;
  s.train_examples = 200;
  s.test_examples = 50;
  s.seq_len = 32;
  TaskSpec task;
  task.kind = "mad:selective-copying";
  task.mad = s;
  task.mad.num_tokens_to_copy = 4;
  TrainSettings t;
  t.steps = 20;
  t.batch = 8;
  const ModelSpec spec = four_livs({"Rec-1", "GMemless", "Hyena-LI", "SA-3"}, 32, 16);
  const Metrics a = evaluate(spec, task, t), b = evaluate(spec, task, t);
  ASSERT_EQ(a.status, EvalStatus::Ok) << a.message;
  EXPECT_EQ(a.tasks[0].loss, b.tasks[0].loss);
  EXPECT_EQ(a.quality, b.quality);
  t.seed = 7;
  EXPECT_NE(evaluate(spec, task, t).tasks[0].loss, a.tasks[0].loss);
}

TEST_F(Training, FailuresBecomeStatuses) {
  const ModelSpec spec = four_livs({"SA-1", "GMemless"}, 32, 16);
  TaskSpec task;
  task.kind = "mad:in-context-recall";
  task.mad.vocab_size = 16;
  task.mad.seq_len = 16;
  task.mad.train_examples = 64;
  task.mad.test_examples = 8;
  TrainSettings t;
  t.steps = 30;
  t.batch = 8;
  t.lr = 1e30;
  Metrics m = evaluate(spec, task, t);
  EXPECT_EQ(m.status, EvalStatus::Diverged);
  EXPECT_EQ(m.message.rfind("loss is ", 0), 0u) << m.message;
  EXPECT_NE(m.message.find("nan"), std::string::npos) << m.message;

  t.lr = 1e-3;
  t.timeout_s = 1e-9;
  m = evaluate(spec, task, t);
  EXPECT_EQ(m.status, EvalStatus::Timeout);
  EXPECT_EQ(m.message.rfind("time limit of", 0), 0u) << m.message;

  t.timeout_s = 0;
  task.mad.vocab_size = 64;
  m = evaluate(spec, task, t);
  EXPECT_EQ(m.status, EvalStatus::Error);
  EXPECT_EQ(m.message, "task in-context-recall needs a vocabulary of 64, the model has 16");

  task.kind = "lm:/nonexistent/corpus.txt";
  m = evaluate(four_livs({"SA-1", "GMemless"}, 32, 256), task, t);
  EXPECT_EQ(m.status, EvalStatus::Error);
  EXPECT_EQ(m.message, "/nonexistent/corpus.txt: cannot read the corpus");

  task.kind = "copying";
  m = evaluate(spec, task, t);
  EXPECT_EQ(m.message, "unknown task \"copying\" (expected mad, mad:<task>, mqar or lm:<file>)");
}

TEST_F(Training, MeasuredCacheAgreesWithTheAnalyticCache) {
  TaskSpec task;
  task.kind = "mad:compression";
  task.mad.train_examples = 16;
  task.mad.test_examples = 8;
  TrainSettings t;
  t.steps = 2;
  t.batch = 4;
  t.context = 2048;
  for (const LivClass& c : catalog()) {
    const Metrics m = evaluate(four_livs({c.name, "GMemless"}, 32, 16), task, t);
    ASSERT_EQ(m.status, EvalStatus::Ok) << c.name << ": " << m.message;
    EXPECT_EQ(m.cache_bytes_measured, m.cache_bytes) << c.name;
    EXPECT_GT(m.params_total, m.params_non_embedding);
  }
}

}  // namespace
}  // namespace starsynth
