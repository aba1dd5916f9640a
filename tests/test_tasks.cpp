// The synthetic task generators: shapes, which positions are scored, what the scored targets must
// be (checked against the sequence itself), and that a seed fixes everything.
#include <gtest/gtest.h>

#include <map>
#include <fstream>
#include <set>

#include "evaluator/tasks.h"

namespace starsynth {
namespace {

int32_t at(const Sequences& s, int64_t row, int64_t col, bool target) {
  return (target ? s.targets : s.inputs)[size_t(row * s.length + col)];
}

TEST(Tasks, BaselineShapesFollowMad) {
  const std::map<std::string, std::pair<int64_t, int64_t>> expected = {
      {"in-context-recall", {16, 127}}, {"fuzzy-in-context-recall", {16, 128}}, {"noisy-in-context-recall", {32, 127}},
      {"selective-copying", {16, 256}}, {"compression", {16, 32}},             {"memorization", {256, 32}},
      {"mqar", {8192, 64}}};
  MadSettings small;
  small.train_examples = 3;
  small.test_examples = 2;
  for (const auto& name : mad_task_names()) {
    const SyntheticTask t = make_task(name, small, 1);
    EXPECT_EQ(t.vocab_size, expected.at(name).first) << name;
    EXPECT_EQ(t.train.length, expected.at(name).second) << name;
    EXPECT_EQ(t.train.count, 3) << name;
    EXPECT_EQ(t.test.count, 2) << name;
    EXPECT_EQ(t.train.inputs.size(), size_t(3 * t.train.length)) << name;
    for (int32_t v : t.train.inputs) ASSERT_TRUE(v >= 0 && v < t.vocab_size) << name;
    for (int32_t v : t.test.targets) ASSERT_TRUE(v == kIgnore || (v >= 0 && v < t.vocab_size)) << name;
  }
  EXPECT_THROW(make_task("copying", small, 1), std::invalid_argument);
}

TEST(Tasks, RecallProbesAskForTheValueSeenWithTheKey) {
  MadSettings s;
  s.train_examples = 1;
  s.test_examples = 200;
  for (const char* name : {"in-context-recall", "noisy-in-context-recall"}) {
    const SyntheticTask t = make_task(name, s, 7);
    const int64_t keys = (t.vocab_size - (std::string(name) == "noisy-in-context-recall" ? t.vocab_size / 2 : 0)) / 2;
    int64_t probes = 0;
    for (int64_t r = 0; r < t.test.count; ++r) {
      std::map<int32_t, int32_t> value_of;
      for (int64_t i = 0; i + 1 < t.test.length; ++i) {
        const int32_t token = at(t.test, r, i, false);
        const int32_t target = at(t.test, r, i, true);
        if (target != kIgnore) {
          ASSERT_LT(token, keys);                 // probes sit on keys
          ASSERT_EQ(value_of.at(token), target);  // ... seen before with this value
          ++probes;
        }
        if (token < keys && at(t.test, r, i + 1, false) >= keys) value_of[token] = at(t.test, r, i + 1, false);
      }
      // The last input is the final probe's key.
      ASSERT_NE(at(t.test, r, t.test.length - 1, true), kIgnore);
    }
    EXPECT_GT(probes, t.test.count * 10) << name;
  }
}

TEST(Tasks, SelectiveCopyingTargetsAreTheContentInOrder) {
  MadSettings s;
  s.train_examples = 1;
  s.test_examples = 50;
  const SyntheticTask t = make_task("selective-copying", s, 3);
  const int32_t copy = int32_t(t.vocab_size - 1), blank = int32_t(t.vocab_size - 2);
  for (int64_t r = 0; r < t.test.count; ++r) {
    std::vector<int32_t> content, targets;
    for (int64_t i = 0; i < t.test.length; ++i) {
      const int32_t x = at(t.test, r, i, false);
      if (i < t.test.length - 17 && x != blank) content.push_back(x);
      if (at(t.test, r, i, true) != kIgnore) targets.push_back(at(t.test, r, i, true));
    }
    EXPECT_EQ(at(t.test, r, t.test.length - 17, false), copy);
    EXPECT_EQ(content, targets);
    EXPECT_EQ(targets.size(), 16u);
  }
}

TEST(Tasks, MemorizationUsesOneFixedMapForTrainAndTest) {
  MadSettings s;
  s.test_examples = 100;
  const SyntheticTask a = make_task("memorization", s, 1), b = make_task("memorization", s, 2);
  std::map<int32_t, int32_t> facts;
  for (const SyntheticTask* t : {&a, &b})
    for (const Sequences* set : {&t->train, &t->test})
      for (int64_t r = 0; r < set->count; ++r)
        for (int64_t i = 1; i < set->length; i += 2) {
          const int32_t key = at(*set, r, i - 1, false), value = at(*set, r, i, true);
          EXPECT_EQ(at(*set, r, i, false), 255);  // the insert token
          auto [it, fresh] = facts.emplace(key, value);
          ASSERT_EQ(it->second, value) << "key " << key;
        }
  EXPECT_GT(facts.size(), 100u);
}

TEST(Tasks, MqarQueriesFollowTheirPairs) {
  MadSettings s;
  s.vocab_size = 256;
  s.seq_len = 64;
  s.kv_pairs = 8;
  s.train_examples = 1;
  s.test_examples = 100;
  const SyntheticTask t = make_task("mqar", s, 5);
  for (int64_t r = 0; r < t.test.count; ++r) {
    std::map<int32_t, int32_t> value_of;
    for (int64_t i = 0; i < 16; i += 2) {
      const int32_t k = at(t.test, r, i, false), v = at(t.test, r, i + 1, false);
      ASSERT_TRUE(k >= 1 && k < 128 && v >= 128 && v < 256);
      value_of[k] = v;
    }
    EXPECT_EQ(value_of.size(), 8u);  // keys drawn without replacement
    int64_t queries = 0;
    for (int64_t i = 16; i < t.test.length; ++i)
      if (at(t.test, r, i, true) != kIgnore) {
        EXPECT_EQ(value_of.at(at(t.test, r, i, false)), at(t.test, r, i, true));
        ++queries;
      }
    EXPECT_EQ(queries, 8);
  }
  s.kv_pairs = 20;  // 4 · 20 > 64
  EXPECT_THROW(make_task("mqar", s, 5), std::invalid_argument);
}

TEST(Tasks, CompressionReconstructsItsInput) {
  MadSettings s;
  s.train_examples = 5;
  s.test_examples = 5;
  const SyntheticTask t = make_task("compression", s, 9);
  EXPECT_TRUE(t.autoencoder);
  EXPECT_EQ(t.test.inputs, t.test.targets);
  for (int64_t r = 0; r < t.test.count; ++r) EXPECT_EQ(at(t.test, r, t.test.length - 1, false), 15);
}

TEST(Tasks, TheSeedFixesTheData) {
  MadSettings s;
  s.train_examples = 50;
  s.test_examples = 10;
  for (const auto& name : mad_task_names()) {
    if (name == "mqar") s.vocab_size = 256;
    const SyntheticTask a = make_task(name, s, 42), b = make_task(name, s, 42), c = make_task(name, s, 43);
    EXPECT_EQ(a.train.inputs, b.train.inputs) << name;
    EXPECT_EQ(a.test.targets, b.test.targets) << name;
    EXPECT_NE(a.train.inputs, c.train.inputs) << name;
  }
}

TEST(Tasks, FastaCorpusDropsHeadersAndLineBreaks) {
  const std::string path = ::testing::TempDir() + "/tiny.fasta";
  {
    std::ofstream out(path);
    out << ">chr1 test\n";
    for (int i = 0; i < 40; ++i) out << "ACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGTACGT\n";
    out << ">chr2\nNNNN\n";
  }
  const std::vector<uint8_t> bytes = load_corpus(path);
  EXPECT_EQ(bytes.size(), 40u * 76 + 4);
  EXPECT_EQ(std::set<uint8_t>(bytes.begin(), bytes.end()), (std::set<uint8_t>{'A', 'C', 'G', 'T', 'N'}));
  EXPECT_THROW(load_corpus(path + ".missing"), std::runtime_error);
}

}  // namespace
}  // namespace starsynth
