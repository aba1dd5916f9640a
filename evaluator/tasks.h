// The tasks a genome is scored on, as seeded generators of token sequences (no LibTorch here).
//
// MAD's six synthetic tasks (../shared/STAR.md §5) and Zoology's MQAR produce fixed train and test
// sets from a seed; byte-level language modelling reads any text or FASTA file. Targets use -100
// for positions that are not scored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace starsynth {

inline constexpr int32_t kIgnore = -100;

struct Sequences {
  int64_t count = 0;
  int64_t length = 0;
  std::vector<int32_t> inputs;   // count × length
  std::vector<int32_t> targets;  // count × length, kIgnore where not scored
};

struct SyntheticTask {
  std::string name;
  int64_t vocab_size = 0;
  int64_t seq_len = 0;
  Sequences train, test;
  bool autoencoder = false;  // compression: decode every input token from the last hidden state
};

// Difficulty parameters; zero keeps the task's MAD baseline (STAR.md §5.2).
struct MadSettings {
  int64_t vocab_size = 0;
  int64_t seq_len = 0;
  int64_t train_examples = 0;
  int64_t test_examples = 0;     // MAD: 1,280
  double frac_noise = 0;         // noisy recall
  int64_t num_tokens_to_copy = 0;  // selective copying
  int64_t kv_pairs = 0;          // MQAR
};

// "in-context-recall", "fuzzy-in-context-recall", "noisy-in-context-recall", "selective-copying",
// "compression", "memorization", and "mqar".
const std::vector<std::string>& mad_task_names();
SyntheticTask make_task(const std::string& name, const MadSettings& settings, uint64_t seed);

// Bytes of a corpus as tokens (0..255). FASTA files (first byte '>') lose their header lines and
// line breaks. Throws std::runtime_error naming the file when it cannot be read or is too short.
std::vector<uint8_t> load_corpus(const std::string& path);

}  // namespace starsynth
