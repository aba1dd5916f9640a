#include "evaluator/tasks.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <numeric>
#include <stdexcept>

#include "genome/rng.h"

namespace starsynth {

namespace {

struct Baseline {
  int64_t vocab, seq_len, train;
};

Baseline baseline(const std::string& name) {
  if (name == "in-context-recall" || name == "fuzzy-in-context-recall") return {16, 128, 12800};
  if (name == "noisy-in-context-recall") return {32, 128, 12800};
  if (name == "selective-copying") return {16, 256, 12800};
  if (name == "compression") return {16, 32, 12800};
  if (name == "memorization") return {256, 32, 256};
  if (name == "mqar") return {8192, 64, 100000};
  std::string known;
  for (const auto& n : mad_task_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown task \"" + name + "\" (known: " + known + ")");
}

// One sequence: raw tokens and per-token "scored at test time" marks. Train targets score every
// next token that is not noise or padding (MAD trains the recall family as plain language
// modelling); test targets score only the probed positions.
struct Instance {
  std::vector<int32_t> inputs, train_targets, test_targets;
};

void append(Sequences& s, const std::vector<int32_t>& in, const std::vector<int32_t>& tg) {
  s.length = int64_t(in.size());
  s.inputs.insert(s.inputs.end(), in.begin(), in.end());
  s.targets.insert(s.targets.end(), tg.begin(), tg.end());
  ++s.count;
}

// Shifts a raw recall sequence into next-token pairs: input i predicts raw i+1.
Instance as_next_token(const std::vector<int32_t>& raw, const std::vector<bool>& probed, const std::vector<bool>& scored) {
  Instance x;
  for (size_t i = 0; i + 1 < raw.size(); ++i) {
    x.inputs.push_back(raw[i]);
    x.train_targets.push_back(scored[i + 1] ? raw[i + 1] : kIgnore);
    x.test_targets.push_back(probed[i + 1] ? raw[i + 1] : kIgnore);
  }
  return x;
}

// in-context recall, optionally noisy: key/value pairs with a per-sequence mapping; every value
// whose key was seen before is probed, and a final pair repeats an earlier key.
Instance recall(int64_t vocab, int64_t L, int64_t noise_vocab, double frac_noise, Rng& rng) {
  const int64_t real = vocab - noise_vocab, half = real / 2;
  const int64_t pairs = L / 2;
  std::vector<int32_t> value_of(size_t(half), -1);
  std::vector<int32_t> raw;
  std::vector<bool> probed, scored;
  std::vector<int32_t> seen;
  const int64_t guaranteed = uniform_int(rng, 0, pairs - 2);  // one slot always real
  for (int64_t p = 0; p < pairs; ++p) {
    const bool last = p == pairs - 1;
    if (!last && p != guaranteed && noise_vocab > 0 && uniform01(rng) < frac_noise) {
      for (int k = 0; k < 2; ++k) {
        raw.push_back(int32_t(real + uniform_int(rng, 0, noise_vocab - 1)));
        probed.push_back(false), scored.push_back(false);
      }
      continue;
    }
    int32_t key;
    if (last) key = seen.empty() ? int32_t(uniform_int(rng, 0, half - 1)) : seen[size_t(uniform_int(rng, 0, int64_t(seen.size()) - 1))];
    else key = int32_t(uniform_int(rng, 0, half - 1));
    const bool repeat = value_of[size_t(key)] >= 0;
    if (!repeat) value_of[size_t(key)] = int32_t(half + uniform_int(rng, 0, real - half - 1)), seen.push_back(key);
    raw.push_back(key), probed.push_back(false), scored.push_back(true);
    raw.push_back(value_of[size_t(key)]), probed.push_back(repeat), scored.push_back(true);
  }
  return as_next_token(raw, probed, scored);
}

// Fuzzy recall: keys and values are motifs of 1..3 tokens; one probe pair (full-size key) is placed
// at a random pair slot and repeated at the end; sequences are left-padded.
Instance fuzzy_recall(int64_t vocab, int64_t L, Rng& rng) {
  const int32_t pad = int32_t(vocab - 1);
  const int64_t key_vocab = (vocab - 1) / 2, value_base = key_vocab, value_vocab = vocab - 1 - key_vocab;
  const int64_t motif = 3;
  auto draw = [&](int64_t base, int64_t n, int64_t size) {
    std::vector<int32_t> m;
    for (int64_t k = 0; k < size; ++k) m.push_back(int32_t(base + uniform_int(rng, 0, n - 1)));
    return m;
  };
  std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> pairs;
  const auto probe_key = draw(0, key_vocab, motif), probe_value = draw(value_base, value_vocab, uniform_int(rng, 1, motif));
  int64_t used = int64_t(probe_key.size() + probe_value.size()) * 2;
  while (true) {
    auto k = draw(0, key_vocab, uniform_int(rng, 1, motif));
    if (k == probe_key) continue;
    auto v = draw(value_base, value_vocab, uniform_int(rng, 1, motif));
    if (used + int64_t(k.size() + v.size()) > L + 1) break;
    used += int64_t(k.size() + v.size());
    pairs.emplace_back(std::move(k), std::move(v));
  }
  pairs.insert(pairs.begin() + uniform_int(rng, 0, int64_t(pairs.size())), std::make_pair(probe_key, probe_value));
  std::vector<int32_t> raw(size_t(L + 1 - used), pad);
  std::vector<bool> probed(raw.size(), false), scored(raw.size(), false);
  auto put = [&](const std::vector<int32_t>& m, bool probe) {
    for (int32_t t : m) raw.push_back(t), probed.push_back(probe), scored.push_back(true);
  };
  for (const auto& [k, v] : pairs) put(k, false), put(v, false);
  put(probe_key, false);
  put(probe_value, true);
  return as_next_token(raw, probed, scored);
}

// Selective copying: content tokens scattered among blanks, then a copy token; the content must be
// reproduced, in order, over the final positions.
Instance selective_copying(int64_t vocab, int64_t L, int64_t n, Rng& rng) {
  const int32_t copy = int32_t(vocab - 1), blank = int32_t(vocab - 2);
  std::vector<int32_t> content;
  for (int64_t i = 0; i < n; ++i) content.push_back(int32_t(uniform_int(rng, 0, vocab - 3)));
  std::vector<char> is_content(size_t(L - n - 1), 0);
  std::fill(is_content.begin(), is_content.begin() + n, 1);
  shuffle(is_content, rng);
  Instance x;
  size_t next = 0;
  for (char c : is_content) x.inputs.push_back(c ? content[next++] : blank);
  x.inputs.push_back(copy);
  for (int64_t i = 0; i < n; ++i) x.inputs.push_back(blank);
  x.test_targets.assign(size_t(L), kIgnore);
  for (int64_t i = 0; i < n; ++i) x.test_targets[size_t(L - n + i)] = content[size_t(i)];
  x.train_targets = x.test_targets;
  return x;
}

Instance compression(int64_t vocab, int64_t L, Rng& rng) {
  Instance x;
  for (int64_t i = 0; i + 1 < L; ++i) x.inputs.push_back(int32_t(uniform_int(rng, 0, vocab - 2)));
  x.inputs.push_back(int32_t(vocab - 1));
  x.test_targets = x.inputs;
  x.train_targets = x.inputs;
  return x;
}

// Memorization: one fixed key → value map for the whole task; each sequence lists keys followed by
// an insert token, at which the key's value must be produced.
Instance memorization(const std::vector<int32_t>& value_of, int64_t vocab, int64_t L, Rng& rng) {
  Instance x;
  const int32_t insert = int32_t(vocab - 1);
  for (int64_t p = 0; p < L / 2; ++p) {
    const int32_t key = int32_t(uniform_int(rng, 0, int64_t(value_of.size()) - 1));
    x.inputs.insert(x.inputs.end(), {key, insert});
    x.test_targets.insert(x.test_targets.end(), {kIgnore, value_of[size_t(key)]});
  }
  x.train_targets = x.test_targets;
  return x;
}

// Zoology's multi-query associative recall: key/value pairs, then queries of those keys placed at
// power-law distributed gaps; the label of a query key is its value.
Instance mqar(int64_t vocab, int64_t L, int64_t kv, Rng& rng) {
  if (vocab <= L || L % 2 || 4 * kv > L)
    throw std::invalid_argument("mqar needs an even length, a vocabulary larger than it and 4·kv_pairs <= length");
  auto distinct = [&](int64_t lo, int64_t hi) {
    std::vector<int32_t> all(size_t(hi - lo));
    std::iota(all.begin(), all.end(), int32_t(lo));
    for (int64_t i = 0; i < kv; ++i) std::swap(all[size_t(i)], all[size_t(uniform_int(rng, i, int64_t(all.size()) - 1))]);
    return std::vector<int32_t>(all.begin(), all.begin() + kv);
  };
  const auto keys = distinct(1, vocab / 2), values = distinct(vocab / 2, vocab);
  std::vector<int32_t> raw(size_t(L + 1), 0), label(size_t(L + 1), kIgnore);
  for (int64_t i = 0; i < kv; ++i) raw[size_t(2 * i)] = keys[size_t(i)], raw[size_t(2 * i + 1)] = values[size_t(i)];
  const int64_t context = 2 * kv, space = (L - context) / 2;
  // Gap g in 1..space with probability ∝ a·g^(a-1), a = 0.01, drawn without replacement.
  std::vector<double> weight(static_cast<size_t>(space));
  for (int64_t g = 0; g < space; ++g) weight[size_t(g)] = 0.01 * std::pow(double(g + 1), 0.01 - 1.0);
  for (int64_t i = 0; i < kv; ++i) {
    const double total = std::accumulate(weight.begin(), weight.end(), 0.0);
    double r = uniform01(rng) * total;
    int64_t g = 0;
    while (g + 1 < space && (r -= weight[size_t(g)]) >= 0) ++g;
    weight[size_t(g)] = 0;
    const size_t at = size_t(context + 2 * g);
    raw[at] = keys[size_t(i)];
    label[at + 1] = values[size_t(i)];
  }
  for (size_t i = size_t(context); i < raw.size(); ++i)
    if (raw[i] == 0) raw[i] = int32_t(uniform_int(rng, 0, vocab - 1));
  Instance x;
  for (int64_t i = 0; i < L; ++i) x.inputs.push_back(raw[size_t(i)]), x.test_targets.push_back(label[size_t(i + 1)]);
  x.train_targets = x.test_targets;
  return x;
}

}  // namespace

const std::vector<std::string>& mad_task_names() {
  static const std::vector<std::string> names = {"in-context-recall", "fuzzy-in-context-recall",
                                                 "noisy-in-context-recall", "selective-copying",
                                                 "compression", "memorization", "mqar"};
  return names;
}

SyntheticTask make_task(const std::string& name, const MadSettings& s, uint64_t seed) {
  const Baseline b = baseline(name);
  SyntheticTask t;
  t.name = name;
  t.vocab_size = s.vocab_size ? s.vocab_size : b.vocab;
  t.seq_len = s.seq_len ? s.seq_len : b.seq_len;
  t.autoencoder = name == "compression";
  const int64_t train = s.train_examples ? s.train_examples : b.train;
  const int64_t test = s.test_examples ? s.test_examples : (name == "mqar" ? 3000 : 1280);
  const int64_t V = t.vocab_size, L = t.seq_len;
  if (V < 4 || L < 4) throw std::invalid_argument(name + ": vocabulary and length must be at least 4");
  // Memorization's facts are fixed for the task (MAD uses seed 12345 for them), shared by both sets.
  std::vector<int32_t> facts;
  if (name == "memorization") {
    Rng fact_rng(12345);
    const int64_t half = (V - 1) / 2;
    facts.resize(size_t(half));
    std::iota(facts.begin(), facts.end(), int32_t(half));
    shuffle(facts, fact_rng);
  }
  Rng rng(seed);
  auto generate = [&]() -> Instance {
    if (name == "in-context-recall") return recall(V, L, 0, 0, rng);
    if (name == "noisy-in-context-recall") return recall(V, L, V / 2, s.frac_noise ? s.frac_noise : 0.2, rng);
    if (name == "fuzzy-in-context-recall") return fuzzy_recall(V, L, rng);
    if (name == "selective-copying") {
      const int64_t n = s.num_tokens_to_copy ? s.num_tokens_to_copy : 16;
      if (2 * n + 1 > L) throw std::invalid_argument("selective-copying: 2·num_tokens_to_copy + 1 exceeds the length");
      return selective_copying(V, L, n, rng);
    }
    if (name == "compression") return compression(V, L, rng);
    if (name == "memorization") return memorization(facts, V, L, rng);
    return mqar(V, L, s.kv_pairs ? s.kv_pairs : 8, rng);
  };
  for (int64_t i = 0; i < train; ++i) {
    const Instance x = generate();
    append(t.train, x.inputs, x.train_targets);
  }
  for (int64_t i = 0; i < test; ++i) {
    const Instance x = generate();
    append(t.test, x.inputs, x.test_targets);
  }
  return t;
}

std::vector<uint8_t> load_corpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read the corpus");
  std::vector<uint8_t> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!raw.empty() && raw[0] == '>') {
    std::vector<uint8_t> seq;
    bool header = false;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '>' && (i == 0 || raw[i - 1] == '\n')) header = true;
      if (raw[i] == '\n') {
        header = false;
        continue;
      }
      if (!header && raw[i] != '\r') seq.push_back(raw[i]);
    }
    raw.swap(seq);
  }
  if (raw.size() < 1024) throw std::runtime_error(path + ": corpus too short (" + std::to_string(raw.size()) + " bytes)");
  return raw;
}

}  // namespace starsynth
