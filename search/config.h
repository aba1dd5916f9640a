// A search's configuration: the search space, the task and training budget, the objectives, the
// budgets checked before training, the algorithm and its parameters, seeds and the run directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "genome/space.h"
#include "proto/search.pb.h"

namespace starsynth {

struct SearchConfig {
  pb::SearchConfig message;  // as given, with defaults filled in
  SearchSpace space;
  std::vector<std::string> objectives;
  std::string algorithm;
  int population = 16, generations = 18, elites = 2, crossover_points = 2, tournament_size = 2;
  double mutation_rate = 0.1;
  bool steady_state = false;
  int lag = 0;
  uint64_t seed = 0;
  int workers = 1;
  // The evaluation settings part of every ledger key: an architecture evaluated under the same
  // settings is never trained again.
  std::string settings_key;
};

inline const std::vector<std::string>& objective_names() {
  static const std::vector<std::string> names = {"quality", "params", "cache", "flops", "tokens_per_s", "peak_memory"};
  return names;
}

// Protobuf text or JSON. Throws LoadError "FILE: FIELD.PATH: expected ..." for the first bad field.
SearchConfig load_search_config(const std::string& path);
SearchConfig parse_search_config(const std::string& content, const std::string& source);

}  // namespace starsynth
