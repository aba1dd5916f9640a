// A search run and its directory:
//   config.textproto  the configuration, defaults filled in (a directory belongs to one config)
//   journal.bin       every finished evaluation, appended and fsync'd as it completes
//   checkpoint.pb     population, fitness, generator state, counters, progress; after each generation
//   progress.tsv      one row per generation: hypervolume, front size, counters, throughput
//   front.tsv         the final non-dominated set
// A run killed at any moment resumes from its last checkpoint; evaluations already journaled are
// answered from the ledger, so only those in flight are redone.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "search/config.h"
#include "search/engine.h"

namespace starsynth {

struct RunOptions {
  std::string dir;              // run directory; empty: the config's run_dir, else runs/<config name>
  bool resume = false;          // `dir` holds a run to continue; its own config is used
  std::ostream* log = nullptr;  // progress lines (stderr when null)
};

struct FrontMember {
  Genome genome;
  std::vector<double> objectives;
  pb::JournalRecord record;
};

struct RunSummary {
  std::string dir;
  int generation = 0;
  double hypervolume = 0;
  std::vector<FrontMember> front;  // sorted by the first objective
  EngineCounters counters;
};

// Starts (config file) or resumes (run directory) a search; `make_runner` supplies the batch
// runner for the run's config (threads here, MPI in cluster/). Throws LoadError for bad configs
// and std::runtime_error naming the directory for a run that cannot start or resume.
RunSummary run_search(const std::string& config_or_dir, const RunOptions& options,
                      const std::function<Runner(const SearchConfig&)>& make_runner);

// The hypervolume of the points that dominate `reference` (others contribute nothing).
double hypervolume_of(const std::vector<std::vector<double>>& points, const std::vector<double>& reference);

// A table of the front with units, one member a line.
std::string front_table(const SearchConfig& config, const RunSummary& summary);

}  // namespace starsynth
