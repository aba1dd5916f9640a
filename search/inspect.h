// Reading a run directory — finished, still running, or crashed — without writing to it: every
// journaled evaluation, the non-dominated set over any objectives, the picks users export, and the
// hypervolume history. `starsynth front`, `report`, `export` and `compare` are built on this.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "proto/search.pb.h"
#include "search/config.h"
#include "search/engine.h"  // minimised()

namespace starsynth {

struct RunView {
  std::string dir;
  SearchConfig config;
  std::vector<pb::JournalRecord> records;  // every journaled evaluation, a torn last record left out
  int64_t torn_bytes = 0;                  // bytes after the last whole record (a crash, or a write in progress)
  pb::Checkpoint checkpoint;               // the last generation's; empty before the first
  bool has_checkpoint = false;
  // True once the last configured generation is checkpointed.
  bool finished() const { return has_checkpoint && checkpoint.generation() >= config.generations; }
};

// Throws LoadError naming `dir`: "no such run directory", "not a run directory (no
// config.textproto)", or a bad file inside it.
RunView open_run(const std::string& dir);

// How an objective is shown: its name, unit, and the factor from the stored value to that unit.
struct ObjectiveInfo {
  std::string name;          // "quality", "params", "cache", "flops", "tokens_per_s", "peak_memory"
  std::string label;         // axis label with its unit, e.g. "cache at context (MB)"
  double scale = 1;          // shown = stored metric × scale
  bool higher_is_better = false;
};
// Throws LoadError("objective: unknown ...") listing the known names. `accuracy` chooses how the
// quality of this run reads (accuracy in % when true, nats per byte otherwise).
ObjectiveInfo objective_info(const std::string& name, bool accuracy);
// Splits "a,b" into names, each checked; empty means the run's own objectives.
std::vector<std::string> parse_objectives(const std::string& list, const RunView& run);
// Whether the run's quality is an accuracy (MAD, MQAR) rather than a loss.
bool quality_is_accuracy(const RunView& run);

// The value as a person reads it, in the unit of objective_info (accuracy in %, cache in MB...).
double shown(const pb::JournalRecord& r, const ObjectiveInfo& info);

// Indices into `records` of the non-dominated evaluations under `objectives` (failed ones never
// count; an architecture evaluated twice counts once), sorted by the first objective.
std::vector<size_t> front_of(const std::vector<pb::JournalRecord>& records, const std::vector<std::string>& objectives);
// The same over the evaluations of generations 0..g only: the front as it stood after generation g.
std::vector<size_t> front_after(const std::vector<pb::JournalRecord>& records, const std::vector<std::string>& objectives,
                                int generation);

// Record index → preset name ("transformer++", ...) for the successful evaluations of a preset's
// canonical genome (a preset that does not fit the run's space never matches).
std::map<size_t, std::string> preset_records(const RunView& run);

// The front member a person picks: "ID" (the record's sequence number, as `front` prints it),
// "best:OBJECTIVE", or "knee" (on the objectives normalised to [0, 1] over the front, the member
// farthest below the hyperplane through the extremes: the largest 1 - mean of its coordinates).
// Returns an index into run.records; throws LoadError naming the pick when it matches nothing.
size_t pick(const RunView& run, const std::string& how);

}  // namespace starsynth
